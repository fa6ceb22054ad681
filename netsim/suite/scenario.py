"""A scenario (a topology, the two hosts that pair, and the session options) and the one scenario-file loader.

A scenario file is a topology (docs/nat.md, netsim.lab.topology) plus an optional `[session]` table saying
which hosts pair and how; `load_scenario_file` is the only reader of such files (`netsim up FILE`,
`netsim run FILE`, the suite).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netsim.lab.events import EventError
from netsim.lab.events import check as check_events
from netsim.lab.topology import Topology, TopologyError, from_dict
from netsim.records import PopulationDraw
from netsim.session.options import (
    TABLE_ONLY_KEYS,
    OptionsError,
    SessionOptions,
    connect_deadline,
    option_names,
)
from netsim.suite.expectations import TABLE_FILE, Expectation, ExpectationError, from_entry
from netsim.vocab import AIORTC, UDP_BLOCKED

EXPECTED_FILE = TABLE_FILE  # the expectations table beside the scenario files, not a scenario


class ScenarioError(TopologyError):
    """A scenario file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Scenario:
    """One pairing to run: a topology, the NAT labels of its two sides, and the session options.

    `expect`: the scenario's own expectation (a scenario file's [expect]), which wins over expected.toml.
    `source`/`source_text`: the scenario file and its text as read; `draw`: how a population drew it.
    """

    id: str
    group: str
    topology: Topology
    nat_a: str
    nat_b: str
    options: SessionOptions = field(default_factory=SessionOptions)
    expect: Expectation | None = None
    source: str | None = None
    source_text: str | None = None
    draw: PopulationDraw | None = None


def udp_blocked_sides(topo: Topology, host_a: str, host_b: str) -> int:
    """How many of the two hosts sit behind the UDP-blocking firewall."""
    return sum(topo.site_of(h).nat.kind == UDP_BLOCKED for h in (host_a, host_b))


def default_options(topo: Topology, **options: Any) -> SessionOptions:
    """Session options with the connect deadline the pairing's firewalls call for (unless one is given)."""
    host_a, host_b = options.get("host_a", "a"), options.get("host_b", "b")
    blocked = udp_blocked_sides(topo, host_a, host_b)
    options.setdefault("deadline_s", connect_deadline(blocked, options.get("peer_a", AIORTC)))
    return SessionOptions(**options)


def read_text(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ScenarioError(f"{path}: is a directory, not a scenario file") from None
    except (UnicodeDecodeError, PermissionError) as e:
        raise ScenarioError(f"{path}: cannot read it: {e}") from None


def load_scenario_file(path: Path | str) -> Scenario:
    """A TOML scenario: its topology plus the `[session]` table's hosts, group, labels and options."""
    path = Path(path)
    text = read_text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{path}: not valid TOML: {e}") from None
    session = data.pop("session", {})
    expect_table = data.pop("expect", None)
    event_tables = data.pop("event", [])
    if not isinstance(session, dict):
        raise ScenarioError(f"{path}: session: expected a table, got {session!r}")
    allowed = {*TABLE_ONLY_KEYS, *option_names()} - {"host_a", "host_b"}
    for key in session:
        if key not in allowed:
            raise ScenarioError(f"{path}: session.{key}: unknown key (allowed: {', '.join(sorted(allowed))})")
    try:
        topo = from_dict(data, default_name=path.stem, base_dir=path.parent)
    except TopologyError as e:
        raise ScenarioError(f"{path}: {e}") from None
    hosts = topo.hosts()
    host_a, host_b = session.get("a", hosts[0]), session.get("b", hosts[-1])
    for key, host in (("a", host_a), ("b", host_b)):
        if host not in hosts:
            raise ScenarioError(f"{path}: session.{key}: unknown host {host!r} (hosts: {', '.join(hosts)})")
    options = {k: v for k, v in session.items() if k not in TABLE_ONLY_KEYS}
    if event_tables:  # [[event]] tables: network events after connect (netsim.lab.events)
        options["events"] = event_tables
    try:
        opts = default_options(topo, host_a=host_a, host_b=host_b, **options)
        check_events(opts.events, topo)
    except OptionsError as e:
        raise ScenarioError(f"{path}: session.{e}") from None
    except EventError as e:
        raise ScenarioError(f"{path}: {e}") from None
    try:
        expect = None if expect_table is None else from_entry(expect_table, f"{path}: expect")
    except ExpectationError as e:
        raise ScenarioError(str(e)) from None
    group = str(session.get("group", path.stem))
    return Scenario(
        id=f"{group}/{topo.name}",
        group=group,
        topology=topo,
        nat_a=str(session.get("label_a", topo.site_of(host_a).nat.kind)),
        nat_b=str(session.get("label_b", topo.site_of(host_b).nat.kind)),
        options=opts,
        expect=expect,
        source=str(path),
        source_text=text,
    )


def file_scenarios(directory: Path) -> list[Scenario]:
    """Every scenario file in `directory` (the expectations table excepted), sorted by file name."""
    return [load_scenario_file(p) for p in sorted(directory.glob("*.toml")) if p.name != EXPECTED_FILE]
