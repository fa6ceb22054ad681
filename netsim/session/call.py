"""A held call's section of the record (`call`): each side's echoes judged held, recovered or dropped,
the events as applied and both pair timelines, in seconds from the winning offer (pure logic, no lab)."""

from __future__ import annotations

from typing import Any, TypedDict

from netsim.peers.protocol import RawHoldEcho, RawPeerRecord
from netsim.records import CallEvent, CallRecord, CallSide, Keepalive, PairChange
from netsim.session.verdict import offer_time
from netsim.vocab import DROPPED, HELD, RECOVERED, CallOutcome

OUTAGE_ECHOES = 2  # unanswered echoes in a row that make an outage; one alone is tolerated (one interval)
CALL_STATES = ("ice", "pc", "restart")  # the state notes a call section keeps


class Judged(TypedDict):
    """One side's echoes judged (times as the echoes had them)."""

    outcome: CallOutcome | None
    first_lost: float | None
    back: float | None
    recovery_s: float | None


def _since(t: float | None, origin: float | None) -> float | None:
    return round(t - origin, 4) if t is not None and origin is not None else None


def side_outcome(echoes: list[RawHoldEcho], closed: bool) -> Judged:
    """One side's echoes (in send order, absolute or relative times) judged: held, dropped or recovered.

    An outage is OUTAGE_ECHOES or more unanswered echoes in a row. Recovered: an echo was answered after
    the first outage (recovery_s from the send of the outage's first echo to that answer), and the call did
    not end in another outage or a closed connection. Dropped: the last outage ran to the end of the hold,
    or the connection failed or closed. Held: no outage, connection open.
    """
    runs: list[tuple[int, int]] = []  # (first index, length) of unanswered runs
    i = 0
    while i < len(echoes):
        if echoes[i]["answered"] is None:
            j = i
            while j < len(echoes) and echoes[j]["answered"] is None:
                j += 1
            runs.append((i, j - i))
            i = j
        else:
            i += 1
    outages = [r for r in runs if r[1] >= OUTAGE_ECHOES]
    first_lost = echoes[runs[0][0]]["sent"] if runs else None
    out: Judged = {"outcome": HELD, "first_lost": first_lost, "back": None, "recovery_s": None}
    if outages:
        start, length = outages[0]
        after = next((e for e in echoes[start + length :] if e["answered"] is not None), None)
        if after is not None and after["answered"] is not None:
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


def call_outcome(sides: list[Judged]) -> tuple[CallOutcome | None, float | None]:
    """The session's outcome from both sides': dropped if either dropped, else recovered if either
    recovered (recovery_s: the slower side's), else held."""
    outcomes = [s["outcome"] for s in sides]
    if all(o is None for o in outcomes):
        return None, None
    if DROPPED in outcomes:
        return DROPPED, None
    if RECOVERED in outcomes:
        return RECOVERED, max(s["recovery_s"] for s in sides if s["recovery_s"] is not None)
    return HELD, None


def call_side(rec: RawPeerRecord, origin: float | None) -> tuple[CallSide, Judged]:
    """One side of the call section, times in seconds from the offer (`origin`, monotonic)."""
    raw = rec.get("call")
    echoes = raw["echoes"] if raw is not None else []
    closed = raw["closed"] if raw is not None else None
    restarts = raw["restarts"] if raw is not None else []
    recovered_by_restart = bool(closed and restarts and restarts[-1]["connected"] is not None)
    judged = side_outcome(echoes, bool(closed) and not recovered_by_restart)
    start = rec["marks"].get("start")
    side: CallSide = {
        "stack": rec["stack"],
        "sent": raw["sent"] if raw is not None else 0,
        "answered": raw["answered"] if raw is not None else 0,
        "echoes": [[_since(e["sent"], origin), _since(e["answered"], origin)] for e in echoes],
        "outcome": judged["outcome"],
        "first_lost_s": _since(judged["first_lost"], origin),
        "back_s": _since(judged["back"], origin),
        "recovery_s": judged["recovery_s"],
        "states": [
            {
                "t": _since(start + n["t"], origin) if start is not None else None,
                "what": n["what"],
                "state": n["state"],
            }
            for n in rec["states"]
            if n["what"] in CALL_STATES
        ],
        "closed": {"t": _since(closed["t"], origin), "reason": closed["reason"]} if closed else None,
        "restart": raw["restart"] if raw is not None else None,
        "restarts": [
            {"t": _since(r["t"], origin), "reason": r["reason"], "connected": _since(r["connected"], origin)}
            for r in restarts
        ],
    }
    return side, judged


def call_section(
    a: RawPeerRecord,
    b: RawPeerRecord,
    *,
    hold_s: float,
    interval_s: float,
    connected: float | None,
    events: list[dict[str, Any]],
    keepalive: dict[str, Keepalive] | None,
) -> CallRecord:
    """The record's `call`: per side echoes, states and restarts; events and pair changes; the outcome.
    Raw peer records and event times are monotonic; everything here is seconds from the winning offer."""
    origin = offer_time(a, b)
    (side_a, judged_a), (side_b, judged_b) = call_side(a, origin), call_side(b, origin)
    connected_both = a["state"] == "connected" and b["state"] == "connected"
    outcome, recovery = call_outcome([judged_a, judged_b]) if connected_both else (None, None)
    lost = [s["first_lost_s"] for s in (side_a, side_b) if s["first_lost_s"] is not None]
    back = [s["back_s"] for s in (side_a, side_b) if s["back_s"] is not None]
    return {
        "hold_s": hold_s,
        "interval_s": interval_s,
        "outcome": outcome,
        "recovery_s": recovery,
        "first_lost_s": min(lost) if lost else None,
        "back_s": max(back) if back and outcome == RECOVERED else None,
        "connected_s": _since(connected, origin),
        "events": [_event(e, origin) for e in events],
        "pair_changes": _pair_changes(a, b),
        "keepalive": keepalive,
        "a": side_a,
        "b": side_b,
    }


def _event(event: dict[str, Any], origin: float | None) -> CallEvent:
    out: CallEvent = {**event, "t": _since(event.get("t"), origin)}  # type: ignore[typeddict-item]
    return out


def _pair_changes(a: RawPeerRecord, b: RawPeerRecord) -> list[PairChange]:
    """Both sides' selected-pair timelines as one list in time order (records from with_timelines)."""
    out: list[PairChange] = [
        {"side": side, **p}  # type: ignore[typeddict-item]
        for side, rec in (("a", a), ("b", b))
        for p in rec["pairs"]
    ]
    return sorted(out, key=lambda p: (p["t"] is None, p["t"] or 0.0))
