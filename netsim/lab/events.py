"""Network events applied to a running lab from outside, at times after a call connected.

- `flush NODE`: the NAT router forgets every mapping (nft sets and maps, conntrack), as after a reboot;
- `down NODE SECONDS`: the node's uplink carries nothing for SECONDS (dropped by nft before conntrack sees
  it: setting the link down would delete routes and flush conntrack, a different event);
- `nat NODE KIND`: the router's NAT behaviour becomes another preset, live (same render/apply path as the
  lab build; existing conntrack entries stay, as on a router whose rules are reloaded);
- `move HOST SITE`: the host leaves its LAN and joins another site's with a new address (Wi-Fi to
  cellular): a new veth into the target router's LAN bridge, the old link deleted, a new default route;
- `turn-restart`: coturn is restarted (every allocation is lost; credentials stay valid).

Everything runs inside the lab's namespaces (nft, conntrack and ip through nsenter or setns), never in the
root namespace. Only the Lab's public attributes are used (namespaces, plan, topology, coturn, netns()).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import math
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netsim.lab import nat, netns, nftables
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
DOWN_TABLE = "netsim-down"
MOVE_TABLE = "netsim-move"  # a moving host's old links, cut while the kernel deletes them
NAT_TABLE = "netsim"  # the table every shipped ruleset defines (docs/nat.md)
# nft 1.0.6 has no `destroy`: declaring the table first makes the delete safe when it is already gone.
_DELETE_DOWN = f"table inet {DOWN_TABLE}\ndelete table inet {DOWN_TABLE}\n"
MOVED_HOST_INDEX = 200  # a moved host takes .200, .201, ... of its new LAN (clear of the planned hosts)


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
                _next_spec(with_nat, str(ev.kind))
            except NatError as e:
                raise EventError(f"{where}: {e}") from None


# ---- applying events -----------------------------------------------------------------------------------


def _uplink(lab: Lab, node: str) -> str:
    """The interface towards the internet: `wan` on routers, `eth0` on hosts and servers."""
    return "wan" if lab.plan[node].role in ("router", "carrier") else "eth0"


def flush(lab: Lab, node: str) -> dict[str, Any]:
    """Forget every mapping of the router: flush its nft sets and maps and its conntrack table."""
    ns = lab.netns(node)
    listed = netns.run(ns, ["nft", "-j", "list", "table", "inet", NAT_TABLE], capture_output=True, text=True)
    flushed: list[str] = []
    if listed.returncode == 0:
        for item in json.loads(listed.stdout).get("nftables", []):
            for what in ("set", "map"):
                if what in item:
                    flushed.append(f"{what} {item[what]['name']}")
    if flushed:
        nftables.load(ns, "\n".join(f"flush {f.split()[0]} inet {NAT_TABLE} {f.split()[1]}" for f in flushed))
    out = netns.run(ns, ["conntrack", "-F"], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"conntrack -F in {node}: {out.stderr.strip()}")
    return {"flushed": flushed, "conntrack": out.stderr.strip() or out.stdout.strip()}


def down_ruleset(ifaces: str | Sequence[str], table: str = DOWN_TABLE) -> str:
    """Drop everything in and out of the interface(s): inbound before conntrack (raw - 10), so no entry is
    touched."""
    names = [ifaces] if isinstance(ifaces, str) else list(ifaces)
    quoted = ", ".join(f'"{n}"' for n in names)
    what = quoted if len(names) == 1 else f"{{ {quoted} }}"
    # `fwd` is an nft keyword: the chains are named after what they drop.
    hooks = (
        ("inbound", "prerouting", "iifname"),
        ("sent", "output", "oifname"),
        ("passing", "forward", "oifname"),
    )
    chains = [
        f"  chain {name} {{ type filter hook {hook} priority raw - 10; policy accept; {match} {what} drop; }}"
        for name, hook, match in hooks
    ]
    return "\n".join([f"table inet {table} {{", *chains, "}"]) + "\n"


def down(lab: Lab, node: str) -> dict[str, Any]:
    iface = _uplink(lab, node)
    nftables.load(lab.netns(node), down_ruleset(iface))
    return {"interface": iface}


def up(lab: Lab, node: str) -> dict[str, Any]:
    nftables.load(lab.netns(node), _DELETE_DOWN)
    return {"interface": _uplink(lab, node)}


def _next_spec(current: nat.NatSpec | None, kind: str) -> nat.NatSpec:
    """The preset `kind`, keeping the router's lifetime (and hairpin, where the preset offers it)."""
    lifetime = current.lifetime_s if current is not None else nat.DEFAULT_LIFETIME_S
    spec = nat.preset(kind, lifetime_s=lifetime)
    if current is not None and current.hairpin and spec.nat and not spec.udp_blocked:
        spec = nat.preset(kind, lifetime_s=lifetime, hairpin=True)
    return spec


