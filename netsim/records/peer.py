"""One peer's view of a session (`PeerRecord`, the `a` and `b` of a record) and its parts."""

# No `from __future__ import annotations` here: TypedDict needs real annotations at runtime to tell
# NotRequired keys (__optional_keys__) on Python 3.11.
from typing import Any, Final, Literal, NotRequired, TypedDict

import typing_extensions

from netsim.vocab import CandidateType, Family, PeerName, TurnTransport

IceRole = Literal["controlling", "controlled"]
PeerState = Literal["connected", "failed"]


TIMING_KEYS: Final = ("gathering_s", "ice_completed_s", "channel_open_s", "first_echo_s", "rtt_ms")


class Timings(TypedDict):
    """Seconds from the winning offer's creation (rtt in ms); null when a milestone was not reached.

    Session timings count a milestone when both peers reached it and take the slower gathering and the
    lower rtt; a peer's own timings are its view alone.
    """

    gathering_s: float | None
    ice_completed_s: float | None
    channel_open_s: float | None
    first_echo_s: float | None
    rtt_ms: float | None
    # Session timings only: the session's wall time (peers started to peers done) and how long its own
    # processes waited for a CPU meanwhile (summed over them; netsim/session/cpuwait.py).
    wall_s: NotRequired[float]
    cpu_wait_s: NotRequired[float | None]


class StateNote(TypedDict):
    """One state change a peer saw, `t` seconds after its launch was requested."""

    t: float
    what: str  # "signaling", "gathering", "ice", "dtls", "datachannel", ...
    state: str  # that machine's new state, e.g. "checking"


class ParsedCandidate(TypedDict):
    """A candidate line taken apart where the record entered the session (family null: an mDNS name)."""

    type: str | None
    protocol: str | None
    address: str | None
    port: int | None
    family: Family | None


class Candidates(TypedDict):
    """SDP candidate lines (`candidate:... typ host ...`) as sent and as received."""

    local: list[str]
    remote: list[str]
    parsed: NotRequired[dict[str, list[ParsedCandidate]]]  # each line taken apart, with its family


class Negotiation(TypedDict):
    """Perfect-negotiation counters of one peer; `offerer`: its offer is the one the session used."""

    offers_sent: int
    ignored_offers: int
    rollbacks: int
    stale_answers: int
    offerer: bool


class EchoCounts(TypedDict):
    """Echo data channel pings sent and pongs received."""

    sent: int
    received: int


class MediaTracks(TypedDict):
    """Track kinds ("audio", "video") sent and received (`netsim pair --media`)."""

    sent: list[str]
    received: list[str]


class PeerLaunch(typing_extensions.TypedDict):
    """How the peer started: request to ready latency, pid, namespace inode (a browser also: when it had
    signed in at the signaling server and how long its start took). The session checks it with the raw
    record (netsim.peers.protocol), hence typing_extensions' TypedDict, which pydantic reads on 3.11."""

    ready_ms: float | None
    pid: int | None
    netns_inode: int | None
    signed_in_ms: NotRequired[float | None]
    spawn_to_signed_in_ms: NotRequired[float | None]
    browser_ready_s: NotRequired[float | None]


class PairFields(typing_extensions.TypedDict):
    """A selected candidate pair as one side saw it (typing_extensions' TypedDict: the raw record's pairs,
    netsim.peers.protocol.RawPair, share these fields and pydantic reads them on 3.11)."""

    t: float | None
    local_type: CandidateType | None
    remote_type: CandidateType | None
    local: str | None
    remote: str | None
    role: IceRole | None
    turn_transport: TurnTransport | None


class SelectedPair(PairFields):
    """A selected pair in a record; `t` in seconds from the winning offer."""

    family: NotRequired[Family | None]  # ipv4 or ipv6 (records before protocol 1 have none)


class BrowserInfo(TypedDict):
    """A Chromium peer's browser: version, the exact launch flags, whether host candidates were mDNS names."""

    version: str | None
    flags: list[str]
    mdns: bool


class ChromiumSettings(TypedDict):
    """A Chromium peer's `settings`: its launch flags, mDNS host names, and whether it is the IPv4-only twin
    (IPv6 gathering off by field trial). Other stacks' settings are their own (docs/peers.md)."""

    flags: list[str]
    mdns: bool
    ipv4_only: bool


class PeerRecord(TypedDict):
    """One peer's view of the session (`a` and `b` in a `ResultRecord`)."""

    local_type: CandidateType | None  # the selected pair; null when none was selected
    remote_type: CandidateType | None
    local: str | None  # "10.1.0.2:41000"
    remote: str | None
    role: IceRole | None
    polite: bool | None
    turn_transport: TurnTransport | None  # set when the local candidate is a relay
    state: PeerState
    ice_urls: list[str] | None  # the STUN/TURN URLs it was given (never credentials)
    candidates: Candidates
    states: list[StateNote]
    timings: Timings
    negotiation: Negotiation | None
    media: MediaTracks | None
    echo: EchoCounts | None
    launch: PeerLaunch | None
    reason: str | None  # why it failed
    peer: PeerName  # the WebRTC stack of this side (an exec: peer: the name its record gives)
    pairs: list[SelectedPair]  # every change of the selected pair (Chromium may switch after connecting)
    first: SelectedPair | None  # the pair at connect
    settled: SelectedPair | None  # the pair once echoes flowed both ways and it stayed for settle_s
    hide_host: bool | None  # host candidates withheld (aiortc) or mDNS names (Chromium)
    browser: BrowserInfo | None
    version: NotRequired[str | None]  # the stack's exact version (protocol 1)
    settings: NotRequired[dict[str, Any]]  # the stack's settings a rerun needs (flags, nomination, ...)
