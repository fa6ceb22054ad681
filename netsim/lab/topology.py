"""The declarative lab model: an internet, sites behind NAT routers, optional carrier-grade NATs, servers.

Plain data, built by `standard_topology` or `from_dict` (a TOML table: the topology part of a scenario file,
which netsim.suite reads) and validated with errors that name the field and the value. Addresses are derived
from declaration order (see docs/DESIGN.md) unless a site names its own LAN.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netsim.errors import InputError
from netsim.lab.fw6 import Fw6Spec
from netsim.lab.impair import Impairment
from netsim.lab.nat import NatError, NatSpec, preset
from netsim.vocab import CLAT, DUAL, FW6_DEFAULT, IP_MODES, IPV4_ONLY, IPV6_ONLY

OPEN_LANS = ipaddress.IPv4Network("198.19.0.0/16")
PRIVATE_LANS = ipaddress.IPv4Network("10.0.0.0/8")
SERVER_ADDRESSES = ("198.18.0.2", "198.18.0.3")
RELAY_ADDRESS = "198.18.0.4"  # coturn's relay-ip: no service listens there, so it may stay an allowed peer
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,11}$")


class TopologyError(InputError):
    """A topology that cannot be built; the message names the field and the value."""


@dataclass(frozen=True)
class Site:
    """A NAT router (node `name`) with hosts on its LAN, optionally behind a carrier-grade NAT."""

    name: str
    nat: NatSpec
    hosts: tuple[str, ...]
    behind: str | None = None
    lan: str | None = None  # explicit LAN CIDR; derived from the site index when None
    impair: Impairment | None = None  # loss and rate limit at the router
    ipv6: str = IPV4_ONLY  # IP mode (vocab.IP_MODES): none is an IPv4-only site, as every site was before
    fw6: Fw6Spec | None = None  # the IPv6 firewall of a site with IPv6 (None: the mode's default, apdf)
    ipv4_hosts: tuple[str, ...] = ()  # hosts of a dual site that are IPv4-only themselves (host mode none)


def site_ipv6(site: Site) -> str:
    return site.ipv6


def site_fw6(site: Site) -> Fw6Spec | None:
    """The IPv6 firewall the site's router loads: its own, or the default for its mode (None: no IPv6)."""
    if site.ipv6 == IPV4_ONLY:
        return None
    return site.fw6 or Fw6Spec(FW6_DEFAULT)


@dataclass(frozen=True)
class Carrier:
    """A carrier-grade NAT between the internet and the sites that name it in `behind`; with `nat64` a NAT64
    (tayga, its NAT44 made from `nat`) in front of IPv6-only sites."""

    name: str
    nat: NatSpec
    nat64: bool = False


@dataclass(frozen=True)
class Topology:
    """The whole lab: sites and carriers in declaration order (which fixes their addresses), and servers."""

    name: str
    sites: tuple[Site, ...]
    carriers: tuple[Carrier, ...] = ()
    servers: tuple[str, ...] = ("server",)
    ipv6: bool = False

    def site(self, name: str) -> Site:
        for s in self.sites:
            if s.name == name:
                return s
        raise KeyError(name)

    def hosts(self) -> list[str]:
        return [h for s in self.sites for h in s.hosts]

    def site_of(self, host: str) -> Site:
        for s in self.sites:
            if host in s.hosts:
                return s
        raise KeyError(host)

    def nodes(self) -> list[str]:
        """Every node that gets a namespace (the internet segment is not a node)."""
        return [*self.servers, *(c.name for c in self.carriers), *(s.name for s in self.sites), *self.hosts()]


@dataclass(frozen=True)
class Iface:
    """One interface of a node: its name in the node's namespace, address, and the link it attaches to."""

    name: str
    address: str  # CIDR
    link: str  # "internet", "lan:<router>" or "cgn:<carrier>"


@dataclass
class NodePlan:
    name: str
    role: str  # server | carrier | router | host
    ifaces: list[Iface] = field(default_factory=list)
    gateway: str | None = None
    routes: list[tuple[str, str]] = field(default_factory=list)  # (dst CIDR, via), either family
    gateway6: str | None = None  # the IPv6 default route's next hop (nodes with IPv6 only)
    clat6: str | None = None  # a clat host's CLAT address: its IPv4 traffic leaves from it (RFC 6877)

    @property
    def addresses(self) -> list[str]:
        """The node's IPv4 addresses, in plan order (a dual-stack node's IPv6 ones are `addresses6`)."""
        return [i.address.split("/")[0] for i in self.ifaces if ":" not in i.address]

    @property
    def addresses6(self) -> list[str]:
        return [i.address.split("/")[0] for i in self.ifaces if ":" in i.address]


