"""How one pairing runs: `SessionOptions`, validated once, passed whole from scenario file or CLI to the
session.

The connect deadline rule lives here too (`connect_deadline`), used by `netsim pair` and the suite alike.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from netsim.errors import InputError
from netsim.lab.events import Event, EventError
from netsim.lab.events import from_table as event_from_table
from netsim.vocab import (
    AIORTC,
    CHROMIUM,
    EXEC_PREFIX,
    PEER_STACKS,
    PION,
    POLICIES,
    SIDES,
    TURN_CHOICES,
    UDP,
    PeerName,
    Policy,
    Side,
    Turn,
)

# Sessions in a lab connect in under 1 s (at most ~0.7 s seen: hole punching pays one 500 ms STUN
# retransmission), so 3 s leaves a wide margin while a failing pairing, which waits the whole deadline,
# stays cheap.
BASE_DEADLINE_S = 3.0
# Behind the UDP-blocking firewall gathering is slower and varies: one second more, plus aioice's 5 s STUN
# timeout, waited out by every blocked side's gathering (the answerer's only after the offer arrives).
FIREWALL_BASE_S = 4.0
UDP_BLOCKED_EXTRA_S = 5.0
# A controlling Pion agent nominates a relay pair only after 2 s of checking (its default relay acceptance
# wait, docs/peers.md): with Pion as a (the offerer, so the controlling side) a relayed session connects 2 s
# later than the rule above allows for. Measured in the suite: relay cells with a late-starting remote (an
# aiortc fork or a browser page 0.5-1.1 s after the Pion peer, on a loaded machine) missed 3 s.
PION_RELAY_WAIT_S = 2.0
MAX_DEADLINE_S = 600.0
MAX_HOLD_S = 3600.0
DEFAULT_INTERVAL_S = 1.0


class OptionsError(InputError):
    """A session option with a bad value; the message names the option (and the file, when there is one)."""


def connect_deadline(udp_blocked_sides: int, peer_a: PeerName = AIORTC) -> float:
    """The connect deadline for a pairing with this many sides behind the UDP-blocking firewall, whose
    controlling side (a) runs `peer_a`."""
    wait = PION_RELAY_WAIT_S if peer_a == PION else 0.0
    if udp_blocked_sides <= 0:
        return BASE_DEADLINE_S + wait
    return FIREWALL_BASE_S + UDP_BLOCKED_EXTRA_S * udp_blocked_sides + wait


@dataclass(frozen=True)
class SessionOptions:
    """Everything that says how a pairing runs, apart from the lab it runs in.

    a is the impolite peer and offers; b is polite and offers only for glare (then `glare_first` sends
    first). `hide_host` withholds host candidates, as browsers hiding them behind mDNS names look to a peer.
    `needs_relay`: run the relay-less second pair that answers whether a relay was needed.
    `peer_a`/`peer_b`: the WebRTC stack of each side. `settle_s`: how long the selected pair must stay the
    same while echoes flow both ways before it counts as settled (Chromium may switch pairs after
    connecting; aiortc never renominates, so its first pair is its settled pair).
    `hold_s`: keep the call up this long after it connected (0: end after the connect echoes, as short as
    a session can be), echoing every `interval_s` from both sides (0: no echoes, only the stacks' own
    keepalives and one check at the end). `events`: network events at times after connect
    (netsim.lab.events), given as Event or as [[event]] tables.
    `ipv4_only_a`/`ipv4_only_b`: that side's Chromium is its IPv4-only twin (IPv6 gathering off by field
    trial), for a scenario that wants a dual-stack network with one IPv4-only browser.
    """

    host_a: str = "a"
    host_b: str = "b"
    peer_a: PeerName = AIORTC
    peer_b: PeerName = AIORTC
    turn: Turn = UDP
    policy: Policy = "all"
    glare: bool = False
    glare_first: Side = "a"
    hide_host: bool = False
    media: bool = False
    deadline_s: float = BASE_DEADLINE_S
    needs_relay: bool = True
    settle_s: float = 1.0
    hold_s: float = 0.0
    interval_s: float = DEFAULT_INTERVAL_S
    events: tuple[Event, ...] = ()
    ipv4_only_a: bool = False
    ipv4_only_b: bool = False

    def __post_init__(self) -> None:
        _choice("turn", self.turn, TURN_CHOICES)
        _choice("policy", self.policy, POLICIES)
        _choice("glare_first", self.glare_first, SIDES)
        _peer("peer_a", self.peer_a)
        _peer("peer_b", self.peer_b)
        for name in ("glare", "hide_host", "media", "needs_relay", "ipv4_only_a", "ipv4_only_b"):
            if not isinstance(getattr(self, name), bool):
                raise OptionsError(f"{name}: expected true or false, got {getattr(self, name)!r}")
        for side, peer in (("a", self.peer_a), ("b", self.peer_b)):
            if getattr(self, f"ipv4_only_{side}") and peer != CHROMIUM:  # the only stack with the switch
                raise OptionsError(
                    f"ipv4_only_{side}: only a chromium peer has an IPv4-only twin, peer_{side} is {peer}"
                )
        for name in ("host_a", "host_b"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise OptionsError(f"{name}: expected a host name, got {getattr(self, name)!r}")
        deadline = self.deadline_s
        if isinstance(deadline, bool) or not isinstance(deadline, int | float):
            raise OptionsError(f"deadline_s: expected a number of seconds, got {deadline!r}")
        if not 0 < deadline <= MAX_DEADLINE_S:
            raise OptionsError(f"deadline_s: must be > 0 and <= {MAX_DEADLINE_S:g}, got {deadline!r}")
        object.__setattr__(self, "deadline_s", float(deadline))
        settle = self.settle_s
        if isinstance(settle, bool) or not isinstance(settle, int | float) or not 0 <= settle <= 60:
            raise OptionsError(f"settle_s: expected seconds from 0 to 60, got {settle!r}")
        object.__setattr__(self, "settle_s", float(settle))
        for name, top in (("hold_s", MAX_HOLD_S), ("interval_s", 60.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= top:
                raise OptionsError(f"{name}: expected seconds from 0 to {top:g}, got {value!r}")
            object.__setattr__(self, name, float(value))
        object.__setattr__(self, "events", _events(self.events))
        if self.events and self.hold_s <= max(e.at_s + (e.seconds or 0) for e in self.events):
            last = max(e.at_s + (e.seconds or 0) for e in self.events)
            raise OptionsError(
                f"hold_s: {self.hold_s:g} s ends before the last event ({last:g} s after connect)"
            )

    def replace(self, **changes: Any) -> SessionOptions:
        """A copy with some options changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """The options as plain JSON values, as results records keep them."""
        out = dataclasses.asdict(self)
        out["events"] = [e.as_dict() for e in self.events]
        return out


