"""The IPv6 half of a dual-stack lab's plan, from the documentation prefix 2001:db8::/32 (RFC 3849).

Only nodes that need IPv6 get it: the sites whose IP mode is not `none` (their router and hosts), and then the
servers and carriers. There is no translation: every site's LAN is a global /64, and the nodes on the internet
segment route each one via its router (or its carrier). A lab with no IPv6 site plans nothing here.

- internet 2001:db8:ffff::/64: servers ::2, ::3, ::4 (coturn's relay), more servers ::10+i; site N's router
  ::1:N; carrier N ::ca:N
- site N's LAN 2001:db8:N::/64: router ::1, hosts ::2, ::3, ...
- carrier N's access link 2001:db8:fcNN::/64: carrier ::1, the routers of its sites ::(1 + site index)
"""

from __future__ import annotations

import ipaddress

from netsim.lab.topology import Iface, NodePlan, Site, Topology, site_ipv6
from netsim.vocab import CLAT, IPV4_ONLY

INTERNET6 = ipaddress.IPv6Network("2001:db8:ffff::/64")
SERVER6 = ("2001:db8:ffff::2", "2001:db8:ffff::3")
RELAY6 = "2001:db8:ffff::4"
NAT64_PREFIX = "2001:db8:64::/96"  # network-specific (RFC 6052): tayga refuses 64:ff9b::/96 for 198.18/15
CLAT_HOST_OFFSET = 0x100  # a clat host's CLAT address: ::100+N of its LAN
DEFAULT6 = "::/0"


def _ipv6_only(site: Site, nodes: dict[str, NodePlan], lan: ipaddress.IPv6Network) -> None:
    """An IPv6-only site: no IPv4 on its router or hosts; each clat host gets a CLAT address of its own on
    the LAN (::100+N), routed to it by the router, that its CLAT translates its IPv4 traffic from."""
    for name in (site.name, *site.hosts):
        node = nodes[name]
        node.ifaces = [i for i in node.ifaces if ":" in i.address]
        node.gateway = None
    for h_index, host in enumerate(site.hosts, start=1):
        nodes[host].clat6 = str(lan[CLAT_HOST_OFFSET + h_index])
        nodes[site.name].routes.append((f"{nodes[host].clat6}/128", nodes[host].addresses6[0]))


def site_lan6(index: int) -> ipaddress.IPv6Network:
    return ipaddress.IPv6Network(f"2001:db8:{index:x}::/64")


def _access6(carrier_index: int) -> ipaddress.IPv6Network:
    return ipaddress.IPv6Network(f"2001:db8:fc{carrier_index:02x}::/64")


def uses_ipv6(topo: Topology) -> bool:
    return any(site_ipv6(s) != IPV4_ONLY for s in topo.sites)


def add(topo: Topology, nodes: dict[str, NodePlan]) -> None:
    """Add IPv6 addresses, gateways and routes to the plan's nodes (nothing when no site has IPv6)."""
    if not uses_ipv6(topo):
        return
    inet = INTERNET6.prefixlen
    for i, srv in enumerate(topo.servers):
        own = (*SERVER6, RELAY6) if i == 0 else (f"2001:db8:ffff::{10 + i}",)
        nodes[srv].ifaces += [Iface("eth0", f"{a}/{inet}", "internet") for a in own]
    carrier_index = {c.name: i for i, c in enumerate(topo.carriers, start=1)}
    for c in topo.carriers:
        ci = carrier_index[c.name]
        nodes[c.name].ifaces.append(Iface("wan", f"2001:db8:ffff::ca:{ci:x}/{inet}", "internet"))
        nodes[c.name].ifaces.append(Iface("lan", f"{_access6(ci)[1]}/64", f"cgn:{c.name}"))
    lans: list[tuple[str, str, str | None]] = []  # (LAN /64, next hop from the internet, carrier or None)
    for s_index, site in enumerate(topo.sites, start=1):
        if site_ipv6(site) == IPV4_ONLY:
            continue
        router, lan = nodes[site.name], site_lan6(s_index)
        if site.behind is None:
            wan = f"2001:db8:ffff::1:{s_index:x}"
            router.ifaces.insert(1, Iface("wan", f"{wan}/{inet}", "internet"))
            lans.append((str(lan), wan, None))
        else:
            access = _access6(carrier_index[site.behind])
            wan = str(access[1 + s_index])
            router.ifaces.insert(1, Iface("wan", f"{wan}/64", f"cgn:{site.behind}"))
            router.gateway6 = str(access[1])
            nodes[site.behind].routes.append((str(lan), wan))
            carrier_wan = nodes[site.behind].addresses6[0]
            lans.append((str(lan), carrier_wan, site.behind))
        router.ifaces.append(Iface("lan", f"{lan[1]}/64", f"lan:{site.name}"))
        for h_index, host in enumerate(site.hosts, start=1):
            if host in site.ipv4_hosts:  # an IPv4-only device on a dual-stack LAN
                continue
            nodes[host].ifaces.append(Iface("eth0", f"{lan[1 + h_index]}/64", f"lan:{site.name}"))
            nodes[host].gateway6 = str(lan[1])
        if site_ipv6(site) == CLAT:
            _ipv6_only(site, nodes, lan)
    # Every IPv6 node on the internet segment routes each site's LAN via its router or carrier.
    # (A NAT64 prefix is routed by its carrier only: its clat sites' default route leads there.)
    for node in nodes.values():
        if any(i.link == "internet" and ":" in i.address for i in node.ifaces):
            node.routes += [(lan, via) for lan, via, _ in lans if via not in node.addresses6]