def standard_topology(
    nat_a: str | NatSpec,
    nat_b: str | NatSpec,
    *,
    name: str = "standard",
    impair_a: Impairment | None = None,
    impair_b: Impairment | None = None,
    ipv6_a: str = IPV4_ONLY,
    ipv6_b: str = IPV4_ONLY,
    fw6_a: Fw6Spec | None = None,
    fw6_b: Fw6Spec | None = None,
) -> Topology:
    """Hosts `a` and `b`, each behind its own NAT router (`nat-a`, `nat-b`), and `server` on the internet;
    each site IPv4-only unless given another IP mode (and optionally its IPv6 firewall). A clat side is
    behind a NAT64 carrier of its own (`nat64-a`) whose NAT44 is that side's NAT."""
    spec_a, spec_b = _as_spec(nat_a, "nat-a.nat"), _as_spec(nat_b, "nat-b.nat")
    carriers = tuple(
        Carrier(f"nat64-{side}", spec, nat64=True)
        for side, spec, mode in (("a", spec_a, ipv6_a), ("b", spec_b, ipv6_b))
        if mode == CLAT
    )
    behind = {c.name[-1]: c.name for c in carriers}
    a = Site("nat-a", spec_a, ("a",), behind.get("a"), impair=impair_a, ipv6=ipv6_a, fw6=fw6_a)
    b = Site("nat-b", spec_b, ("b",), behind.get("b"), impair=impair_b, ipv6=ipv6_b, fw6=fw6_b)
    topo = Topology(name=name, sites=(a, b), carriers=carriers)
    validate(topo)
    return topo


def _as_spec(nat: str | NatSpec, where: str) -> NatSpec:
    if isinstance(nat, NatSpec):
        return nat
    try:
        return preset(nat)
    except NatError as e:
        raise TopologyError(str(e).replace("nat.", f"{where}.", 1)) from None


def _site_lan(site: Site, index: int) -> ipaddress.IPv4Network:
    if site.lan is not None:
        return ipaddress.IPv4Network(site.lan)
    if not site.nat.nat:
        return ipaddress.IPv4Network(f"198.19.{index}.0/24")  # an open site's LAN is public
    return ipaddress.IPv4Network(f"10.{index}.0.0/24")


def plan(topo: Topology) -> dict[str, NodePlan]:
    """Interfaces, addresses and routes of every node, in build order."""
    nodes: dict[str, NodePlan] = {}
    for srv_index, srv in enumerate(topo.servers):
        node = NodePlan(srv, "server")
        if srv_index == 0:
            node.ifaces.append(Iface("eth0", f"{SERVER_ADDRESSES[0]}/16", "internet"))
            node.ifaces.append(Iface("eth0", f"{SERVER_ADDRESSES[1]}/16", "internet"))
            node.ifaces.append(Iface("eth0", f"{RELAY_ADDRESS}/16", "internet"))
        else:
            node.ifaces.append(Iface("eth0", f"198.18.0.{10 + srv_index}/16", "internet"))
        nodes[srv] = node
    for c_index, carrier in enumerate(topo.carriers, start=1):
        node = NodePlan(carrier.name, "carrier")
        node.ifaces.append(Iface("wan", f"198.18.{100 + c_index}.1/16", "internet"))
        node.ifaces.append(Iface("lan", f"100.64.{c_index}.1/24", f"cgn:{carrier.name}"))
        nodes[carrier.name] = node
    carrier_index = {c.name: i for i, c in enumerate(topo.carriers, start=1)}
    open_routes: list[tuple[str, str]] = []
    for s_index, site in enumerate(topo.sites, start=1):
        node = NodePlan(site.name, "router")
        if site.behind is None:
            node.ifaces.append(Iface("wan", f"198.18.{s_index}.1/16", "internet"))
        else:
            c = carrier_index[site.behind]
            node.ifaces.append(Iface("wan", f"100.64.{c}.{1 + s_index}/24", f"cgn:{site.behind}"))
            node.gateway = f"100.64.{c}.1"
        lan = _site_lan(site, s_index)
        hosts_ips = list(lan.hosts())
        node.ifaces.append(Iface("lan", f"{hosts_ips[0]}/{lan.prefixlen}", f"lan:{site.name}"))
        nodes[site.name] = node
        if not site.nat.nat and site.behind is None:
            open_routes.append((str(lan), node.addresses[0]))
        for h_index, host in enumerate(site.hosts, start=1):
            hnode = NodePlan(host, "host", gateway=str(hosts_ips[0]))
            hnode.ifaces.append(Iface("eth0", f"{hosts_ips[h_index]}/{lan.prefixlen}", f"lan:{site.name}"))
            nodes[host] = hnode
    # Open sites have public LANs: every internet node routes them via the site's router.
    for node in nodes.values():
        if any(i.link == "internet" for i in node.ifaces):
            node.routes.extend(r for r in open_routes if r[1] not in node.addresses)
    from netsim.lab import plan6  # the IPv6 half plans on top of this one (and imports this module)

    plan6.add(topo, nodes)
    return nodes


def segments(plan: dict[str, NodePlan]) -> dict[str, list[tuple[str, Iface]]]:
    """The lab's L2 segments: link name ("internet", "lan:<router>", "cgn:<carrier>") -> (node, interface)
    of every address on it, in plan order (a node with several addresses on one link has several)."""
    found: dict[str, list[tuple[str, Iface]]] = {}
    for node in plan.values():
        for iface in node.ifaces:
            found.setdefault(iface.link, []).append((node.name, iface))
    return found


