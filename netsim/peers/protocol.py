"""The peer protocol, typed once (docs/peers.md, "Peer protocol"): what netsim hands a peer for one session
(`PeerConfig`), what the peer gives back (`RawPeerRecord`), and the check at the boundary where a record
enters the session (`accept_record`).

The raw types use typing_extensions.TypedDict: pydantic validates them (on Python 3.11 it needs that one),
and pydantic, not a hand-written walker, says which field of which entry broke the protocol.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, NotRequired

import pydantic
from typing_extensions import TypedDict

from netsim.records import IceRole, PairFields, ParsedCandidate, PeerLaunch, PeerState
from netsim.vocab import CANDIDATE_TYPES, EXEC_PREFIX, FAMILIES, CandidateType, Family, Policy, TurnTransport

PROTOCOL: Final = 1  # the version of docs/peers.md's protocol; a peer echoes it in its record
# A stack that may renominate keeps pinging until its pair has been stable for settle_s, at most this much
# longer (docs/peers.md, "Settle pings"; the page has the same number).
SETTLE_EXTRA_S: Final = 3.0

RestartSupport = Literal["supported", "unsupported", "unsupported by the remote"]


class IceServer(TypedDict):
    """An RTCIceServer: STUN or TURN URLs and, for TURN, the credentials."""

    urls: str | list[str]
    username: NotRequired[str]
    credential: NotRequired[str]


class ProtocolError(ValueError):
    """A config or record that breaks the peer protocol; the message names the field."""


@dataclass(frozen=True)
class PeerConfig:
    """One session of one peer (docs/peers.md, "The config"); every field is required, nothing defaulted."""

    protocol: int
    user: str
    target: str
    polite: bool  # b; a is impolite
    offer: bool  # whether this peer offers when the target is present (both do for glare)
    offer_delay_s: float  # pause between a ready offer and sending it (orders glare)
    signaling_url: str
    token: str
    ice_servers: tuple[IceServer, ...]  # () is none: never a public STUN server
    ca_file: str | None  # the lab CA (PEM) for TURN over TLS
    policy: Policy
    deadline_s: float  # from the start to the first echo
    echo_count: int
    echo_interval_s: float
    linger_s: float  # after connecting: finish the echoes, wait for the remote's `done`
    settle_s: float  # how long the selected pair must stay the same to count as settled
    hold_s: float  # keep the call up this long after connecting (hold channel)
    interval_s: float  # an echo on the hold channel this often (0: checks at the end only)
    hide_host: bool  # send no host candidates (or mDNS names only)
    media: bool
    restart: bool  # ICE restart allowed (both ends support it)
    connected_file: str | None  # written atomically with {"t": first echo} once connected
    t0: float  # host CLOCK_MONOTONIC when netsim requested the peer

    def to_json(self) -> dict[str, Any]:
        """The config as the JSON object a peer reads (plain data: lists, not tuples)."""
        out = dataclasses.asdict(self)
        out["ice_servers"] = [dict(s) for s in self.ice_servers]
        return out

    @classmethod
    def from_json(cls, data: str | bytes) -> PeerConfig:
        """The config from its JSON text; ProtocolError names a missing, unknown or ill-typed key."""
        try:
            obj = json.loads(data)
        except ValueError as exc:
            raise ProtocolError(f"config: not JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise ProtocolError("config: expected a JSON object")
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [n for n in names if n not in obj]
        unknown = sorted(set(obj) - set(names))
        if missing or unknown:
            what = [f"missing {', '.join(missing)}"] if missing else []
            what += [f"unknown {', '.join(unknown)}"] if unknown else []
            raise ProtocolError(f"config: {'; '.join(what)}")
        try:
            cfg = _CONFIG.validate_json(data, strict=True)
        except pydantic.ValidationError as exc:
            raise ProtocolError(f"config: {_first_error(exc)}") from None
        if cfg.protocol != PROTOCOL:
            raise ProtocolError(f"config: protocol {cfg.protocol}, this peer speaks {PROTOCOL}")
        return cfg


_CONFIG: Final = pydantic.TypeAdapter(PeerConfig)


# --- the record ----------------------------------------------------------------------------------------


class RawPair(PairFields):
    """A selected pair as the peer saw it; `t` host-monotonic (seconds from the offer once the session
    shifted the timeline). The peer always says its family."""

    family: Family


class RawCandidates(TypedDict):
    local: list[str]
    remote: list[str]


class RawStateNote(TypedDict):
    t: float
    what: str
    state: str


class RawTimings(TypedDict):
    gathering_s: float | None
    ice_completed_s: float | None
    channel_open_s: float | None
    first_echo_s: float | None
    rtt_ms: float | None
    start_to_first_echo_s: float | None


class RawNegotiation(TypedDict):
    offers_sent: int
    ignored_offers: int
    rollbacks: int
    stale_answers: int
    offerer: bool


class RawCounts(TypedDict):
    sent: int
    received: int


class RawMedia(TypedDict):
    sent: list[str]
    received: list[str]


class RawHoldEcho(TypedDict):
    seq: int
    sent: float
    answered: float | None


class RawClosed(TypedDict):
    t: float | None
    reason: str | None


class RawRestart(TypedDict):
    t: float | None
    reason: str
    connected: float | None


class RawCall(TypedDict):
    """A held call as one peer saw it (absolute times)."""

    hold_s: float
    interval_s: float
    echoes: list[RawHoldEcho]
    sent: int
    answered: int
    closed: RawClosed | None
    restart: RestartSupport
    restarts: list[RawRestart]


class RawPeerRecord(TypedDict):
    """What a peer gives back for one session (docs/peers.md, "The record")."""

    protocol: int
    stack: str
    version: str | None
    settings: dict[str, Any]
    user: str
    state: PeerState
    reason: str | None
    error: str | None
    polite: bool
    local_type: CandidateType | None  # the settled pair (the last of `pairs`)
    remote_type: CandidateType | None
    local: str | None
    remote: str | None
    role: IceRole | None
    turn_transport: TurnTransport | None
    family: Family | None
    ice_urls: list[str | list[str]]
    candidates: RawCandidates
    states: list[RawStateNote]
    marks: dict[str, float]
    timings: RawTimings | None
    negotiation: RawNegotiation | None
    echo: RawCounts | None
    media: RawMedia | None
    pairs: list[RawPair]
    stable: bool | None
    hide_host: bool
    call: NotRequired[RawCall]
    launch: NotRequired[PeerLaunch]  # added by the adapter


_RECORD: Final = pydantic.TypeAdapter(RawPeerRecord)


def failed_record(cfg: PeerConfig, stack: str, reason: str, error: str | None = None) -> RawPeerRecord:
    """The record netsim writes for a peer that gave none (did not start, crashed, hung, broke the
    protocol): failed, with the reason, nothing else known."""
    return {
        "protocol": PROTOCOL,
        "stack": stack,
        "version": None,
        "settings": {},
        "user": cfg.user,
        "state": "failed",
        "reason": reason,
        "error": error if error is not None else reason,
        "polite": cfg.polite,
        "local_type": None,
        "remote_type": None,
        "local": None,
        "remote": None,
        "role": None,
        "turn_transport": None,
        "family": None,
        "ice_urls": [s["urls"] for s in cfg.ice_servers],
        "candidates": {"local": [], "remote": []},
        "states": [],
        "marks": {"start": cfg.t0},
        "timings": None,
        "negotiation": None,
        "echo": None,
        "media": None,
        "pairs": [],
        "stable": None,
        "hide_host": cfg.hide_host,
    }


def broken_reason(side: str, stack: str, what: str) -> str:
    """A side's reason when its peer broke the protocol: `peer a (exec:./mine): what was wrong`."""
    return f"peer {side} ({stack}): {what}"


