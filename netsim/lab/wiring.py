"""A lab's links planned before anything is made, and the rtnetlink requests that make them.

`Wiring.of(plan)` fixes every link's index and MAC address and where each veth pair plugs in; `neighbours`
lists the static neighbour entries between the nodes of each segment; `make_links`, `finish` and
`wait_forwarding` send the requests through one `rtnl.Rtnl` per namespace (held by `Netlink`). The order in
which namespaces are made and NAT rules loaded is the builder's (netsim.lab.lab).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import time
from dataclasses import dataclass

from netsim.lab import netns
from netsim.lab.registry import LabError
from netsim.lab.rtnl import BR_STATE_FORWARDING, Rtnl
from netsim.lab.topology import Iface, NodePlan, segments

INET = "inet"  # the internet segment's namespace suffix and bridge name
LOOPBACK_INDEX = 1  # lo is always the first link of a new namespace
MESH_MAX = 32  # nodes on a segment up to which static neighbours are a full mesh (see neighbours)
# Generous: the link watcher is one kernel worker, shared with every lab on the machine.
PORTS_TIMEOUT_S = 10.0


@dataclass
class Port:
    """Where a node's interface plugs in: a bridge in some namespace."""

    netns: str
    bridge: str


def port_of(iface: Iface) -> Port:
    """The bridge an interface plugs into: the internet's, or its router's (or carrier's) `lan`."""
    if iface.link == "internet":
        return Port(INET, INET)
    return Port(iface.link.split(":", 1)[1], "lan")


@dataclass(frozen=True)
class Veth:
    """A node's interface `ifname` (link `index` in its namespace), the end of a veth pair whose other end
    `port` (link `port_index`) is a port of bridge `master` in `port_node`'s namespace."""

    ifname: str
    index: int
    port_node: str
    port: str
    port_index: int
    master: int


@dataclass
class Wiring:
    """Every link of a lab with its index, fixed before anything is made (indexes as plain `ip` would give
    them building the plan in order: the node's own interfaces first, then bridge ports)."""

    links: dict[tuple[str, str], int]  # (node, interface) -> link index in the node's namespace
    bridges: dict[str, list[tuple[str, int]]]  # node -> its bridges (name, index)
    veths: dict[str, list[Veth]]  # node -> the veth pairs that end in it
    macs: dict[tuple[str, str], bytes] = dataclasses.field(default_factory=dict)  # (node, interface) -> MAC

    def ports(self, node: str) -> set[int]:
        """Link indexes of the bridge ports in the node's namespace."""
        return {v.port_index for veths in self.veths.values() for v in veths if v.port_node == node}

    @classmethod
    def of(cls, plan: dict[str, NodePlan]) -> Wiring:
        index = {node: itertools.count(LOOPBACK_INDEX + 1) for node in (INET, *plan)}
        links = {(INET, INET): next(index[INET])}
        for node in plan.values():
            links.update({(node.name, i.name): next(index[node.name]) for i in _unique(node.ifaces)})
        # Every addressed interface gets its MAC from its place in the lab: known before anything is made.
        macs = {key: nth_mac(n) for n, key in enumerate(links) if key[0] != INET}
        wiring = cls(links, {INET: [(INET, links[INET, INET])]}, {}, macs)
        ports = itertools.count(1)
        for node in plan.values():
            for iface in _unique(node.ifaces):
                here = links[node.name, iface.name]
                if iface.name == "lan" and _has_lan_bridge(node):
                    wiring.bridges.setdefault(node.name, []).append(("lan", here))
                    continue
                port = port_of(iface)
                master = links[port.netns, port.bridge]
                veth = Veth(iface.name, here, port.netns, f"p{next(ports)}", next(index[port.netns]), master)
                wiring.veths.setdefault(node.name, []).append(veth)
        return wiring


class Netlink:
    """Per node: an rtnetlink socket opened inside its namespace, and an fd of the namespace (veth peers)."""

    def __init__(self) -> None:
        self.rtnl: dict[str, Rtnl] = {}
        self.fds: dict[str, int] = {}

    def open(self, node: str, name: str) -> None:
        self.fds[node] = os.open(netns.path(name), os.O_RDONLY | os.O_CLOEXEC)
        self.rtnl[node] = Rtnl(name)

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *exc: object) -> None:
        for rtnl in self.rtnl.values():
            rtnl.close()
        for fd in self.fds.values():
            os.close(fd)


