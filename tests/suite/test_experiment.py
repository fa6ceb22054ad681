"""The experiment a record keeps: complete, secret-free, and enough to rebuild the scenario (no root)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from netsim.lab.nat import RULES_DIR
from netsim.suite.catalog import population
from netsim.suite.experiment import RerunError, experiment, scenario_from_record, topology_table
from netsim.suite.scenario import load_scenario_file

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def _mine(tmp_path: Path) -> Path:
    rules = tmp_path / "my-nat.nft"
    rules.write_text((RULES_DIR / "full-cone.nft").read_text())
    path = tmp_path / "mine.toml"
    path.write_text(
        'name = "mine"\n[[carrier]]\nname = "cgn"\nnat = "symmetric"\n'
        '[[site]]\nname = "nat-a"\nnat = { type = "port-restricted-cone", hairpin = true, lifetime_s = 12 }\n'
        'hosts = ["a"]\nbehind = "cgn"\nimpair = { loss_pct = 2.5 }\n'
        '[[site]]\nname = "nat-b"\nnat = { type = "custom", rules_file = "my-nat.nft" }\nhosts = ["b"]\n'
        '[session]\ngroup = "mine"\nturn = "tcp"\n[expect]\nconnect = true\n'
    )
    return path


def test_experiment_keeps_topology_knobs_rules_options_and_file(tmp_path: Path) -> None:
    scn = load_scenario_file(_mine(tmp_path))
    exp = experiment(scn)
    sites = {s["name"]: s for s in exp["topology"]["site"]}
    assert sites["nat-a"]["nat"]["hairpin"] is True and sites["nat-a"]["nat"]["lifetime_s"] == 12
    assert sites["nat-a"]["behind"] == "cgn" and sites["nat-a"]["impair"]["loss_pct"] == 2.5
    assert exp["topology"]["carrier"] == [
        {"name": "cgn", "nat": topology_table(scn.topology)["carrier"][0]["nat"]}
    ]
    text = (tmp_path / "my-nat.nft").read_text()
    assert exp["rules"] == [
        {
            "site": "nat-b",
            "path": str(tmp_path / "my-nat.nft"),
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "text": text,
        }
    ]
    assert exp["options"]["turn"] == "tcp" and exp["options"]["deadline_s"] == 3.0
    assert exp["scenario_file"] == str(tmp_path / "mine.toml")
    assert exp["scenario_text"] == (tmp_path / "mine.toml").read_text()
    assert exp["addresses"]["a"] == ["10.1.0.2"] and exp["addresses"]["cgn"][0] == "198.18.101.1"
    assert exp["population"] is None
    json.dumps(exp)  # plain JSON, as records are written


def test_a_record_rebuilds_the_same_scenario_even_after_the_rules_file_changed(tmp_path: Path) -> None:
    scn = load_scenario_file(_mine(tmp_path))
    record = {"scenario": scn.id, "group": scn.group, "nat_a": scn.nat_a, "nat_b": scn.nat_b}
    record["experiment"] = json.loads(json.dumps(experiment(scn)))
    (tmp_path / "my-nat.nft").write_text("# changed after the run\n")
    again = scenario_from_record(record, rules_dir=tmp_path / "kept")
    assert again.options == scn.options and (again.id, again.group) == (scn.id, scn.group)
    kept = again.topology.site("nat-b").nat.rules_file
    assert kept is not None and Path(kept).read_text() == record["experiment"]["rules"][0]["text"]
    same = topology_table(again.topology)
    same["site"][1]["nat"]["rules_file"] = record["experiment"]["topology"]["site"][1]["nat"]["rules_file"]
    assert same == record["experiment"]["topology"]


def test_population_draws_are_kept() -> None:
    scn = population(3, {"open": 1.0, "symmetric": 2.0}, seed=9)[2]
    assert experiment(scn)["population"] == {
        "seed": 9,
        "mix": {"open": 1.0, "symmetric": 2.0},
        "size": 3,
        "index": 2,
    }
    named = population(1, {"open": 1.0}, seed=9, mix_b={"symmetric": 1.0}, names=("0.5 mobile + 0.5 x", None))
    assert experiment(named[0])["population"]["mix_name"] == "0.5 mobile + 0.5 x"  # type: ignore[index]


def test_no_secret_in_an_experiment() -> None:
    for scn in [load_scenario_file(p) for p in SCENARIOS.glob("*.toml") if p.name != "expected.toml"]:
        text = json.dumps(experiment(scn)).lower()
        assert "secret" not in text and "password" not in text and "token" not in text


def test_a_record_without_experiment_is_refused() -> None:
    with pytest.raises(RerunError, match=r"session 'm/x': the record has no experiment"):
        scenario_from_record({"scenario": "m/x"})


def test_a_dual_stack_sites_ip_mode_and_firewall_are_kept_and_read_back() -> None:
    from netsim.lab.fw6 import Fw6Spec
    from netsim.lab.topology import from_dict, standard_topology

    topo = standard_topology("symmetric", "full-cone", ipv6_a="dual", fw6_a=Fw6Spec("eif"))
    table = topology_table(topo)
    assert (table["site"][0].get("ipv6"), table["site"][0].get("fw6")) == ("dual", "eif")
    assert "ipv6" not in table["site"][1] and "fw6" not in table["site"][1]  # IPv4-only: as before
    again = from_dict(dict(table))
    assert again.sites == topo.sites
    clat = standard_topology("symmetric", "open", ipv6_a="clat")
    assert from_dict(dict(topology_table(clat))).carriers == clat.carriers  # the NAT64 carrier too