def broke_protocol(side: str, reason: str | None) -> bool:
    """Whether a side's reason says its peer broke the protocol (broken_reason): the session failed for
    that, not for want of a CPU or of a path."""
    return reason is not None and reason.startswith(f"peer {side} (")


@dataclass(frozen=True)
class NoRecord:
    """What a peer process gave instead of a record (it exited without one, or its last stdout line is not
    JSON): the session fails its side with `peer SIDE (STACK): <why>`."""

    why: str


def accept_record(raw: object, *, side: str, stack: str, cfg: PeerConfig) -> RawPeerRecord:
    """The record where it enters the session, checked against the protocol. A record
    that breaks it becomes a failed one whose reason is `peer SIDE (STACK): what was wrong`."""
    if isinstance(raw, NoRecord):
        return failed_record(cfg, stack, broken_reason(side, stack, raw.why))
    try:
        record = check_record(raw, stack=stack, cfg=cfg)
    except ProtocolError as exc:
        launch = raw.get("launch") if isinstance(raw, dict) else None
        failed = failed_record(cfg, stack, broken_reason(side, stack, str(exc)))
        if isinstance(launch, dict):
            failed["launch"] = _RECORD.validate_python({**failed, "launch": launch})["launch"]
        return failed
    return record


def check_record(raw: object, *, stack: str, cfg: PeerConfig) -> RawPeerRecord:
    """The record typed, or ProtocolError naming the first field that breaks the protocol."""
    if isinstance(raw, dict) and raw.get("protocol") != PROTOCOL and "protocol" in raw:
        raise ProtocolError(f"protocol {raw['protocol']!r}, netsim speaks {PROTOCOL}")
    try:
        record = _RECORD.validate_python(raw, strict=True)
    except pydantic.ValidationError as exc:
        raise ProtocolError(_first_error(exc)) from None
    expected: dict[str, object] = {"user": cfg.user}
    if not stack.startswith(EXEC_PREFIX):  # a program the user brings names its own stack
        expected["stack"] = stack
    for key, value in expected.items():
        if record[key] != value:  # type: ignore[literal-required]
            raise ProtocolError(f"{key}: expected {value!r}, got {record[key]!r}")  # type: ignore[literal-required]
    pairs: list[tuple[str, RawPair | RawPeerRecord]] = [
        (f"pairs[{i}]", p) for i, p in enumerate(record["pairs"])
    ]
    for where, pair in [*pairs, ("", record)]:
        family = family_of(pair["local"])
        if family is not None and pair["family"] is not None and family != pair["family"]:
            prefix = f"{where}." if where else ""
            raise ProtocolError(f"{prefix}family: {pair['family']!r} but local is {pair['local']!r}")
    if cfg.hold_s > 0 and record["state"] == "connected" and "call" not in record:
        raise ProtocolError("call: missing (the call was held)")
    return record


