"""Resetting a live lab for another cell of the same shape (netsim.suite.keep decides when).

A lab can serve a cell whose topology plans the same nodes, links and addresses (`same_shape`): only NAT
presets differ. `reset(lab, topology)` then makes it what a fresh build of `topology` would be, as far as a
session can tell: every router's ruleset is loaded again from the new spec (a reload deletes and remakes
the `netsim` table, so its mapping sets start empty) with the sysctls a fresh router has, every router's
conntrack table is flushed, every learned neighbour entry in every namespace is deleted, and coturn is
restarted (its allocations end; its certificate stays, so a kept browser's pin still holds). Signaling
sessions must have ended: a lab whose server still holds one is refused (LabError).

Only the Lab's public attributes are used (namespaces, plan, topology, coturn, netns()); conntrack and
neighbour flushes are netlink requests made in-process in each namespace (netsim.lab.rtnl), never in the
root one.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from netsim.lab import nat, netns
from netsim.lab.nat import NatSpec
from netsim.lab.registry import LabError
from netsim.lab.rtnl import flush_conntrack, flush_neighbours
from netsim.lab.topology import Topology, plan, site_ipv6
from netsim.vocab import IPV4_ONLY

if TYPE_CHECKING:
    from netsim.lab.lab import Lab

# What a router namespace has before any NAT ruleset set them (a fresh namespace's conntrack UDP timeouts;
# read once from a namespace no preset touched, see `_defaults`).
_TIMEOUTS = ("net.netfilter.nf_conntrack_udp_timeout", "net.netfilter.nf_conntrack_udp_timeout_stream")
SIGNALING_IDLE_S = 2.0  # how long the last cell's peers may take to leave the signaling server


def resettable(topology: Topology) -> bool:
    """Whether a reset can make a lab of `topology` fresh: no carriers (their layered NATs get a lab of
    their own), no impairment and no site with IPv6 (a reset reloads NAT rules, not IPv6 firewalls: a
    dual-stack cell has its own lab)."""
    if topology.carriers:
        return False
    return all(site_ipv6(s) == IPV4_ONLY and s.impair is None for s in topology.sites)


def same_shape(kept: Topology, wanted: Topology) -> bool:
    """Whether a lab built for `kept` can serve `wanted`: both resettable, with the same nodes, links,
    addresses and routes and the same IP mode."""
    if kept.ipv6 != wanted.ipv6 or kept.servers != wanted.servers:
        return False
    return resettable(kept) and resettable(wanted) and plan(kept) == plan(wanted)


def routers(topology: Topology) -> dict[str, NatSpec]:
    return {s.name: s.nat for s in topology.sites}


def reset(lab: Lab, topology: Topology) -> dict[str, float]:
    """Make `lab` a fresh lab of `topology` (which must have its shape); returns the seconds each step took
    ({"rules_s", "flush_s", "coturn_s", "signaling_s"})."""
    if not same_shape(lab.topology, topology):
        raise LabError(f"lab {lab.id}: topology {topology.name!r} does not have the shape of the lab's")
    t0 = time.perf_counter()
    signaling_idle(lab)
    t1 = time.perf_counter()
    specs = routers(topology)
    with ThreadPoolExecutor(len(specs) + 1) as pool:
        # coturn restarts while the routers load their rules side by side (nft waits for an RCU grace
        # period when its socket closes); the flushes follow the loads.
        restarted = pool.submit(_restart_coturn, lab)
        for f in [pool.submit(_load, lab, name, spec) for name, spec in specs.items()]:
            f.result()
        t2 = time.perf_counter()
        for name in specs:
            flush_conntrack(lab.netns(name))
        for name in lab.namespaces.values():
            flush_neighbours(name)
        t3 = time.perf_counter()
        restarted.result()
    lab.topology = topology
    return {
        "signaling_s": round(t1 - t0, 4),
        "rules_s": round(t2 - t1, 4),
        "flush_s": round(t3 - t2, 4),
        "coturn_s": round(time.perf_counter() - t1, 4),  # its restart, beside the rules and flushes
    }


def _restart_coturn(lab: Lab) -> None:
    if lab.coturn is not None:
        lab.coturn.stop()
        lab.coturn.start()


def _load(lab: Lab, name: str, spec: NatSpec) -> None:
    node = lab.plan[name]
    wan = next(i for i in node.ifaces if i.name == "wan")
    lan = next(i for i in node.ifaces if i.name == "lan")
    ns = lab.netns(name)
    if not spec.nat:  # no preset timeouts: those a fresh router has
        netns.write_sysctls(ns, _defaults(lab))
    lan_net = str(ipaddress.ip_interface(lan.address).network)
    nat.apply(ns, spec, wan_if="wan", lan_if="lan", wan_ip=wan.address.split("/")[0], lan_cidr=lan_net)


_DEFAULTS: dict[str, str] = {}


def _defaults(lab: Lab) -> dict[str, str]:
    """The conntrack UDP timeouts of a namespace no NAT ruleset configured (the server's), read once."""
    if not _DEFAULTS:
        server = lab.netns(lab.topology.servers[0])
        with netns.entered(server):
            for key in _TIMEOUTS:
                _DEFAULTS[key] = open("/proc/sys/" + key.replace(".", "/")).read().strip()
    return dict(_DEFAULTS)


def signaling_idle(lab: Lab, timeout_s: float = SIGNALING_IDLE_S) -> None:
    """Wait until the signaling server holds no session (the last cell's peers said goodbye); LabError if
    one is still there after `timeout_s`."""
    url = lab.signaling_url
    if url is None:
        return
    host, port = url.removeprefix("ws://").rsplit(":", 1)
    server = lab.netns(lab.topology.servers[0])
    deadline = time.monotonic() + timeout_s
    clients = -1
    while time.monotonic() < deadline:
        clients = _clients(server, host, int(port))
        if clients == 0:
            return
        time.sleep(0.02)
    raise LabError(f"lab {lab.id}: the signaling server still holds {clients} session(s)")


def _clients(ns: str, host: str, port: int) -> int:
    """`clients` of the signaling server's /healthz (-1 when it does not answer)."""
    try:
        sock = netns.socket_in(ns, socket.AF_INET, socket.SOCK_STREAM)
    except OSError:
        return -1
    with sock:
        sock.settimeout(1.0)
        try:
            sock.connect((host, port))
            sock.sendall(f"GET /healthz HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
            return int(json.loads(data.split(b"\r\n\r\n", 1)[1])["clients"])
        except (OSError, ValueError, KeyError, IndexError):
            return -1
