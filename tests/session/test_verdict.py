"""Verdict rules and session timings from two PEER records (pure logic)."""

from __future__ import annotations

from typing import Any

import pytest

from netsim.session.verdict import negotiated, peer_record, session_timings, verdict


def _peer(local: str | None, remote: str | None, state: str = "connected") -> dict[str, Any]:
    return {"state": state, "local_type": local, "remote_type": remote}


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
def test_verdict(a: dict[str, Any], b: dict[str, Any], expected: tuple[str, str | None]) -> None:
    assert verdict(a, b) == expected


def test_session_timings_use_the_winning_offer_and_the_later_peer() -> None:
    a: dict[str, Any] = {
        "negotiation": {"offerer": True},
        "marks": {"offer": 100.0, "ice_completed": 100.5, "channel_open": 100.6, "first_echo": 100.62},
        "timings": {"gathering_s": 0.01, "rtt_ms": 0.9},
    }
    b: dict[str, Any] = {
        "negotiation": {"offerer": False},
        "marks": {"offer": 100.02, "ice_completed": 100.45, "channel_open": 100.7, "first_echo": 100.71},
        "timings": {"gathering_s": 0.03, "rtt_ms": 0.8},
    }
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
    assert negotiated({"candidates": {"local": ["x"], "remote": ["y"]}})
    assert not negotiated({"candidates": {"local": ["x"], "remote": []}})
    assert not negotiated({"state": "failed"})


def test_peer_record_keeps_the_design_keys_only() -> None:
    raw = {"state": "connected", "local_type": "host", "marks": {"offer": 1.0}, "timings": {"rtt_ms": 1.5}}
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
    assert rec["candidates"] == {"local": [], "remote": []}