def make_links(nl: Netlink, wiring: Wiring, node: str) -> None:
    """The node's bridges, and the veth pairs that end in it (made from their bridge's namespace)."""
    for bridge, index in wiring.bridges.get(node, []):
        nl.rtnl[node].bridge(bridge, index, mac=wiring.macs.get((node, bridge)))
    veths = wiring.veths.get(node, [])
    for v in veths:
        nl.rtnl[v.port_node].veth(
            v.port,
            v.port_index,
            master=v.master,
            peer=v.ifname,
            peer_index=v.index,
            peer_netns=nl.fds[node],
            peer_mac=wiring.macs[node, v.ifname],
        )
    for port_node in {v.port_node for v in veths}:
        nl.rtnl[port_node].commit()
    for v in veths:  # now: the bridge port forwards once the link watcher has seen the carrier
        nl.rtnl[node].up(v.index)
    nl.rtnl[node].commit()


def wait_forwarding(rtnl: Rtnl, ports: set[int], timeout_s: float = PORTS_TIMEOUT_S) -> None:
    """Until every bridge port forwards: the kernel enables a port from its link watcher, a moment after
    its carrier came up, and a lab is not up while a packet can still be dropped on its way."""
    deadline = time.monotonic() + timeout_s
    while True:
        states = rtnl.bridge_port_states()
        if all(states.get(port) == BR_STATE_FORWARDING for port in ports):
            return
        if time.monotonic() > deadline:
            waiting = sorted(port for port in ports if states.get(port) != BR_STATE_FORWARDING)
            raise LabError(f"bridge ports {waiting} in {rtnl.name} not forwarding after {timeout_s:.0f} s")
        time.sleep(0.001)


def finish(
    rtnl: Rtnl, node: NodePlan | None, links: dict[tuple[str, str], int], static: list[Neighbour]
) -> None:
    """Loopback up; for a planned node (not the internet) its addresses, routes and static neighbours."""
    rtnl.up(LOOPBACK_INDEX)
    if node is not None:
        _addresses(rtnl, node, links)
    for index, ip, mac in static:
        rtnl.neighbour(index, ip, mac)
    rtnl.commit()


def nth_mac(n: int) -> bytes:
    """The lab's n-th MAC address: locally administered, unicast (segments of different labs never meet)."""
    return bytes((0x02, 0x6E, 0x73)) + n.to_bytes(3, "big")


Neighbour = tuple[int, str, bytes]  # (link index in the node's namespace, neighbour's address, its MAC)


def neighbours(
    plan: dict[str, NodePlan], wiring: Wiring, mesh_max: int = MESH_MAX
) -> dict[str, list[Neighbour]]:
    """Per node, permanent entries for the addresses of the other nodes on each segment it is on: all of
    them on a segment of up to `mesh_max` nodes; on a larger one only a server's, and a server's for all.

    A full mesh grows with the square of the nodes (200 sites: 41,000 entries, ~25 MB of kernel memory);
    beyond `mesh_max` the sites that do talk to each other resolve those few by ARP.
    """
    table: dict[str, list[Neighbour]] = {}
    for members in segments(plan).values():
        remote = [(node, _ip(iface), wiring.macs[node, iface.name]) for node, iface in members]
        nodes = dict.fromkeys((node, iface.name) for node, iface in members)
        mesh = len({node for node, _ in nodes}) <= mesh_max
        for node, ifname in nodes:
            index, hub = wiring.links[node, ifname], _is_server(plan[node])
            table.setdefault(node, []).extend(
                (index, ip, mac)
                for other, ip, mac in remote
                if other != node and (mesh or hub or _is_server(plan[other]))
            )
    return table


def _ip(iface: Iface) -> str:
    return iface.address.split("/")[0]


def _is_server(node: NodePlan) -> bool:
    return node.role == "server"


def is_nat(node: NodePlan | None) -> bool:
    return node is not None and node.role in ("router", "carrier")


def _addresses(rtnl: Rtnl, node: NodePlan, links: dict[tuple[str, str], int]) -> None:
    for iface in node.ifaces:
        rtnl.address(links[node.name, iface.name], iface.address)
    if node.gateway:
        rtnl.route("0.0.0.0/0", node.gateway)
    if node.gateway6:
        rtnl.route("::/0", node.gateway6)
    for dst, via in node.routes:
        rtnl.route(dst, via)


def _has_lan_bridge(node: NodePlan) -> bool:
    return node.role in ("router", "carrier") and any(i.name == "lan" for i in node.ifaces)


def _unique(ifaces: list[Iface]) -> list[Iface]:
    seen: dict[str, Iface] = {}
    for i in ifaces:
        seen.setdefault(i.name, i)
    return list(seen.values())
