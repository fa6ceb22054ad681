"""A held call (`CallRecord`): echoes both ways, network events, pair changes and the call's outcome."""

# No `from __future__ import annotations` here: TypedDict needs real annotations at runtime to tell
# NotRequired keys (__optional_keys__) on Python 3.11.
from typing import Any, Literal, NotRequired, TypedDict

from netsim.records.peer import SelectedPair
from netsim.vocab import CallOutcome, PeerName, Side


class CallState(TypedDict):
    """An ICE (`ice`), connection (`pc`) or restart state change, seconds from the winning offer."""

    t: float | None
    what: str
    state: str


class CallClosed(TypedDict):
    """The connection failed or closed while the call was held, and why, as the stack said it."""

    t: float | None
    reason: str | None


class CallRestart(TypedDict):
    """An ICE restart (Chromium): when it was called, why, and when the connection was back (null: never)."""

    t: float | None
    reason: str
    connected: float | None


class CallSide(TypedDict):
    """One side of a held call. `echoes`: [sent, answered] per echo (answered null: lost), from the offer."""

    stack: PeerName
    sent: int
    answered: int
    echoes: list[list[float | None]]
    outcome: CallOutcome | None
    first_lost_s: float | None
    back_s: float | None  # the answer of the first echo answered after the first outage
    recovery_s: float | None
    states: list[CallState]
    closed: CallClosed | None
    restart: Literal["unsupported", "supported", "unsupported by the remote"] | None
    restarts: list[CallRestart]


class CallEvent(TypedDict):
    """A network event (netsim.lab.events) as applied: planned `at_s` after connect, actual `t` from the
    offer (null: not applied), the action's arguments, what it did, and an error if it failed."""

    at_s: float
    action: str  # flush, down, up (the end of a down), nat, move, turn-restart
    t: float | None
    detail: dict[str, Any] | None
    error: str | None
    node: NotRequired[str]
    seconds: NotRequired[float]
    kind: NotRequired[str]
    host: NotRequired[str]
    site: NotRequired[str]


class PairChange(SelectedPair):
    """A selected-pair change during a held call, and whose it was."""

    side: Side


class Keepalive(TypedDict):
    """Outbound STUN binding requests (consent checks, keepalives) at a host's NAT router while held."""

    router: str
    interval_s: float | None  # median gap in the busiest flow; null with fewer than 2 (e.g. relayed)
    requests: int
    flow: str | None


class CallRecord(TypedDict):
    """A held call (`hold_s` > 0): echoes both ways, events, the pair changes and the outcome; times in
    seconds from the winning offer. Outcome: held (no more than one echo lost in a row), recovered
    (an outage, then echoes answered again; recovery_s from the first lost echo's send to that answer),
    dropped (echoes stopped and never came back before the hold ended, or the connection failed or closed
    for good); null when the call never connected."""

    hold_s: float
    interval_s: float
    outcome: CallOutcome | None
    recovery_s: float | None
    first_lost_s: float | None
    back_s: float | None
    connected_s: float | None  # both peers connected: the origin of the events' at_s
    events: list[CallEvent]
    pair_changes: list[PairChange]  # both sides' pairs timelines in one list, each with its `side`
    keepalive: dict[str, Keepalive] | None  # by side
    a: CallSide
    b: CallSide
    cause: NotRequired[str | None]  # why a dropped call dropped, when the session saw it (a process died)
