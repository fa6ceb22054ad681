"""Verdict rules and session timings from two PEER records (pure logic)."""

from __future__ import annotations

from typing import Any

import pytest

from netsim.peers.protocol import RawPeerRecord
from netsim.session.verdict import (
    disagreement,
    families,
    first_pair,
    first_verdict,
    negotiated,
    pair_view,
    peer_record,
    session_timings,
    settled_pair,
    verdict,
    winner,
    with_timelines,
)
from tests.peers.configs import raw_record

FAILED = raw_record(state="failed")


def _peer(local: str | None, remote: str | None, state: str = "connected") -> RawPeerRecord:
    return raw_record(state=state, local_type=local, remote_type=remote)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (_peer("host", "host"), _peer("host", "host"), ("direct-host", None)),
        (_peer("host", "srflx"), _peer("host", "srflx"), ("direct", None)),
        (_peer("host", "prflx"), _peer("host", "srflx"), ("direct", None)),
        (_peer("relay", "prflx"), _peer("host", "relay"), ("relay", "a")),
        (_peer("host", "relay"), _peer("relay", "srflx"), ("relay", "b")),
        (_peer("relay", "relay"), _peer("relay", "relay"), ("relay", "both")),
        (_peer("host", "host"), _peer(None, None, "failed"), ("failed", None)),
        (_peer("relay", "relay", "failed"), _peer("relay", "relay"), ("failed", None)),
    ],
)
def test_verdict(a: RawPeerRecord, b: RawPeerRecord, expected: tuple[str, str | None]) -> None:
    assert verdict(a, b) == expected


def test_session_timings_use_the_winning_offer_and_the_later_peer() -> None:
    a = raw_record(
        negotiation={"offerer": True},
        marks={"offer": 100.0, "ice_completed": 100.5, "channel_open": 100.6, "first_echo": 100.62},
        timings={"gathering_s": 0.01, "rtt_ms": 0.9},
    )
    b = raw_record(
        negotiation={"offerer": False},
        marks={"offer": 100.02, "ice_completed": 100.45, "channel_open": 100.7, "first_echo": 100.71},
        timings={"gathering_s": 0.03, "rtt_ms": 0.8},
    )
    t = session_timings(a, b)
    assert t == {
        "gathering_s": 0.03,
        "ice_completed_s": 0.5,
        "channel_open_s": 0.7,
        "first_echo_s": 0.71,
        "rtt_ms": 0.8,
    }
    b["marks"] = {k: v for k, v in b["marks"].items() if k != "first_echo"}
    assert session_timings(a, b)["first_echo_s"] is None


def test_negotiated() -> None:
    assert negotiated(raw_record(candidates={"local": ["x"], "remote": ["y"]}))
    assert not negotiated(raw_record(candidates={"local": ["x"], "remote": []}))
    assert not negotiated(FAILED)


def test_peer_record_keeps_the_design_keys_only() -> None:
    raw = raw_record(state="connected", local_type="host", marks={"offer": 1.0}, timings={"rtt_ms": 1.5})
    rec = peer_record(raw)
    assert "marks" not in rec
    assert rec["state"] == "connected" and rec["local_type"] == "host" and rec["remote_type"] is None
    assert rec["timings"] == {
        "gathering_s": None,
        "ice_completed_s": None,
        "channel_open_s": None,
        "first_echo_s": None,
        "rtt_ms": 1.5,
    }
    assert rec["candidates"] == {"local": [], "remote": [], "parsed": {"local": [], "remote": []}}


# --- the winner over time --------------------------------------------------------------------------------

RELAY_FIRST = {"t": 100.2, "local_type": "relay", "remote_type": "srflx", "local": "198.18.0.4:50000",
               "remote": "198.18.2.1:4000", "turn_transport": "udp", "role": "controlling"}  # fmt: skip
DIRECT_LATER = {"t": 100.7, "local_type": "srflx", "remote_type": "srflx", "local": "198.18.1.1:3000",
                "remote": "198.18.2.1:4000", "turn_transport": None, "role": "controlling"}  # fmt: skip