# ---- loading and validation -------------------------------------------------------------------------------


def from_dict(
    data: dict[str, Any], *, default_name: str = "scenario", base_dir: Path | None = None
) -> Topology:
    """A validated topology from a TOML table (`name`, `ipv6`, `[[site]]`, `[[carrier]]`, `[[server]]`);
    the reading is netsim.lab.topology_file's."""
    from netsim.lab import topology_file  # it builds this module's types

    return topology_file.from_dict(data, default_name=default_name, base_dir=base_dir)


def validate(topo: Topology) -> None:
    """Check names, references and subnets; raise TopologyError naming the field and value."""
    if not topo.sites:
        raise TopologyError("site: a topology needs at least one [[site]]")
    seen: dict[str, str] = {}
    fields = [(f"server[{i}].name", n) for i, n in enumerate(topo.servers)]
    fields += [(f"carrier[{i}].name", c.name) for i, c in enumerate(topo.carriers)]
    for i, s in enumerate(topo.sites):
        fields.append((f"site[{i}].name", s.name))
        fields += [(f"site[{i}].hosts[{j}]", h) for j, h in enumerate(s.hosts)]
    for where, name in fields:
        if not NAME_RE.match(name):
            raise TopologyError(f"{where}: bad node name {name!r} (lower-case letter, then [a-z0-9-], <= 12)")
        if name in seen:
            raise TopologyError(f"{where}: duplicate name {name!r} (also {seen[name]})")
        seen[name] = where
    carrier_names = {c.name for c in topo.carriers}
    for i, s in enumerate(topo.sites):
        if s.behind is not None and s.behind not in carrier_names:
            raise TopologyError(f"site[{i}].behind: unknown carrier {s.behind!r}")
        if not s.hosts:
            raise TopologyError(f"site[{i}].hosts: a site needs at least one host")
        _check_ip_mode(s, f"site[{i}]")
        nat64 = next((c.nat64 for c in topo.carriers if c.name == s.behind), False)
        if (s.ipv6 == CLAT) != nat64:
            need = "its sites are clat" if nat64 else "a clat site is behind a NAT64 carrier (nat64 = true)"
            raise TopologyError(f"site[{i}].ipv6: {s.ipv6!r}, but {need}")
    for i, c in enumerate(topo.carriers):
        if c.nat64 and not c.nat.nat:
            raise TopologyError(f"carrier[{i}].nat: a NAT64 carrier's NAT44 cannot be 'open'")
    if len(topo.sites) > 99 or len(topo.carriers) > 99:
        raise TopologyError("site: at most 99 sites and 99 carriers")
    _check_lans(topo)


def _check_ip_mode(site: Site, where: str) -> None:
    if site.ipv6 not in IP_MODES:
        raise TopologyError(
            f"{where}.ipv6: unknown IP mode {site.ipv6!r} (choose from {', '.join(IP_MODES)})"
        )
    if site.ipv6 == IPV6_ONLY:
        raise TopologyError(
            f"{where}.ipv6: 'only' needs lab names with DNS64 for its servers, which netsim cannot build "
            "yet (use clat: IPv6-only with 464XLAT)"
        )
    for j, host in enumerate(site.ipv4_hosts):
        if host not in site.hosts:
            raise TopologyError(f"{where}.ipv4_hosts[{j}]: {host!r} is not a host of this site")
        if site.ipv6 != DUAL:
            raise TopologyError(
                f'{where}.ipv4_hosts[{j}]: IPv4-only hosts are for dual sites (ipv6 = "dual")'
            )
    if site.fw6 is not None and site.ipv6 == IPV4_ONLY:
        raise TopologyError(f'{where}.fw6: an IPv6 firewall on an IPv4-only site (set ipv6 = "dual")')


def _check_lans(topo: Topology) -> None:
    lans: list[tuple[str, ipaddress.IPv4Network]] = []
    for i, s in enumerate(topo.sites, start=1):
        where = f"site[{i - 1}].lan"
        try:
            lan = _site_lan(s, i)
        except ValueError:
            raise TopologyError(f"{where}: not an IPv4 network: {s.lan!r}") from None
        allowed = (PRIVATE_LANS, OPEN_LANS) if s.nat.nat else (OPEN_LANS,)
        if not any(lan.subnet_of(r) for r in allowed):
            ranges = " or ".join(str(r) for r in allowed)
            raise TopologyError(f"{where}: {lan} is outside the lab's LAN ranges ({ranges})")
        if lan.num_addresses < 4 + len(s.hosts) or lan.prefixlen < 16:
            raise TopologyError(f"{where}: {lan} does not fit {len(s.hosts)} hosts (use a /16 to /29)")
        for other_where, other in lans:
            if lan.overlaps(other):
                raise TopologyError(f"{where}: {lan} overlaps {other_where} ({other})")
        lans.append((where, lan))
