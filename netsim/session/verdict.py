"""Verdict rules: what two PEER records say about a session (pure logic, no lab).

"Won" is not "needed": aioice nominates the first pair that works, so a relay can win where a direct path
exists. The verdict says which pair won; whether a relay was needed is answered by a relay-less second run
(see run.py).
"""

from __future__ import annotations

from typing import Any, cast

from netsim.results.records import TIMING_KEYS, PeerRecord, Timings
from netsim.vocab import AIORTC, FAILED, RelaySide, Verdict

# A selected pair as peers record it, in their `pairs` timeline ({"t", **PAIR_KEYS, "role"}).
PAIR_KEYS = ("local_type", "remote_type", "local", "remote", "turn_transport")

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


def offer_time(a: dict[str, Any], b: dict[str, Any]) -> float | None:
    """The winning offer's creation (the offerer's `offer` mark): the time origin of a session's record."""
    offerer = next((p for p in (a, b) if (p.get("negotiation") or {}).get("offerer")), None)
    mark: float | None = (offerer or {}).get("marks", {}).get("offer")
    return mark


def with_timelines(a: dict[str, Any], b: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Copies of both raw records whose `pairs` timelines (absolute monotonic times, as peers record them)
    are in seconds from the winning offer, the one time origin of a record (null without an offer)."""
    origin = offer_time(a, b)

    def shifted(rec: dict[str, Any]) -> dict[str, Any]:
        pairs = [
            {**p, "t": round(p["t"] - origin, 4) if origin is not None and p.get("t") is not None else None}
            for p in rec.get("pairs") or []
        ]
        return {**rec, "pairs": pairs}

    return shifted(a), shifted(b)


def first_pair(rec: dict[str, Any]) -> dict[str, Any] | None:
    """The pair at connect: the first of the timeline (a peer without one: its only pair)."""
    pairs = rec.get("pairs")
    if pairs:
        return {k: pairs[0].get(k) for k in PAIR_KEYS}
    return {k: rec.get(k) for k in PAIR_KEYS} if rec.get("local_type") else None


def settled_pair(rec: dict[str, Any]) -> dict[str, Any] | None:
    """The pair at the end (the record's own pair, which peers read last); null for a peer that failed."""
    if rec.get("state") != "connected" or not rec.get("local_type"):
        return None
    return {k: rec.get(k) for k in PAIR_KEYS}


def first_verdict(a: dict[str, Any], b: dict[str, Any]) -> tuple[Verdict, RelaySide | None]:
    """The verdict of both sides' first pairs (`verdict` is the settled one: the records' own pairs)."""
    firsts = [first_pair(p) for p in (a, b)]
    if firsts[0] is None or firsts[1] is None:
        return verdict(a, b)  # failed, or records without a pair: the same rules apply
    return verdict({**firsts[0], "state": a.get("state")}, {**firsts[1], "state": b.get("state")})


def pair_view(pair: dict[str, Any]) -> Verdict:
    """What one side's pair alone says: relay (a relay at either end), direct-host, or direct."""
    types = {pair.get("local_type"), pair.get("remote_type")}
    if "relay" in types:
        return "relay"
    return "direct-host" if types == {"host"} else "direct"


def disagreement(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    """Where the two sides' settled pairs tell different stories (one relays, the other not; or one sees
    host to host, the other a NAT), or None. Addresses are not compared: each side sees the other's
    through its NAT, and the stacks label types differently (docs/peers.md)."""
    pairs = {"a": settled_pair(a), "b": settled_pair(b)}
    if pairs["a"] is None or pairs["b"] is None:
        return None
    views = {side: pair_view(p) for side, p in pairs.items() if p is not None}
    if views["a"] == views["b"]:
        return None

    def told(side: str) -> str:
        p = pairs[side] or {}
        ends = f"{p.get('local_type')} {p.get('local')} -> {p.get('remote_type')} {p.get('remote')}"
        return f"{side} ends {views[side]} ({ends})"

    return f"{told('a')}; {told('b')}"


def winner(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """The winner over time, for the session record: first verdict, disagreement at the end, and when the
    later side's pair last changed (seconds from the offer; records from with_timelines)."""
    last = [p["pairs"][-1]["t"] for p in (a, b) if p.get("pairs") and p["pairs"][-1].get("t") is not None]
    return {
        "first_verdict": first_verdict(a, b)[0],
        "disagreement": disagreement(a, b),
        "settled_s": max(last) if len(last) == 2 else None,
    }


def negotiated(peer: dict[str, Any]) -> bool:
    """Whether the peer applied the other side's description (it then holds its remote candidates)."""
    return bool(peer.get("candidates", {}).get("remote"))


def session_timings(a: dict[str, Any], b: dict[str, Any]) -> Timings:
    """Session timings from the winning offer's creation (both peers share CLOCK_MONOTONIC).

    A milestone counts when both peers reached it; gathering is the slower side's.
    """
    peers = (a, b)
    offer = offer_time(a, b)

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
        peer=rec.get("peer", AIORTC),
        pairs=rec.get("pairs", []),
        first=first_pair(rec) if rec.get("state") == "connected" else None,
        settled=settled_pair(rec),
        hide_host=rec.get("hide_host"),
        browser=rec.get("browser"),
    )
    return cast(PeerRecord, out)  # raw records come from the peer process as JSON


def failure_reason(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    parts = [f"{side}: {rec.get('reason')}" for side, rec in (("a", a), ("b", b)) if rec.get("reason")]
    return "; ".join(parts) or None
