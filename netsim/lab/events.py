"""Network events applied to a running lab from outside, at times after a call connected.

- `flush NODE`: the NAT router forgets every mapping (nft sets and maps, conntrack), as after a reboot;
- `down NODE SECONDS`: the node's uplink carries nothing for SECONDS (dropped by nft before conntrack sees
  it: setting the link down would delete routes and flush conntrack, a different event);
- `nat NODE KIND`: the router's NAT behaviour becomes another preset, live (same render/apply path as the
  lab build; existing conntrack entries stay, as on a router whose rules are reloaded);
- `move HOST SITE`: the host leaves its LAN and joins another site's with a new address (Wi-Fi to
  cellular): a new veth into the target router's LAN bridge, the old link deleted, a new default route;
- `turn-restart`: coturn is restarted (every allocation is lost; credentials stay valid).

This module is the events' model (parsing, checking against a topology) and their timeline; what each
action does to the lab is netsim.lab.actions.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netsim.lab import actions, nftables
from netsim.lab.nat import NatError
from netsim.lab.topology import Topology, TopologyError
from netsim.vocab import NAT_PRESETS

if TYPE_CHECKING:
    from netsim.lab.lab import Lab

FLUSH, DOWN, NAT, MOVE, TURN_RESTART = "flush", "down", "nat", "move", "turn-restart"
UP = "up"  # the end of a `down`, scheduled by the timeline (not an action one asks for)
ACTIONS = (FLUSH, DOWN, NAT, MOVE, TURN_RESTART)
# Each action's arguments, in the order the CLI form AT:ACTION:ARGS gives them.
ARGS: dict[str, tuple[str, ...]] = {
    FLUSH: ("node",),
    DOWN: ("node", "seconds"),
    NAT: ("node", "kind"),
    MOVE: ("host", "site"),
    TURN_RESTART: (),
}
MAX_AT_S = 3600.0


class EventError(TopologyError):
    """A bad event; the message names the event and the field or value. A TopologyError: the CLI shows it as
    bad input (one line, exit 2), like the topology it refers to."""


@dataclass(frozen=True)
class Event:
    """One event, `at_s` seconds after both peers connected; the fields its action uses are set."""

    at_s: float
    action: str
    node: str | None = None
    seconds: float | None = None
    kind: str | None = None
    host: str | None = None
    site: str | None = None

    def __post_init__(self) -> None:
        where = f"event {self.action!r} at {self.at_s!r}"
        if self.action not in ACTIONS:
            raise EventError(f"event action: unknown {self.action!r} (choose from {', '.join(ACTIONS)})")
        if isinstance(self.at_s, bool) or not isinstance(self.at_s, int | float):
            raise EventError(f"{where}: at_s: expected seconds after connect, got {self.at_s!r}")
        if not 0 <= self.at_s <= MAX_AT_S:
            raise EventError(f"{where}: at_s: must be from 0 to {MAX_AT_S:g}, got {self.at_s!r}")
        object.__setattr__(self, "at_s", float(self.at_s))
        wanted = ARGS[self.action]
        for name in ("node", "seconds", "kind", "host", "site"):
            value = getattr(self, name)
            if name not in wanted and value is not None:
                raise EventError(
                    f"{where}: {name}: not an argument of {self.action!r} (takes {_takes(wanted)})"
                )
            if name in wanted and value is None:
                raise EventError(f"{where}: {name}: missing ({self.action!r} takes {_takes(wanted)})")
        for name in ("node", "host", "site"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise EventError(f"{where}: {name}: expected a node name, got {value!r}")
        if self.seconds is not None:
            s = self.seconds
            if isinstance(s, bool) or not isinstance(s, int | float) or not 0 < s <= MAX_AT_S:
                raise EventError(f"{where}: seconds: expected seconds > 0, got {s!r}")
            object.__setattr__(self, "seconds", float(s))
        if self.kind is not None and self.kind not in NAT_PRESETS:
            raise EventError(
                f"{where}: kind: unknown NAT preset {self.kind!r} (choose from {', '.join(NAT_PRESETS)})"
            )

    def as_dict(self) -> dict[str, Any]:
        """The event as a scenario file's [[event]] table has it (only the fields its action uses)."""
        out: dict[str, Any] = {"at_s": self.at_s, "action": self.action}
        out.update({name: getattr(self, name) for name in ARGS[self.action]})
        return out

    def label(self) -> str:
        """The CLI form, AT:ACTION[:ARGS]."""
        args = [
            f"{getattr(self, n):g}" if n == "seconds" else str(getattr(self, n)) for n in ARGS[self.action]
        ]
        return ":".join([f"{self.at_s:g}", self.action, *args])


def _takes(names: tuple[str, ...]) -> str:
    return ", ".join(names) or "no arguments"


def parse_spec(text: str) -> Event:
    """An event from the CLI form `AT:ACTION[:ARGS]`, e.g. `3:down:nat-a:3`, `2:nat:nat-b:symmetric`."""
    parts = text.split(":")
    if len(parts) < 2:
        raise EventError(f"--event {text!r}: expected AT:ACTION[:ARGS] (e.g. 3:down:nat-a:3)")
    at, action, args = parts[0], parts[1], parts[2:]
    if action not in ACTIONS:
        raise EventError(f"--event {text!r}: unknown action {action!r} (choose from {', '.join(ACTIONS)})")
    names = ARGS[action]
    if len(args) != len(names):
        raise EventError(f"--event {text!r}: {action} takes {len(names)} argument(s): {_takes(names)}")
    values: dict[str, Any] = dict(zip(names, args, strict=True))
    try:
        at_s = float(at)
        if "seconds" in values:
            values["seconds"] = float(values["seconds"])
    except ValueError:
        raise EventError(f"--event {text!r}: AT and SECONDS must be numbers") from None
    if not math.isfinite(at_s):
        raise EventError(f"--event {text!r}: AT must be a finite number")
    try:
        return Event(at_s=at_s, action=action, **values)
    except EventError as e:
        raise EventError(f"--event {text!r}: {e}") from None


