"""Faults of the lab's own parts during a session, told apart from what the NATs did (pure logic but for
`coturn_down`).

A session that failed because the signaling server was unreachable, coturn was down or a browser crashed
says nothing about the NATs: it is labelled `infrastructure` (and, like a session starved of CPU, left out
of every share and retried). A session that connected keeps its verdict and connect time when a part dies
later; its held call then says why it dropped (`call.cause`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netsim.peers.protocol import RawPeerRecord, broke_protocol
from netsim.vocab import BROWSERS, DROPPED, FAILED

if TYPE_CHECKING:
    from netsim.lab.lab import Lab

BROWSER_GONE = ("browser crashed", "browser hung", "Target page, context or browser has been closed")


def coturn_down(lab: Lab) -> str | None:
    """Whether the lab's coturn is down now (it was running when the session started)."""
    coturn = lab.coturn
    if coturn is None:
        return None
    proc = coturn.process
    if proc is None:
        return "coturn was stopped"
    code = proc.poll()
    return None if code is None else f"coturn exited ({code})"


def _negotiated(peer: RawPeerRecord) -> bool:
    return bool(peer["candidates"]["remote"])


def _browser_gone(peer: RawPeerRecord) -> str | None:
    reason = peer["reason"] or ""
    return reason if peer["stack"] in BROWSERS and any(g in reason for g in BROWSER_GONE) else None


# A side whose offer/answer exchange ended this late in its connect deadline had no fair time left for ICE:
# a signaling server that stalls (stopped, starved) ate it. Quiet sessions end it within ~0.3 s of 3 s.
LATE_SIGNALING_SHARE = 0.5


def _late_signaling(peer: RawPeerRecord, deadline_s: float | None) -> float | None:
    """When the side's offer/answer exchange ended (its first `stable` after an offer), if that was past
    LATE_SIGNALING_SHARE of the deadline; None otherwise."""
    if not deadline_s:
        return None
    states = peer.get("states") or []
    stable = [s["t"] for s in states if s.get("what") == "signaling" and s.get("state") == "stable"]
    first = min(stable, default=None)
    return first if first is not None and first > LATE_SIGNALING_SHARE * deadline_s else None


def infrastructure(
    a: RawPeerRecord, b: RawPeerRecord, verdict: str, coturn: str | None, deadline_s: float | None = None
) -> str | None:
    """What of the lab's own broke a failed session (raw peer records), or None: a NAT answer."""
    if verdict != FAILED:
        return None
    if any(broke_protocol(side, peer["reason"]) for side, peer in (("a", a), ("b", b))):
        return None  # a peer that broke the protocol failed the session: its fault, not the lab's
    for side, peer in (("a", a), ("b", b)):
        gone = _browser_gone(peer)
        if gone:
            return f"{side}: {gone}"
    if not (_negotiated(a) and _negotiated(b)):
        reasons = "; ".join(f"{s}: {p['reason']}" for s, p in (("a", a), ("b", b)) if p["reason"])
        return f"signaling: no offer and answer got through ({reasons or 'no reason given'})"
    for side, peer in (("a", a), ("b", b)):
        late = _late_signaling(peer, deadline_s)
        if late is not None:
            return f"signaling: {side}'s offer and answer got through at {late:.2f} s of {deadline_s:g} s"
    if coturn is not None and any(p["ice_urls"] for p in (a, b)):
        return coturn
    return None


def call_cause(call: dict[str, Any], coturn: str | None) -> str | None:
    """Why a dropped call dropped, where the session saw it: a part that died, or a side that closed."""
    if call.get("outcome") != DROPPED:
        return None
    if coturn is not None:
        return coturn
    closed = [
        f"{side}: {(call.get(side) or {}).get('closed', {}).get('reason')}"
        for side in ("a", "b")
        if (call.get(side) or {}).get("closed")
    ]
    return "; ".join(closed) or None
