"""The peer's trace: state notes, timings from marks, and the PEER record's shape (no network)."""

from __future__ import annotations

from typing import Any

from netsim.peers.trace import Trace

TIMING_KEYS = {"gathering_s", "ice_completed_s", "channel_open_s", "first_echo_s", "rtt_ms"}


def _record(trace: Trace, **overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "user": "a-1",
        "identity": {"protocol": 1, "stack": "aiortc", "version": "1.16.0", "settings": {}},
        "pairs": [],
        "stable": True,
        "hide_host": False,
        "polite": False,
        "ice_urls": ["stun:198.18.0.2:3478"],
        "pair": None,
        "state": "failed",
        "reason": "why",
        "error": None,
        "negotiation": {"offers_sent": 0},
        "rtts_ms": [],
        "pings_sent": 0,
        "media_sent": [],
        "media_received": [],
    }
    return trace.record(**{**args, **overrides})


def test_timings_count_from_the_offer_mark() -> None:
    trace = Trace(t0=100.0)
    trace.marks.update(offer=100.5, ice_completed=100.54, channel_open=101.02, first_echo=101.05)
    trace.gathering_s = 0.00123456
    assert trace.timings([3.0, 1.0, 2.0, 10.0]) == {
        "gathering_s": 0.0012,
        "ice_completed_s": 0.04,
        "channel_open_s": 0.52,
        "first_echo_s": 0.55,
        "rtt_ms": 2.5,
        "start_to_first_echo_s": 1.05,
    }


def test_timings_without_an_offer_are_unknown() -> None:
    trace = Trace(t0=100.0)
    trace.marks["channel_open"] = 101.0  # never an offer on this side: nothing to count from
    assert trace.timings([]) == dict.fromkeys(TIMING_KEYS | {"start_to_first_echo_s"})


def test_notes_are_stamped_from_t0_in_order() -> None:
    trace = Trace()
    trace.note("signaling", "connected")
    trace.note("ice", "checking")
    assert [(s["what"], s["state"]) for s in trace.states] == [
        ("signaling", "connected"),
        ("ice", "checking"),
    ]
    assert 0 <= trace.states[0]["t"] <= trace.states[1]["t"] < 1.0


def test_record_of_a_connected_peer() -> None:
    trace = Trace(t0=10.0)
    trace.marks.update(offer=10.25, first_echo=10.5)
    trace.candidates["local"] = ["candidate:1 1 udp 1 10.1.0.2 4000 typ host"]
    pair = {
        "local_type": "relay",
        "remote_type": "srflx",
        "local": "198.18.0.2:50000",
        "remote": "198.18.2.1:4000",
        "role": "controlling",
        "turn_transport": "tcp",
    }
    rec = _record(
        trace,
        pair=pair,
        state="connected",
        reason=None,
        rtts_ms=[4.0, 2.0],
        pings_sent=3,
        media_sent=["audio", "video"],
        media_received=["audio"],
    )
    assert {k: rec[k] for k in pair} == pair
    assert rec["state"] == "connected" and rec["polite"] is False and rec["user"] == "a-1"
    assert rec["marks"] == {"start": 10.0, "offer": 10.25, "first_echo": 10.5}
    assert rec["echo"] == {"sent": 3, "received": 2}
    assert rec["media"] == {"sent": ["audio", "video"], "received": ["audio"]}
    assert rec["candidates"] == {"local": ["candidate:1 1 udp 1 10.1.0.2 4000 typ host"], "remote": []}
    assert TIMING_KEYS <= set(rec["timings"]) and rec["timings"]["rtt_ms"] == 3.0


def test_record_without_a_selected_pair_has_null_pair_fields() -> None:
    rec = _record(Trace(t0=1.0))
    for key in ("local_type", "remote_type", "local", "remote", "role", "turn_transport"):
        assert rec[key] is None, key
    assert rec["reason"] == "why" and rec["echo"] == {"sent": 0, "received": 0}