# The keys a scenario file's [session] table may set, beyond the options themselves.
TABLE_ONLY_KEYS = ("a", "b", "group", "label_a", "label_b")
_TABLE_RENAMES = {"a": "host_a", "b": "host_b"}


def option_names() -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(SessionOptions))


def from_table(table: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> SessionOptions:
    """Options from a [session] table (keys `a`/`b` name the hosts); the caller refuses unknown keys."""
    names = set(option_names())
    values: dict[str, Any] = dict(defaults or {})
    for key, value in table.items():
        name = _TABLE_RENAMES.get(key, key)
        if name in names:
            values[name] = value
    return SessionOptions(**values)


def _events(value: object) -> tuple[Event, ...]:
    """Events from Event objects or [[event]] tables, in the order given."""
    if not isinstance(value, list | tuple):
        raise OptionsError(f"events: expected a list of event tables, got {value!r}")
    try:
        return tuple(event_from_table(e, f"events[{i}]") for i, e in enumerate(value))
    except EventError as e:
        raise OptionsError(str(e)) from None


def _peer(name: str, value: object) -> None:
    """A stack netsim knows, or `exec:COMMAND` (a program of the user's speaking the peer protocol)."""
    if isinstance(value, str) and value.startswith(EXEC_PREFIX):
        try:
            argv = shlex.split(value.removeprefix(EXEC_PREFIX))
        except ValueError as exc:
            raise OptionsError(f"{name}: {value!r}: {exc}") from None
        if not argv:
            raise OptionsError(f"{name}: {value!r} names no command (exec:COMMAND)")
        return
    if value not in PEER_STACKS:
        raise OptionsError(
            f"{name}: unknown value {value!r} (choose from {', '.join(PEER_STACKS)} or exec:COMMAND)"
        )


def _choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise OptionsError(f"{name}: unknown value {value!r} (choose from {', '.join(allowed)})")