def _timeline_peer(pairs: list[dict[str, Any]], offerer: bool, state: str = "connected") -> RawPeerRecord:
    """A raw record as peers write it: the record's own pair is the last of its timeline."""
    last = pairs[-1] if pairs else {}
    return raw_record(
        state=state,
        negotiation={"offerer": offerer},
        marks={"offer": 100.0} if offerer else {"offer": 100.05},
        pairs=pairs,
        **{
            k: last.get(k) for k in ("local_type", "remote_type", "local", "remote", "turn_transport", "role")
        },
    )


def test_timelines_are_seconds_from_the_winning_offer_and_the_raw_records_stay_as_they_were() -> None:
    a = _timeline_peer([RELAY_FIRST, DIRECT_LATER], offerer=True)
    b = _timeline_peer([{**DIRECT_LATER, "t": 100.5, "role": "controlled"}], offerer=False)
    a2, b2 = with_timelines(a, b)
    assert [p["t"] for p in a2["pairs"]] == [0.2, 0.7]
    assert [p["t"] for p in b2["pairs"]] == [0.5]  # the offerer's offer, not b's own receipt of it
    assert a["pairs"][0]["t"] == 100.2  # copies: waiting twice must not shift twice
    no_offer = with_timelines(raw_record(pairs=[RELAY_FIRST]), raw_record(pairs=[]))
    assert no_offer[0]["pairs"][0]["t"] is None


def test_first_and_settled_pairs() -> None:
    a = _timeline_peer([RELAY_FIRST, DIRECT_LATER], offerer=True)
    assert first_pair(a) == {**RELAY_FIRST, "family": "ipv4"}  # with its time in the timeline
    settled = settled_pair(a)
    assert settled is not None and settled["local_type"] == "srflx" and settled["t"] == DIRECT_LATER["t"]
    assert settled_pair({**a, "state": "failed"}) is None
    # a record without a timeline (an older peer): its one pair is both first and settled
    old = raw_record(state="connected", local_type="host", remote_type="srflx", local="x", remote="y")
    want = {"t": None, "local_type": "host", "remote_type": "srflx", "local": "x", "remote": "y"}
    assert first_pair(old) == {**want, "role": None, "turn_transport": None, "family": "ipv4"}
    assert first_pair(FAILED) is None


def test_first_verdict_is_the_pair_at_connect_and_verdict_the_settled_one() -> None:
    a = _timeline_peer([RELAY_FIRST, DIRECT_LATER], offerer=True)
    b = _timeline_peer(
        [
            {**RELAY_FIRST, "local_type": "srflx", "remote_type": "relay"},
            {**DIRECT_LATER, "role": "controlled"},
        ],
        offerer=False,
    )
    assert first_verdict(a, b) == ("relay", "a")
    assert verdict(a, b) == ("direct", None)
    failed: RawPeerRecord = {**b, "state": "failed"}
    assert first_verdict(a, failed) == ("failed", None)
    assert first_verdict(FAILED, FAILED) == ("failed", None)


@pytest.mark.parametrize(
    ("pair", "view"),
    [
        ({"local_type": "host", "remote_type": "host"}, "direct-host"),
        ({"local_type": "srflx", "remote_type": "prflx"}, "direct"),
        ({"local_type": "host", "remote_type": "srflx"}, "direct"),
        ({"local_type": "host", "remote_type": "relay"}, "relay"),
        ({"local_type": "relay", "remote_type": "prflx"}, "relay"),
    ],
)
def test_pair_view(pair: dict[str, Any], view: str) -> None:
    assert pair_view(pair) == view


def test_disagreement_names_both_sides_when_only_one_relays() -> None:
    a = _timeline_peer([RELAY_FIRST], offerer=True)
    b = _timeline_peer([{**DIRECT_LATER, "role": "controlled"}], offerer=False)
    assert disagreement(a, b) == (
        "a ends relay (relay 198.18.0.4:50000 -> srflx 198.18.2.1:4000); "
        "b ends direct (srflx 198.18.1.1:3000 -> srflx 198.18.2.1:4000)"
    )
    # the stacks label the same direct path differently (aiortc: host base, Chromium: srflx): no disagreement
    aiortc_side: RawPeerRecord = {**b, "local_type": "host", "remote_type": "srflx"}
    assert disagreement(_timeline_peer([DIRECT_LATER], offerer=True), aiortc_side) is None
    assert disagreement(a, {**b, "state": "failed"}) is None  # a failed session has no settled pairs


