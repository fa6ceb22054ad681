"""Many pairs in one lab: the topology, its limit, and a real crowd run (root)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from netsim.lab.topology import plan
from netsim.suite import crowd
from netsim.suite.catalog import population
from netsim.suite.expectations import load_expectations
from netsim.suite.mixes import MixError

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def test_the_ramp_is_the_heavier_stacks() -> None:
    assert crowd.ramp_s("pion", "pion") == crowd.RAMP_S["pion"] < crowd.ramp_s("aiortc", "aiortc")
    assert crowd.ramp_s("pion", "aiortc") == crowd.ramp_s("aiortc", "pion") == crowd.RAMP_S["aiortc"]
    assert crowd.ramp_s("exec:./mine", "pion") == crowd.DEFAULT_RAMP_S


def test_two_sites_a_pair_in_one_topology() -> None:
    scns = population(3, {"open": 1.0, "symmetric": 1.0, "udp-blocked": 1.0}, seed=4)
    topo, hosts = crowd.crowd_topology(scns)
    assert hosts == [("h0a", "h0b"), ("h1a", "h1b"), ("h2a", "h2b")]
    assert [s.name for s in topo.sites] == ["r0a", "r0b", "r1a", "r1b", "r2a", "r2b"]
    kinds = [s.nat.kind for s in topo.sites]
    assert kinds == [k for scn in scns for k in (scn.nat_a, scn.nat_b)]


def test_addressing_bounds_a_lab_whose_neighbours_are_static(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cap = tmp_path / "gc_thresh3"
    cap.write_text("1024\n")  # the default: the 2 dynamic entries a pair costs leave room for 384 pairs
    monkeypatch.setattr(crowd, "GC_THRESH3", cap)
    assert crowd.max_pairs() == crowd.MAX_PAIRS == 120
    with pytest.raises(
        MixError, match=r"^--size: one lab holds 1 to 120 pairs here, got 121 \(two sites a pair"
    ):
        crowd.crowd_topology(population(121, {"open": 1.0}, seed=1))


def test_homes_share_carriers_but_a_pair_never_shares_one() -> None:
    mix = {"full-cone+cgn-symmetric": 1.0, "port-restricted-cone+cgn-port-restricted-cone": 1.0, "open": 1.0}
    scns = population(120, mix, seed=5)
    topo, hosts = crowd.crowd_topology(scns)
    behind = {s.hosts[0]: s.behind for s in topo.sites}
    kinds = {c.name: c.nat.kind for c in topo.carriers}
    assert len(topo.carriers) == 4  # one per CGN kind and side
    for scn, (a, b) in zip(scns, hosts, strict=True):
        for host, kind in ((a, scn.nat_a), (b, scn.nat_b)):
            assert (behind[host] is not None) == ("+cgn-" in kind)
            if behind[host] is not None:
                assert kinds[str(behind[host])] == kind.split("+cgn-")[1]
        assert behind[a] is None or behind[a] != behind[b]
    assert max(sum(b == c.name for b in behind.values()) for c in topo.carriers) > 10  # many homes each
    # 240 sites: no site's public WAN takes a carrier's (198.18.101.1 ...), every address is unique
    internet = [i.address for n in plan(topo).values() for i in n.ifaces if i.link == "internet"]
    assert len(internet) == len(set(internet))


def test_a_small_neighbour_table_still_bounds_a_lab(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cap = tmp_path / "gc_thresh3"
    cap.write_text("128\n")
    monkeypatch.setattr(crowd, "GC_THRESH3", cap)
    assert crowd.max_pairs() == 48  # 75 % of 128 entries, two a pair
    with pytest.raises(
        MixError, match=r"holds 1 to 48 pairs here, got 49 \(the kernel's neighbour table, shared"
    ):
        crowd.crowd_topology(population(49, {"open": 1.0}, seed=1))


def test_table_fulls_are_summed_over_cpus(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    stats = tmp_path / "arp_cache"
    head = "entries allocs destroys hash_grows lookups hits res_failed rcv_probes_mcast rcv_probes_ucast"
    head += " periodic_gc_runs forced_gc_runs unresolved_discards table_fulls"
    row = " ".join(["00000063"] * 12)  # one line per CPU, hexadecimal
    stats.write_text(f"{head}\n{row} 00000010\n{row} 00000fe8\n")
    monkeypatch.setattr(crowd, "ARP_STATS", stats)
    assert crowd.table_fulls() == 0x10 + 0xFE8
    monkeypatch.setattr(crowd, "ARP_STATS", tmp_path / "missing")
    assert crowd.table_fulls() is None


def test_services_are_prioritised_thread_by_thread_and_their_waits_read() -> None:
    # a child with a second thread: a priority is a thread's on Linux, so each must get it
    code = "import threading, time; threading.Thread(target=time.sleep, args=(30,)).start(); print(1)"
    child = subprocess.Popen([sys.executable, "-u", "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "1\n"
        tids = crowd.tasks(child.pid)
        assert len(tids) == 2
        crowd.prioritise([child.pid], nice=5)  # lowering one's own process needs no privilege
        assert [os.getpriority(os.PRIO_PROCESS, tid) for tid in tids] == [5, 5]
        waited = crowd.runqueue_wait_s([child.pid])
        assert waited is not None and waited >= 0
        assert crowd.runqueue_wait_s([]) is None
    finally:
        child.kill()
        child.wait()
        assert child.stdout is not None
        child.stdout.close()


@pytest.mark.root
@pytest.mark.usefixtures("no_leftovers")
def test_a_crowd_shares_one_turn_server(tmp_path: Path) -> None:
    scns = population(6, {"port-restricted-cone": 1.0, "symmetric": 1.0}, seed=3)
    table = load_expectations(SCENARIOS / "expected.toml")
    counts, stats = crowd.run_crowd(scns, 6, table, tmp_path, show=lambda line: None)
    records = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert counts.violated == 0 and stats.agreement == 1.0, [r["reason"] for r in records]
    # Its deadlines grow with its own load: on a quiet machine none is inconclusive (here: none stays so).
    assert counts.inconclusive == 0, [r["attempts"] for r in records]
    assert (stats.pairs, stats.concurrent, len(records)) == (6, 6, 6)
    assert stats.allocations >= 6  # one shared coturn served them all
    assert stats.relayed_bytes is not None and stats.relayed_bytes > 0  # prc x symmetric: relayed
    assert all(r["needs_relay_run"] is None and r["outcome"] == "passed" for r in records)


@pytest.mark.root
@pytest.mark.usefixtures("no_leftovers")
def test_a_crowd_with_carriers_gives_every_pair_its_solo_verdict(tmp_path: Path) -> None:
    """CGN-layered homes behind shared carriers: each pairing reaches the answer its cell gives alone (the
    same verdict, or both connected where the cell needs no relay: a relay may win the nomination race)."""
    from netsim.peers.launcher import Launcher
    from netsim.suite.runner import run_one

    mix = {"full-cone+cgn-symmetric": 1.0, "port-restricted-cone": 1.0, "full-cone+cgn-full-cone": 1.0}
    scns = population(8, mix, seed=2)
    table = load_expectations(SCENARIOS / "expected.toml")
    counts, stats = crowd.run_crowd(scns, 8, table, tmp_path, show=lambda line: None)
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    records = {r["scenario"]: r for r in map(json.loads, lines)}
    assert len(records) == 8 and counts.inconclusive <= 2  # load, not the NATs: left out below
    solo: dict[tuple[str, str], tuple[str, bool | None]] = {}
    with Launcher() as launcher:
        for scn in scns:
            if (scn.nat_a, scn.nat_b) not in solo:
                record, _ = run_one(scn, launcher, table, None, strict=False)
                solo[(scn.nat_a, scn.nat_b)] = (record["verdict"], record["needs_relay"])
    assert any(solo[k][1] for k in solo) and not all(solo[k][1] for k in solo)  # both answers occur
    for scn in scns:
        if records[scn.id]["outcome"] == "inconclusive":
            continue
        verdict, needs = solo[(scn.nat_a, scn.nat_b)]
        got = records[scn.id]["verdict"]
        assert solo_answer(got, verdict, needs), (scn.id, got, verdict, needs)


def solo_answer(crowd_verdict: str, solo_verdict: str, needs_relay: bool | None) -> bool:
    """Whether a crowd session reached its cell's solo answer (bench/crowd.py's rule too)."""
    return crowd_verdict == solo_verdict or (
        needs_relay is False and crowd_verdict != "failed" and solo_verdict != "failed"
    )
