"""The Pion peer in real labs (root): each pairing in a fresh standard lab through `run_session`, as
`netsim pair` runs it. Deadlines are generous where the test asserts an outcome, not speed (the machine is
shared); where Pion's own timing is the point (its 2 s relay acceptance wait) the test says so."""

from __future__ import annotations

import json
from typing import Any

import pytest

from netsim.peers import pion_stack

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("no_leftovers", "pion_built")]

PRC = "port-restricted-cone"


@pytest.fixture(scope="module")
def pion_built() -> None:
    try:
        pion_stack.build()
    except pion_stack.PionBuildError as exc:
        pytest.fail(f"{exc}; .ci/setup installs Go and the Pion package", pytrace=False)


def session(
    nat_a: str, nat_b: str, peer_a: str = "pion", peer_b: str = "pion", **opts: Any
) -> dict[str, Any]:
    from netsim.lab.lab import Lab
    from netsim.lab.topology import standard_topology
    from netsim.session.options import SessionOptions
    from netsim.session.run import run_session

    opts.setdefault("deadline_s", 8.0)
    options = SessionOptions(peer_a=peer_a, peer_b=peer_b, **opts)
    with Lab(standard_topology(nat_a, nat_b)) as lab:
        rec = dict(run_session(lab, options))
    brief = {k: rec[k] for k in ("verdict", "needs_relay", "reason", "connect_s")}
    print(f"\n{peer_a} x {peer_b} {nat_a} x {nat_b} {opts}: {json.dumps(brief)}")
    return rec


def connected(rec: dict[str, Any], stacks: tuple[str, str] = ("pion", "pion")) -> None:
    """Both sides connected on their stacks, with a pair timeline whose family is the addresses'."""
    assert rec["verdict"] != "failed", rec["reason"]
    for side, stack in zip("ab", stacks, strict=True):
        peer = rec[side]
        assert peer["peer"] == stack and peer["state"] == "connected", peer["reason"]
        assert peer["pairs"] and all(p["family"] == "ipv4" for p in peer["pairs"]), peer["pairs"]
        assert peer["first"]["family"] == peer["settled"]["family"] == "ipv4"
        assert 1 <= peer["echo"]["received"] <= peer["echo"]["sent"]
        if stack == "pion":
            assert (
                peer["version"] == pion_stack.version()
                and peer["settings"]["relay_acceptance_min_wait_s"] == 2
            )
            assert peer["launch"]["pid"] > 0 and peer["launch"]["spawn_to_signed_in_ms"] > 0
    assert {rec["a"]["role"], rec["b"]["role"]} == {"controlling", "controlled"}
    assert rec["a"]["negotiation"]["offerer"] and not rec["b"]["negotiation"]["offerer"]
    if "pion" in stacks:
        assert rec["versions"]["pion"] == pion_stack.version()


def test_full_cone_x_symmetric_connects_directly_without_turn() -> None:
    rec = session("full-cone", "symmetric", turn="none")
    connected(rec)
    assert rec["verdict"] == "direct" and rec["needs_relay"] is False


def test_symmetric_x_symmetric_settles_on_a_relay_after_pions_wait() -> None:
    """A relay pair is nominated only once Pion's relay acceptance wait (2 s of checking) is over."""
    rec = session("symmetric", "symmetric", turn="udp")
    connected(rec)
    assert rec["verdict"] == rec["first_verdict"] == "relay" and rec["needs_relay"] is True
    assert rec["needs_relay_run"]["verdict"] == "failed"
    assert rec["connect_s"] >= 2.0, rec["connect_s"]


def test_turn_over_tls_through_the_udp_blocking_firewall() -> None:
    rec = session("udp-blocked", PRC, turn="tls", deadline_s=14.0)
    connected(rec)
    assert rec["verdict"] == "relay" and rec["a"]["turn_transport"] == "tls"
    assert rec["a"]["local_type"] == "relay" and rec["needs_relay"] is True


def test_relay_only_policy_over_turn_tcp_hides_the_direct_path() -> None:
    rec = session("full-cone", "full-cone", turn="tcp", policy="relay", needs_relay=False)
    connected(rec)
    assert rec["verdict"] == "relay" and rec["relay_side"] == "both"
    assert rec["a"]["turn_transport"] == rec["b"]["turn_transport"] == "tcp"
    assert all(" typ relay" in c for side in "ab" for c in rec[side]["candidates"]["local"])


@pytest.mark.parametrize("first", ["a", "b"])
def test_glare_resolves_either_way_with_as_offer_winning(first: str) -> None:
    rec = session(PRC, PRC, glare=True, glare_first=first, needs_relay=False)
    connected(rec)
    a, b = rec["a"]["negotiation"], rec["b"]["negotiation"]
    assert b["rollbacks"] == 1 and a["rollbacks"] == 0 and a["offers_sent"] == 1
    assert a["ignored_offers"] == (1 if first == "b" else 0)
    assert b["offers_sent"] == (1 if first == "b" else 0)


@pytest.mark.parametrize("stacks", [("pion", "aiortc"), ("aiortc", "pion")])
def test_pion_and_aiortc_connect_both_ways(stacks: tuple[str, str]) -> None:
    rec = session("full-cone", "symmetric", *stacks, turn="none", media=True)
    connected(rec, stacks)
    assert rec["verdict"] == "direct" and rec["needs_relay"] is False
    assert all(sorted(rec[s]["media"]["received"]) == ["audio", "video"] for s in "ab"), rec["a"]["media"]


@pytest.mark.usefixtures("require_chromium")
@pytest.mark.parametrize("stacks", [("pion", "chromium"), ("chromium", "pion")])
def test_pion_and_chromium_connect_both_ways(stacks: tuple[str, str]) -> None:
    rec = session(PRC, "symmetric", *stacks, turn="udp")
    connected(rec, stacks)
    assert rec["verdict"] == "relay" and rec["needs_relay"] is True


def test_a_held_call_recovers_from_an_outage_on_the_selected_pair() -> None:
    rec = session(
        PRC,
        PRC,
        needs_relay=False,
        hold_s=6.0,
        interval_s=0.5,
        events=[{"at_s": 1.0, "action": "down", "node": "nat-a", "seconds": 2.0}],
    )
    connected(rec)
    call = rec["call"]
    assert call["outcome"] == "recovered", call
    assert call["a"]["restart"] == "supported" and call["b"]["restart"] == "supported"


def test_a_moved_host_recovers_through_an_ice_restart() -> None:
    """timeline-move.toml with Pion on both sides: a's old address is gone 1 s into the call; the call goes
    disconnected, a restarts ICE over a fresh WebSocket, and the new direct pair goes through nat-c."""
    from pathlib import Path

    from netsim.lab.lab import Lab
    from netsim.session.run import run_session
    from netsim.suite.scenario import load_scenario_file

    scn = load_scenario_file(Path(__file__).resolve().parents[2] / "scenarios" / "timeline-move.toml")
    with Lab(scn.topology) as lab:
        rec: dict[str, Any] = dict(run_session(lab, scn.options.replace(peer_a="pion", peer_b="pion")))
    connected(rec)
    call = rec["call"]
    assert call["outcome"] == "recovered", call
    restarts = call["a"]["restarts"]
    assert len(restarts) == 1 and restarts[0]["connected"] is not None and call["b"]["restarts"] == []
    assert rec["a"]["settled"]["local"].startswith("198.18.3.1:")  # nat-c's public address
