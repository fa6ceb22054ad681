"""Verdict rules: what two PEER records say about a session (pure logic, no lab).

"Won" is not "needed": aioice nominates the first pair that works, so a relay can win where a direct path
exists. The verdict says which pair won; whether a relay was needed is answered by a relay-less second run
(see run.py).
"""

from __future__ import annotations

from typing import Any, cast

from netsim.records import TIMING_KEYS, CallRecord, PeerRecord, Timings
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


# ---- calls that last: the `call` section ------------------------------------------------------------------

HELD, DROPPED, RECOVERED = "held", "dropped", "recovered"
OUTAGE_ECHOES = 2  # unanswered echoes in a row that make an outage; one alone is tolerated (one interval)
CALL_STATES = ("ice", "pc", "restart")  # the state notes a call section keeps


def _since(t: float | None, origin: float | None) -> float | None:
    return round(t - origin, 4) if t is not None and origin is not None else None


def side_outcome(echoes: list[dict[str, Any]], closed: bool) -> dict[str, Any]:
    """One side's echoes (in send order, absolute or relative times) judged: held, dropped or recovered.

    An outage is OUTAGE_ECHOES or more unanswered echoes in a row. Recovered: an echo was answered after
    the first outage (recovery_s from the send of the outage's first echo to that answer), and the call did
    not end in another outage or a closed connection. Dropped: the last outage ran to the end of the hold,
    or the connection failed or closed. Held: no outage, connection open.
    """
    runs: list[tuple[int, int]] = []  # (first index, length) of unanswered runs
    i = 0
    while i < len(echoes):
        if echoes[i].get("answered") is None:
            j = i
            while j < len(echoes) and echoes[j].get("answered") is None:
                j += 1
            runs.append((i, j - i))
            i = j
        else:
            i += 1
    outages = [r for r in runs if r[1] >= OUTAGE_ECHOES]
    first_lost = echoes[runs[0][0]]["sent"] if runs else None
    out: dict[str, Any] = {"outcome": HELD, "first_lost": first_lost, "back": None, "recovery_s": None}
    if outages:
        start, length = outages[0]
        after = next((e for e in echoes[start + length :] if e.get("answered") is not None), None)
        if after is not None:
            out["back"] = after["answered"]
            out["recovery_s"] = round(after["answered"] - echoes[start]["sent"], 4)
            out["outcome"] = RECOVERED
        last_start, last_len = outages[-1]
        if last_start + last_len == len(echoes):
            out["outcome"] = DROPPED
    if closed:
        out["outcome"] = DROPPED
    if not echoes and not closed:
        out["outcome"] = None
    return out


def call_outcome(sides: list[dict[str, Any]]) -> tuple[str | None, float | None]:
    """The session's outcome from both sides': dropped if either dropped, else recovered if either
    recovered (recovery_s: the slower side's), else held."""
    outcomes = [s.get("outcome") for s in sides]
    if any(o is None for o in outcomes):
        known = [o for o in outcomes if o is not None]
        if not known:
            return None, None
    if DROPPED in outcomes:
        return DROPPED, None
    if RECOVERED in outcomes:
        return RECOVERED, max(s["recovery_s"] for s in sides if s.get("recovery_s") is not None)
    return HELD, None


def call_side(rec: dict[str, Any], origin: float | None) -> dict[str, Any]:
    """One side of the call section, times in seconds from the offer (`origin`, monotonic)."""
    raw = rec.get("call") or {}
    echoes = raw.get("echoes") or []
    closed = raw.get("closed")
    restarts = raw.get("restarts") or []
    recovered_by_restart = bool(closed and restarts and restarts[-1].get("connected") is not None)
    judged = side_outcome(echoes, bool(closed) and not recovered_by_restart)
    start = (rec.get("marks") or {}).get("start")
    states = [
        {
            "t": _since(start + n["t"], origin) if start is not None else None,
            "what": n["what"],
            "state": n["state"],
        }
        for n in rec.get("states") or []
        if n.get("what") in CALL_STATES
    ]
    return {
        "stack": rec.get("peer", AIORTC),
        "sent": raw.get("sent", 0),
        "answered": raw.get("answered", 0),
        "echoes": [[_since(e["sent"], origin), _since(e.get("answered"), origin)] for e in echoes],
        "outcome": judged["outcome"],
        "first_lost_s": _since(judged["first_lost"], origin),
        "back_s": _since(judged["back"], origin),
        "recovery_s": judged["recovery_s"],
        "states": states,
        "closed": {"t": _since(closed.get("t"), origin), "reason": closed.get("reason")} if closed else None,
        "restart": raw.get("restart"),
        "restarts": [
            {k: _since(v, origin) if k in ("t", "connected") else v for k, v in r.items()} for r in restarts
        ],
    }


def call_section(
    a: dict[str, Any],
    b: dict[str, Any],
    *,
    hold_s: float,
    interval_s: float,
    connected: float | None,
    events: list[dict[str, Any]],
    keepalive: dict[str, Any] | None,
) -> CallRecord:
    """The record's `call`: per side echoes, states and restarts; events and pair changes; the outcome.
    Raw peer records and event times are monotonic; everything here is seconds from the winning offer."""
    origin = offer_time(a, b)
    sides = {"a": call_side(a, origin), "b": call_side(b, origin)}
    connected_both = a.get("state") == "connected" and b.get("state") == "connected"
    outcome, recovery = call_outcome(list(sides.values())) if connected_both else (None, None)
    lost = [s["first_lost_s"] for s in sides.values() if s["first_lost_s"] is not None]
    back = [s["back_s"] for s in sides.values() if s["back_s"] is not None]
    section = {
        "hold_s": hold_s,
        "interval_s": interval_s,
        "outcome": outcome,
        "recovery_s": recovery,
        "first_lost_s": min(lost) if lost else None,
        "back_s": max(back) if back and outcome == RECOVERED else None,
        "connected_s": _since(connected, origin),
        "events": [{**e, "t": _since(e.get("t"), origin)} for e in events],
        "pair_changes": _pair_changes(a, b),
        "keepalive": keepalive,
        "a": sides["a"],
        "b": sides["b"],
    }
    return cast(CallRecord, section)  # built from raw peer records (JSON)


def _pair_changes(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """Both sides' selected-pair timelines as one list in time order (records from with_timelines)."""
    out = [{"side": side, **p} for side, rec in (("a", a), ("b", b)) for p in rec.get("pairs") or []]
    return sorted(out, key=lambda p: (p.get("t") is None, p.get("t") or 0.0))
