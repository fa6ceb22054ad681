"""Verdict rules: what two PEER records say about a session (pure logic, no lab).

"Won" is not "needed": aioice nominates the first pair that works, so a relay can win where a direct path
exists. The verdict says which pair won; whether a relay was needed is answered by a relay-less second run
(see run.py).
"""

from __future__ import annotations

from typing import Any, cast

from netsim.results.records import TIMING_KEYS, PeerRecord, Timings
from netsim.vocab import FAILED, RelaySide, Verdict

# The PEER record keys of docs/DESIGN.md that the session keeps from a peer's raw record.
PEER_KEYS = (
    "local_type",
    "remote_type",
    "local",
    "remote",
    "role",
    "polite",
    "turn_transport",
    "state",
    "ice_urls",
)


def verdict(a: dict[str, Any], b: dict[str, Any]) -> tuple[Verdict, RelaySide | None]:
    """(verdict, relay_side) from both PEER records.

    A side relayed if its own local candidate is a relay, or the other side sees a relay as remote.
    """
    if a.get("state") != "connected" or b.get("state") != "connected":
        return FAILED, None
    relayed = {
        "a": a.get("local_type") == "relay" or b.get("remote_type") == "relay",
        "b": b.get("local_type") == "relay" or a.get("remote_type") == "relay",
    }
    if relayed["a"] and relayed["b"]:
        return "relay", "both"
    if relayed["a"] or relayed["b"]:
        return "relay", "a" if relayed["a"] else "b"
    types = {a.get("local_type"), a.get("remote_type"), b.get("local_type"), b.get("remote_type")}
    if types == {"host"}:
        return "direct-host", None
    return "direct", None


def negotiated(peer: dict[str, Any]) -> bool:
    """Whether the peer applied the other side's description (it then holds its remote candidates)."""
    return bool(peer.get("candidates", {}).get("remote"))


def session_timings(a: dict[str, Any], b: dict[str, Any]) -> Timings:
    """Session timings from the winning offer's creation (both peers share CLOCK_MONOTONIC).

    A milestone counts when both peers reached it; gathering is the slower side's.
    """
    peers = (a, b)
    offerer = next((p for p in peers if p.get("negotiation", {}).get("offerer")), None)
    offer = (offerer or {}).get("marks", {}).get("offer")

    def both(key: str) -> float | None:
        marks = [p.get("marks", {}).get(key) for p in peers]
        if offer is None or any(m is None for m in marks):
            return None
        return round(max(marks) - offer, 4)

    gathering = [p.get("timings", {}).get("gathering_s") for p in peers]
    rtts = [p.get("timings", {}).get("rtt_ms") for p in peers]
    return {
        "gathering_s": max((g for g in gathering if g is not None), default=None),
        "ice_completed_s": both("ice_completed"),
        "channel_open_s": both("channel_open"),
        "first_echo_s": both("first_echo"),
        "rtt_ms": min((r for r in rtts if r is not None), default=None),
    }


def peer_record(rec: dict[str, Any]) -> PeerRecord:
    """The PEER record of docs/DESIGN.md from a peer's raw record (which also keeps its marks)."""
    out: dict[str, Any] = {k: rec.get(k) for k in PEER_KEYS}
    out.update(
        candidates=rec.get("candidates", {"local": [], "remote": []}),
        states=rec.get("states", []),
        timings={k: rec.get("timings", {}).get(k) for k in TIMING_KEYS},
        negotiation=rec.get("negotiation"),
        media=rec.get("media"),
        echo=rec.get("echo"),
        launch=rec.get("launch"),
        reason=rec.get("reason"),
    )
    return cast(PeerRecord, out)  # raw records come from the peer process as JSON


def failure_reason(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    parts = [f"{side}: {rec.get('reason')}" for side, rec in (("a", a), ("b", b)) if rec.get("reason")]
    return "; ".join(parts) or None
