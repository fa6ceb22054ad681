"""The experiment behind a session, as records keep it (`experiment`): enough to run it again, no secrets.

The topology is kept in the scenario-file form, so `topology_from_record` reads it back through the same
loader checks (netsim.lab.topology.from_dict). A researcher's rules file is kept whole (path, SHA-256 and
text): the file may change or vanish after the run, and a rerun must use what this session used.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tempfile
from pathlib import Path
from typing import Any

from netsim import runfiles
from netsim.errors import InputError
from netsim.lab.impair import site_mechanisms
from netsim.lab.nat import TOML_KEYS, NatSpec
from netsim.lab.topology import Carrier, Site, Topology, from_dict, plan, site_fw6
from netsim.records import CarrierTable, Experiment, RulesFile, SiteTable, TopologyTable
from netsim.session.options import SessionOptions
from netsim.suite.scenario import Scenario
from netsim.vocab import IPV4_ONLY


def nat_table(spec: NatSpec) -> dict[str, Any]:
    """A NAT spec as its TOML table: every knob spelled out, so a rerun does not depend on defaults."""
    values = dataclasses.asdict(spec)
    table = {"type": values.pop("kind")}
    table.update({k: v for k, v in values.items() if k in TOML_KEYS and v is not None})
    return table


def _site_table(site: Site) -> SiteTable:
    table: SiteTable = {"name": site.name, "nat": nat_table(site.nat), "hosts": list(site.hosts)}
    if site.behind is not None:
        table["behind"] = site.behind
    if site.lan is not None:
        table["lan"] = site.lan
    if site.impair is not None:
        table["impair"] = {k: v for k, v in dataclasses.asdict(site.impair).items() if v is not None}
    if site.ipv6 != IPV4_ONLY:  # an IPv4-only site's table stays as it was
        table["ipv6"] = site.ipv6
        if site.ipv4_hosts:
            table["ipv4_hosts"] = list(site.ipv4_hosts)
        firewall = site_fw6(site)
        if firewall is not None:
            table["fw6"] = firewall.rules_file or firewall.kind
    return table


def _carrier_table(carrier: Carrier) -> CarrierTable:
    table: CarrierTable = {"name": carrier.name, "nat": nat_table(carrier.nat)}
    if carrier.nat64:
        table["nat64"] = True
    return table


def topology_table(topo: Topology) -> TopologyTable:
    """The topology in scenario-file form (what netsim.lab.topology.from_dict reads)."""
    table: TopologyTable = {
        "name": topo.name,
        "ipv6": topo.ipv6,
        "site": [_site_table(s) for s in topo.sites],
        "server": [{"name": s} for s in topo.servers],
    }
    if topo.carriers:
        table["carrier"] = [_carrier_table(c) for c in topo.carriers]
    return table


def _rules_files(topo: Topology) -> list[RulesFile]:
    out: list[RulesFile] = []
    for name, spec in [*((s.name, s.nat) for s in topo.sites), *((c.name, c.nat) for c in topo.carriers)]:
        if spec.rules_file is None:
            continue
        data = Path(spec.rules_file).read_bytes()
        out.append(
            {
                "site": name,
                "path": spec.rules_file,
                "sha256": hashlib.sha256(data).hexdigest(),
                "text": data.decode("utf-8", errors="replace"),
            }
        )
    return out


def experiment(scn: Scenario) -> Experiment:
    """The resolved experiment of a scenario."""
    return {
        "topology": topology_table(scn.topology),
        "addresses": {name: node.addresses + node.addresses6 for name, node in plan(scn.topology).items()},
        "options": scn.options.as_dict(),
        "rules": _rules_files(scn.topology),
        "scenario_file": scn.source,
        "scenario_text": scn.source_text,
        "population": scn.draw,
        "impairments": site_mechanisms(scn.topology),
    }


class RerunError(InputError):
    """A record that cannot be run again; the message says which field is missing or wrong."""


def scenario_from_record(record: dict[str, Any], rules_dir: Path | None = None) -> Scenario:
    """The scenario a record ran, rebuilt from its `experiment`.

    A rules file is written from the kept text into `rules_dir` (default: a new temporary directory), so
    the rerun uses exactly what the session used even if the original file changed.
    """
    exp = record.get("experiment")
    if not isinstance(exp, dict) or "topology" not in exp or "options" not in exp:
        raise RerunError(
            f"session {record.get('scenario')!r}: the record has no experiment (written by an older netsim?)"
        )
    table = _with_kept_rules(dict(exp["topology"]), exp.get("rules") or [], rules_dir)
    topo = from_dict(table, default_name=str(table.get("name", "rerun")))
    return Scenario(
        id=str(record.get("scenario") or f"rerun/{topo.name}"),
        group=str(record.get("group") or "rerun"),
        topology=topo,
        nat_a=str(record.get("nat_a")),
        nat_b=str(record.get("nat_b")),
        options=SessionOptions(**exp["options"]),
        source=exp.get("scenario_file"),
        source_text=exp.get("scenario_text"),
        draw=exp.get("population"),
    )


def _with_kept_rules(table: dict[str, Any], rules: list[RulesFile], rules_dir: Path | None) -> dict[str, Any]:
    """The topology with each kept rules text as its site's rules_file, written inside rules_dir only
    (runfiles.inside). A rules_file without kept text is refused: a record never names a file to read."""
    kept_sites = {entry["site"] for entry in rules}
    for key in ("site", "carrier"):
        for item in table.get(key, []):
            named = item.get("nat", {}).get("rules_file") if isinstance(item.get("nat"), dict) else None
            if named is not None and item.get("name") not in kept_sites:
                raise RerunError(
                    f"experiment.topology.{key} {item.get('name')!r}: rules_file {named!r} without its kept "
                    "text (a rerun never reads a file a record names)"
                )
    if not rules:
        return table
    directory = rules_dir or Path(tempfile.mkdtemp(prefix="netsim-rerun-"))
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for i, entry in enumerate(rules):
        try:
            paths[entry["site"]] = runfiles.inside(directory, f"{entry['site']}-{entry['sha256'][:12]}.nft")
        except runfiles.PathError as e:
            raise RerunError(f"experiment.rules[{i}].site: {e}") from None
    kept = {}
    for entry in rules:  # every name checked above before anything is written
        kept[entry["site"]] = str(runfiles.write_file(paths[entry["site"]], entry["text"]))
    out = dict(table)
    for key in ("site", "carrier"):
        out[key] = [
            {**item, "nat": {**item["nat"], "rules_file": kept[item["name"]]}}
            if item["name"] in kept
            else item
            for item in table.get(key, [])
        ]
    return out
