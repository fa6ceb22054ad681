"""Many pairs in one lab: the topology, its limit, and a real crowd run (root)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netsim.suite import crowd
from netsim.suite.catalog import population
from netsim.suite.expectations import load_expectations
from netsim.suite.mixes import MixError

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def test_two_sites_a_pair_in_one_topology() -> None:
    scns = population(3, {"open": 1.0, "symmetric": 1.0, "udp-blocked": 1.0}, seed=4)
    topo, hosts = crowd.crowd_topology(scns)
    assert hosts == [("h0a", "h0b"), ("h1a", "h1b"), ("h2a", "h2b")]
    assert [s.name for s in topo.sites] == ["r0a", "r0b", "r1a", "r1b", "r2a", "r2b"]
    kinds = [s.nat.kind for s in topo.sites]
    assert kinds == [k for scn in scns for k in (scn.nat_a, scn.nat_b)]


def test_the_neighbour_table_bounds_a_lab(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cap = tmp_path / "gc_thresh3"
    cap.write_text("1024\n")
    monkeypatch.setattr(crowd, "GC_THRESH3", cap)
    assert crowd.max_pairs() == 76
    too_many = population(77, {"open": 1.0}, seed=1)
    with pytest.raises(MixError, match=r"--size: one lab holds 1 to 76 pairs here, got 77"):
        crowd.crowd_topology(too_many)
    with pytest.raises(MixError, match=r"CGN-layered kinds \(full-cone\+cgn-symmetric\) need a lab per pair"):
        crowd.crowd_topology(population(1, {"full-cone+cgn-symmetric": 1.0}, seed=1))


@pytest.mark.root
@pytest.mark.usefixtures("no_leftovers")
def test_a_crowd_shares_one_turn_server(tmp_path: Path) -> None:
    scns = population(6, {"port-restricted-cone": 1.0, "symmetric": 1.0}, seed=3)
    table = load_expectations(SCENARIOS / "expected.toml")
    failures, stats = crowd.run_crowd(scns, 6, table, tmp_path, show=lambda line: None)
    records = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert failures == 0 and stats.agreement == 1.0, [r["reason"] for r in records]
    assert (stats.pairs, stats.concurrent, len(records)) == (6, 6, 6)
    assert stats.allocations >= 6  # one shared coturn served them all
    assert all(r["needs_relay_run"] is None and r["outcome"] == "passed" for r in records)