def _first_error(exc: pydantic.ValidationError) -> str:
    err = exc.errors()[0]
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
    text = f"{where or 'record'}: {err['msg']}"
    if err["type"] != "missing":
        text += f", got {json.dumps(err.get('input'), default=str)[:80]}"
    return text


def family_of(address: str | None) -> Family | None:
    """`ipv4` or `ipv6` of an `address:port` (`[v6]:port`) or a bare address; None for a name or null."""
    if not address:
        return None
    host = address
    if address.startswith("["):
        host = address[1:].split("]", 1)[0]
    elif address.count(":") == 1:
        host = address.rsplit(":", 1)[0]
    try:
        version = ipaddress.ip_address(host).version
    except ValueError:
        return None
    return FAMILIES[0] if version == 4 else FAMILIES[1]


def parse_candidate(line: str) -> ParsedCandidate:
    """`candidate:F C PROTO PRIO ADDRESS PORT typ TYPE ...` taken apart (RFC 8839); unknown parts null."""
    parts = line.removeprefix("a=").removeprefix("candidate:").split()
    typ = parts[parts.index("typ") + 1] if "typ" in parts[:-1] else None
    address = parts[4] if len(parts) > 5 else None
    port = int(parts[5]) if len(parts) > 5 and parts[5].isdigit() else None
    return {
        "type": typ if typ in CANDIDATE_TYPES else None,
        "protocol": parts[2].lower() if len(parts) > 2 else None,
        "address": address,
        "port": port,
        "family": family_of(address),
    }


def write_json_atomically(path: str | Path, obj: object) -> None:
    """Write JSON so a reader sees the whole file or none (the connected file, the launcher's record)."""
    tmp = Path(f"{path}.tmp")
    tmp.write_text(json.dumps(obj))
    tmp.replace(path)