def test_winner_fields_for_the_session_record() -> None:
    a = _timeline_peer([RELAY_FIRST, DIRECT_LATER], offerer=True)
    b = _timeline_peer([{**DIRECT_LATER, "t": 100.75, "role": "controlled"}], offerer=False)
    a2, b2 = with_timelines(a, b)
    assert winner(a2, b2) == {"first_verdict": "relay", "disagreement": None, "settled_s": 0.75}
    assert winner(FAILED, FAILED)["settled_s"] is None


def test_peer_record_carries_stack_timeline_first_and_settled() -> None:
    settings = {"flags": ["--headless"], "mdns": True}
    raw: RawPeerRecord = {**_timeline_peer([RELAY_FIRST, DIRECT_LATER], offerer=True), "stack": "chromium",
                          "hide_host": True, "version": "156.0.8078.108", "settings": settings}  # fmt: skip
    rec: dict[str, Any] = dict(peer_record(raw))
    assert rec["peer"] == "chromium" and rec["hide_host"] is True
    assert rec["pairs"] == raw["pairs"] and all(p["family"] == "ipv4" for p in rec["pairs"])
    assert rec["first"]["local_type"] == "relay" and rec["settled"]["local_type"] == "srflx"
    assert rec["browser"]["version"] == "156.0.8078.108"
    failed: dict[str, Any] = dict(peer_record(raw_record(state="failed", reason="browser crashed")))
    assert (failed["peer"], failed["first"], failed["settled"], failed["pairs"]) == ("aiortc", None, None, [])


def _v6(local: str, remote: str, **fields: Any) -> RawPeerRecord:
    return raw_record(
        state="connected",
        local_type="host",
        remote_type="host",
        local=local,
        remote=remote,
        family="ipv6",
        **fields,
    )


def test_an_ipv6_host_pair_between_two_sites_is_direct_and_on_one_lan_direct_host() -> None:
    a, b = (
        _v6("[2001:db8:1::2]:5000", "[2001:db8:2::2]:6000"),
        _v6("[2001:db8:2::2]:6000", "[2001:db8:1::2]:5000"),
    )
    assert verdict(a, b) == ("direct", None)
    assert pair_view(first_pair(a) or settled_pair(a)) == "direct"  # type: ignore[arg-type]
    same = (
        _v6("[2001:db8:1::2]:5000", "[2001:db8:1::3]:6000"),
        _v6("[2001:db8:1::3]:6000", "[2001:db8:1::2]:5000"),
    )
    assert verdict(*same) == ("direct-host", None)
    v4 = raw_record(
        state="connected", local_type="host", remote_type="host", local="198.19.1.2:1", remote="198.19.2.2:2"
    )
    assert verdict(v4, v4) == ("direct-host", None)  # IPv4 keeps its meaning


def test_families_say_what_each_side_gathered_and_which_family_won() -> None:
    lines = {
        "v4": "candidate:1 1 udp 2113937151 10.1.0.2 5000 typ host",
        "v6": "candidate:2 1 udp 2113939711 2001:db8:1::2 5001 typ host",
    }
    a = _v6(
        "[2001:db8:1::2]:5001",
        "[2001:db8:2::2]:6000",
        candidates={"local": [lines["v4"], lines["v6"]], "remote": []},
        pairs=[
            {
                "t": 0.1,
                "local_type": "host",
                "remote_type": "host",
                "local": "[2001:db8:1::2]:5001",
                "remote": "[2001:db8:2::2]:6000",
                "family": "ipv6",
            }
        ],
    )
    b = raw_record(
        state="connected",
        local_type="srflx",
        remote_type="host",
        local="10.2.0.2:1",
        remote="10.1.0.2:5000",
        candidates={"local": [lines["v4"]], "remote": []},
    )
    assert families(a, b) == {"a": ["ipv4", "ipv6"], "b": ["ipv4"], "won": "ipv6", "ipv6_pair": True}
    failed = raw_record(state="failed", candidates={"local": [], "remote": []})
    assert families(failed, b) == {"a": [], "b": ["ipv4"], "won": None, "ipv6_pair": False}
