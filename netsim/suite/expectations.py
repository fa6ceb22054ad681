"""Expected outcomes: the editable table scenarios/expected.toml, and the check of a record against it.

Expectations follow the scenario, never the working directory: the suite's own scenarios (the matrices,
firewall, policy, glare, populations) are checked against the shipped table (`SHIPPED_TABLE`, the
repository's scenarios/expected.toml, which netsim runs from), and a scenario file against the
expected.toml beside it (its own [expect] table wins over both), wherever the command runs.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

from netsim.errors import InputError
from netsim.lab.topology import Topology, site_fw6
from netsim.vocab import (
    CALL_OUTCOMES,
    CLAT,
    DUAL,
    FAMILIES,
    FW6_APDF,
    FW6_BLOCK_UDP,
    FW6_EIF,
    FW6_OPEN,
    IPV6_GROUP_SUFFIX,
    IPV6_ONLY,
    MATRIX_GROUPS,
    NAT_KINDS,
    NO_TURN,
    POPULATION,
    RELAY,
    SIDES,
    TURN_TRANSPORTS,
    VERDICTS,
    Verdict,
)

if TYPE_CHECKING:
    from netsim.suite.scenario import Scenario

TABLE_FILE: Final = "expected.toml"  # the table beside the scenario files it describes
SHIPPED_TABLE: Final = Path(__file__).resolve().parents[2] / "scenarios" / TABLE_FILE
ENTRY_KEYS = ("needs_relay", "connect", "verdict", "turn_transport", "call", "family", "notes")


@dataclass(frozen=True)
class Expectation:
    """What a scenario must show: needs_relay, whether it connects, maybe the verdict and relay transport."""

    needs_relay: bool | None
    connect: bool = True
    verdict: Verdict | None = None
    turn_transport: str | None = None
    # A held call's outcome: held, dropped or recovered; or the outcomes any of which is right, written
    # "held|recovered" (a call that survives; whether an echo or two fall in the gap is chance).
    call: str | None = None
    family: str | None = None  # the settled pair's address family, ipv4 or ipv6 (dual-stack scenarios)
    source: str = ""  # where in the table this came from, for the mismatch message
    notes: str = field(default="", compare=False)


class ExpectationError(InputError):
    """A bad expectations table or entry; the message names the file and the key."""


class MissingExpectation(ExpectationError):
    """No expectation for a scenario: the suite refuses it, the run commands record it as unchecked."""


def load_expectations(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ExpectationError(f"expectations file not found: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise ExpectationError(f"{path}: not valid TOML: {e}") from None


def shipped_table() -> dict[str, Any]:
    """The shipped table; {} (outcomes unchecked) when netsim runs without its scenarios/ directory."""
    return load_expectations(SHIPPED_TABLE) if SHIPPED_TABLE.is_file() else {}


def beside_its_file(scn: Scenario, tables: dict[Path, dict[str, Any]] | None = None) -> Scenario:
    """A scenario file's scenario with the expectation of the expected.toml in its directory (when it has
    none of its own and that table has one for it); `tables` caches the tables read."""
    if scn.expect is not None or scn.source is None:
        return scn
    path = Path(scn.source).resolve().parent / TABLE_FILE
    if not path.is_file():
        return scn
    cache = {} if tables is None else tables
    if path not in cache:
        cache[path] = load_expectations(path)
    try:
        found = expectation(scn, cache[path])
    except MissingExpectation:
        return scn
    return dataclasses.replace(scn, expect=found)


def _matrix_needs_relay(table: dict[str, Any], a: str, b: str) -> bool:
    grid = table["matrix"]
    kinds, rows = grid["kinds"], grid["needs_relay"]
    if a not in kinds or b not in kinds:
        raise ExpectationError(f"expected.toml: matrix.kinds has no {a if a not in kinds else b!r}")
    value = rows[kinds.index(a)][kinds.index(b)]
    if not isinstance(value, bool):
        raise ExpectationError(
            f"expected.toml: matrix.needs_relay[{a}][{b}]: expected true or false, got {value!r}"
        )
    return value


def ipv6_path(topology: Topology) -> bool | None:
    """Whether every site has IPv6 (dual, or IPv6-only with a CLAT) behind a preset firewall that lets a
    hole punched through; None where a researcher's own IPv6 ruleset makes it unknown. A false answer
    leaves the IPv4 oracle: a CLAT host's IPv4 goes through its carrier's NAT44, the cell's NAT kind."""
    sites = topology.sites
    if not sites or not all(s.ipv6 in (DUAL, CLAT, IPV6_ONLY) for s in sites):
        return False
    kinds = {fw.kind for s in sites if (fw := site_fw6(s)) is not None}
    if FW6_BLOCK_UDP in kinds:
        return False
    return True if kinds <= {FW6_OPEN, FW6_EIF, FW6_APDF} else None