def from_table(table: Mapping[str, Any] | Event, where: str = "event") -> Event:
    """An event from an [[event]] table ({at_s, action, ...its arguments}); `where` prefixes errors."""
    if isinstance(table, Event):
        return table
    if not isinstance(table, Mapping):
        raise EventError(f"{where}: expected a table, got {table!r}")
    action = table.get("action")
    if action not in ACTIONS:
        raise EventError(f"{where}.action: unknown {action!r} (choose from {', '.join(ACTIONS)})")
    allowed = ("at_s", "action", *ARGS[str(action)])
    for key in table:
        if key not in allowed:
            raise EventError(f"{where}.{key}: unknown key for {action!r} (allowed: {', '.join(allowed)})")
    if "at_s" not in table:
        raise EventError(f"{where}.at_s: missing (seconds after connect)")
    try:
        return Event(**dict(table))
    except EventError as e:
        raise EventError(f"{where}: {e}") from None
    except TypeError as e:
        raise EventError(f"{where}: {e}") from None


def check(events: tuple[Event, ...], topo: Topology) -> None:
    """Refuse events that name nodes the topology does not have in that role (before any lab is built)."""
    routers = [s.name for s in topo.sites] + [c.name for c in topo.carriers]
    hosts = topo.hosts()
    for ev in events:
        where = f"event {ev.label()}"
        if ev.action in (FLUSH, NAT) and ev.node not in routers:
            raise EventError(f"{where}: node {ev.node!r} is not a NAT router (routers: {', '.join(routers)})")
        if ev.action == DOWN and ev.node not in routers + hosts:
            raise EventError(
                f"{where}: node {ev.node!r} is not a router or host ({', '.join(routers + hosts)})"
            )
        if ev.action == MOVE:
            if ev.host not in hosts:
                raise EventError(f"{where}: host {ev.host!r} is not a host ({', '.join(hosts)})")
            sites = [s.name for s in topo.sites]
            if ev.site not in sites:
                raise EventError(f"{where}: site {ev.site!r} is not a site ({', '.join(sites)})")
            if ev.site == topo.site_of(str(ev.host)).name:
                raise EventError(f"{where}: host {ev.host!r} is already in site {ev.site!r}")
        if ev.action == NAT:
            with_nat = next((s.nat for s in topo.sites if s.name == ev.node), None)
            try:
                actions.next_spec(with_nat, str(ev.kind))
            except NatError as e:
                raise EventError(f"{where}: {e}") from None


# ---- applying events -----------------------------------------------------------------------------------


def apply(lab: Lab, ev: Event, moves: int = 0) -> dict[str, Any]:
    """Apply one event now; returns what it did (for the record)."""
    if ev.action == FLUSH:
        return actions.flush(lab, str(ev.node))
    if ev.action == DOWN:
        return actions.down(lab, str(ev.node))
    if ev.action == NAT:
        return actions.change_nat(lab, str(ev.node), str(ev.kind))
    if ev.action == MOVE:
        return actions.move(lab, str(ev.host), str(ev.site), moves)
    return actions.turn_restart(lab)


# ---- the timeline --------------------------------------------------------------------------------------


def steps(events: tuple[Event, ...]) -> list[tuple[float, str, Event]]:
    """(at_s, action, event) in time order, with the `up` that ends each `down`."""
    out = [(ev.at_s, ev.action, ev) for ev in events]
    out += [(ev.at_s + float(ev.seconds or 0), UP, ev) for ev in events if ev.action == DOWN]
    return sorted(out, key=lambda s: s[0])


def run_timeline(
    lab: Lab,
    events: tuple[Event, ...],
    origin: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    stop: Callable[[], bool] = lambda: False,
) -> list[dict[str, Any]]:
    """Apply the events at origin + at_s (monotonic); each applied one as {"t" (actual, monotonic),
    "at_s", "action", its arguments, "detail", "error"}. An event that fails is recorded with its error
    and the timeline goes on; `stop()` true ends it early (the rest recorded as not applied)."""
    done: list[dict[str, Any]] = []
    moves = 0
    for at_s, action, ev in steps(events):
        entry: dict[str, Any] = {**ev.as_dict(), "action": action, "at_s": at_s, "t": None, "detail": None}
        entry["error"] = None
        wait = origin + at_s - clock()
        while wait > 0 and not stop():
            sleep(min(wait, 0.1))
            wait = origin + at_s - clock()
        if stop():
            entry["error"] = "not applied: the call had ended"
            done.append(entry)
            continue
        entry["t"] = clock()
        try:
            entry["detail"] = actions.up(lab, str(ev.node)) if action == UP else apply(lab, ev, moves)
        except Exception as exc:  # recorded, not raised: the call goes on
            entry["error"] = f"{type(exc).__name__}: {exc}"
        moves += action == MOVE
        done.append(entry)
    return done


def undo_all(lab: Lab, events: tuple[Event, ...]) -> None:
    """Leave no drop table behind (a timeline ended early): best effort."""
    for ev in events:
        if ev.action == DOWN:
            with contextlib.suppress(Exception):
                nftables.load(lab.netns(str(ev.node)), actions.DELETE_DOWN)