def change_nat(lab: Lab, node: str, kind: str) -> dict[str, Any]:
    """Load another preset into the router, as the lab build does."""
    site = next((s for s in lab.topology.sites if s.name == node), None)
    spec = _next_spec(site.nat if site is not None else None, kind)
    plan = lab.plan[node]
    wan = next(i for i in plan.ifaces if i.name == "wan")
    lan = next(i for i in plan.ifaces if i.name == "lan")
    lan_net = _network(lan.address)
    nat.apply(
        lab.netns(node), spec, wan_if="wan", lan_if="lan", wan_ip=wan.address.split("/")[0], lan_cidr=lan_net
    )
    return {"kind": kind, "lifetime_s": spec.lifetime_s}


def _network(cidr: str) -> str:
    return str(ipaddress.IPv4Interface(cidr).network)


def move(lab: Lab, host: str, site: str, index: int = 0) -> dict[str, Any]:
    """Move `host` onto `site`'s LAN with a new address: its old link goes, then a new veth into the site's
    bridge comes up with the new address and default route (Wi-Fi lost, then cellular attached).

    The path is cut first by an nft table in the host dropping everything on its old links (nf_tables has a
    lock per namespace): link changes wait for the kernel's one rtnl lock, which other labs' builds and
    teardowns hold at times (the old link's deletion once took 4.4 s under heavy load, ~0.02 s otherwise),
    and the old path must not carry the call meanwhile. Links are changed in-process (netns.Rtnl): no `ip`
    processes, whose start-up alone took seconds under load. Recorded: `cut_s` (start to the drop in place),
    `gone_s` (old link deleted), `took_s` (the new link attached).
    """
    router = lab.plan[site]
    lan = next(i for i in router.ifaces if i.name == "lan")
    gateway = lan.address.split("/")[0]
    net = ipaddress.IPv4Interface(lan.address).network
    address = f"{net.network_address + MOVED_HOST_INDEX + index}/{net.prefixlen}"
    host_ns, router_ns = lab.netns(host), lab.netns(site)
    t0 = time.monotonic()
    with netns.entered(host_ns):
        old = [(i, name) for i, name in socket.if_nameindex() if name != "lo"]  # eth0, or an earlier move's
    nftables.load(host_ns, down_ruleset([name for _, name in old], MOVE_TABLE))
    cut_s = time.monotonic() - t0

    with netns.Rtnl(host_ns) as r:
        for i, name in old:  # its addresses and routes go with it
            r.delete_link(i, name)
        r.commit()
    gone_s = time.monotonic() - t0
    nftables.load(host_ns, f"table inet {MOVE_TABLE}\ndelete table inet {MOVE_TABLE}\n")
    with netns.entered(router_ns):
        bridge = socket.if_nametoindex("lan")
    new = next(f"eth{i}" for i in range(1, 100) if f"eth{i}" not in {name for _, name in old})
    port = f"mv{index}-{host}"[:15]
    host_fd = os.open(netns.path(host_ns), os.O_RDONLY)
    try:
        with netns.Rtnl(router_ns) as r:
            r.veth(port, 0, master=bridge, peer=new, peer_index=0, peer_netns=host_fd)
            r.commit()
    finally:
        os.close(host_fd)
    with netns.entered(host_ns):
        link = socket.if_nametoindex(new)

    with netns.Rtnl(host_ns) as r:
        r.address(link, address)
        r.up(link)
        r.route("0.0.0.0/0", gateway)
        r.commit()  # an OSError names the refused request
    return {
        "address": address.split("/")[0],
        "gateway": gateway,
        "cut_s": round(cut_s, 3),
        "gone_s": round(gone_s, 3),
        "took_s": round(time.monotonic() - t0, 3),
    }


def turn_restart(lab: Lab) -> dict[str, Any]:
    """Stop coturn and start it again (its allocations are gone; the REST secret is the same)."""
    if lab.coturn is None:
        raise RuntimeError("the lab runs no coturn")
    t0 = time.monotonic()
    lab.coturn.stop()
    ready = lab.coturn.start()
    return {"down_s": round(time.monotonic() - t0, 3), "ready_s": round(ready, 3)}


def apply(lab: Lab, ev: Event, moves: int = 0) -> dict[str, Any]:
    """Apply one event now; returns what it did (for the record)."""
    if ev.action == FLUSH:
        return flush(lab, str(ev.node))
    if ev.action == DOWN:
        return down(lab, str(ev.node))
    if ev.action == NAT:
        return change_nat(lab, str(ev.node), str(ev.kind))
    if ev.action == MOVE:
        return move(lab, str(ev.host), str(ev.site), moves)
    return turn_restart(lab)


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
            entry["detail"] = up(lab, str(ev.node)) if action == UP else apply(lab, ev, moves)
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
                nftables.load(lab.netns(str(ev.node)), _DELETE_DOWN)