def expectation(scn: Scenario, table: dict[str, Any]) -> Expectation:
    """The expectation for one scenario: its own file's `[expect]` table wins, then a `[scenario."<id>"]`
    entry of the table, then the NAT matrix."""
    if scn.expect is not None:
        return scn.expect
    entry = table.get("scenario", {}).get(scn.id)
    if entry is not None:
        return from_entry(entry, f'expected.toml: scenario."{scn.id}"')
    in_matrix = scn.nat_a in NAT_KINDS and scn.nat_b in NAT_KINDS
    matrix_group = scn.group.startswith(MATRIX_GROUPS) or scn.group == POPULATION  # any stack pairing
    ipv6 = ipv6_path(scn.topology) if matrix_group and scn.group.endswith(IPV6_GROUP_SUFFIX) else False
    if ipv6:
        # IPv6 on both sides (dual or 464XLAT hosts) through firewalls that let hole punching through: ICE
        # connects directly whatever the IPv4 NATs are
        return Expectation(False, connect=True, source="IPv6 on both sides (docs/nat.md, IP modes)")
    if matrix_group and in_matrix and ipv6 is not None and "matrix" in table:
        needs = _matrix_needs_relay(table, scn.nat_a, scn.nat_b)
        source = f"matrix[{scn.nat_a}][{scn.nat_b}]"
        if scn.options.turn == NO_TURN:
            return Expectation(needs, connect=not needs, verdict="failed" if needs else None, source=source)
        return Expectation(needs, connect=True, verdict=RELAY if needs else None, source=source)
    raise MissingExpectation(
        f'expected.toml: no entry for scenario "{scn.id}" (add [scenario."{scn.id}"] or an [expect] table)'
    )


def from_entry(entry: dict[str, Any], where: str) -> Expectation:
    """An expectation from a table (an expected.toml entry, a scenario file's [expect]); `where` names it
    in errors, e.g. 'my.toml: expect'."""
    if not isinstance(entry, dict):
        raise ExpectationError(f"{where}: expected a table, got {entry!r}")
    for key in entry:
        if key not in ENTRY_KEYS:
            raise ExpectationError(f"{where}.{key}: unknown key (allowed: {', '.join(sorted(ENTRY_KEYS))})")
    verdict = entry.get("verdict")
    if verdict is not None and verdict not in VERDICTS:
        raise ExpectationError(
            f"{where}.verdict: unknown verdict {verdict!r} (choose from {', '.join(VERDICTS)})"
        )
    needs = entry.get("needs_relay")
    if needs is not None and not isinstance(needs, bool):
        raise ExpectationError(f"{where}.needs_relay: expected true or false, got {needs!r}")
    connect = entry.get("connect", verdict != "failed")
    if not isinstance(connect, bool):
        raise ExpectationError(f"{where}.connect: expected true or false, got {connect!r}")
    if verdict is not None and connect != (verdict != "failed"):
        raise ExpectationError(f"{where}: connect = {str(connect).lower()} contradicts verdict = {verdict!r}")
    transport = entry.get("turn_transport")
    if transport is not None and transport not in TURN_TRANSPORTS:
        raise ExpectationError(f"{where}.turn_transport: unknown transport {transport!r}")
    call = entry.get("call")
    if isinstance(call, list) and call and all(isinstance(c, str) for c in call):
        call = "|".join(call)  # ["held", "recovered"]: either is right
    if call is not None and (not isinstance(call, str) or not set(call.split("|")) <= set(CALL_OUTCOMES)):
        raise ExpectationError(
            f"{where}.call: unknown call outcome {call!r} (choose from {', '.join(CALL_OUTCOMES)}, "
            'or a list of them like ["held", "recovered"])'
        )
    family = entry.get("family")
    if family is not None and family not in FAMILIES:
        raise ExpectationError(
            f"{where}.family: unknown family {family!r} (choose from {', '.join(FAMILIES)})"
        )
    return Expectation(
        family=family,
        call=call,
        needs_relay=needs,
        connect=connect,
        verdict=cast(Verdict | None, verdict),
        turn_transport=entry.get("turn_transport"),
        source=where,
        notes=str(entry.get("notes", "")),
    )


def mismatch(record: Mapping[str, Any], exp: Expectation) -> str | None:
    """None when the record meets the expectation, else expectation and outcome side by side."""
    problems: list[tuple[str, object, object]] = []
    connected = record.get("verdict") != "failed"
    if connected != exp.connect:
        problems.append(("connects", exp.connect, connected))
    if exp.needs_relay is not None and record.get("needs_relay") != exp.needs_relay:
        problems.append(("needs_relay", exp.needs_relay, record.get("needs_relay")))
    if exp.verdict is not None and record.get("verdict") != exp.verdict:
        problems.append(("verdict", exp.verdict, record.get("verdict")))
    if exp.turn_transport is not None:
        used = {record.get(side, {}).get("turn_transport") for side in SIDES}
        if exp.turn_transport not in used:
            problems.append(("turn_transport", exp.turn_transport, sorted(str(u) for u in used)))
    if exp.family is not None:
        won = (record.get("families") or {}).get("won")
        if won != exp.family:
            problems.append(("family", exp.family, won))
    if exp.call is not None:
        got = (record.get("call") or {}).get("outcome")
        if got not in exp.call.split("|"):
            problems.append(("call", exp.call, got))
    if not problems:
        return None
    lines = [f"{'':<15} {'expected':<12} actual", *(f"{k:<15} {e!s:<12} {a}" for k, e, a in problems)]
    pair = " / ".join(
        f"{side}: {record.get(side, {}).get('local_type')}->{record.get(side, {}).get('remote_type')}"
        for side in SIDES
    )
    lines.append(f"(expectation from {exp.source}; selected pairs {pair}; reason: {record.get('reason')})")
    return "\n".join(lines)
