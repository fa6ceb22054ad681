"""The actions that network events perform on a running lab (netsim.lab.events schedules them).

Everything runs inside the lab's namespaces (nft, conntrack and ip through nsenter or setns), never in the
root namespace. Only the Lab's public attributes are used (namespaces, plan, topology, coturn, netns()).
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from netsim.lab import nat, netns, nftables
from netsim.lab.rtnl import Rtnl

if TYPE_CHECKING:
    from netsim.lab.lab import Lab

DOWN_TABLE = "netsim-down"
MOVE_TABLE = "netsim-move"  # a moving host's old links, cut while the kernel deletes them
NAT_TABLE = "netsim"  # the table every shipped ruleset defines (docs/nat.md)
# nft 1.0.6 has no `destroy`: declaring the table first makes the delete safe when it is already gone.
DELETE_DOWN = f"table inet {DOWN_TABLE}\ndelete table inet {DOWN_TABLE}\n"
MOVED_HOST_INDEX = 200  # a moved host takes .200, .201, ... of its new LAN (clear of the planned hosts)


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
    nftables.load(lab.netns(node), DELETE_DOWN)
    return {"interface": _uplink(lab, node)}


def next_spec(current: nat.NatSpec | None, kind: str) -> nat.NatSpec:
    """The preset `kind`, keeping the router's lifetime (and hairpin, where the preset offers it)."""
    lifetime = current.lifetime_s if current is not None else nat.DEFAULT_LIFETIME_S
    spec = nat.preset(kind, lifetime_s=lifetime)
    if current is not None and current.hairpin and spec.nat and not spec.udp_blocked:
        spec = nat.preset(kind, lifetime_s=lifetime, hairpin=True)
    return spec


def change_nat(lab: Lab, node: str, kind: str) -> dict[str, Any]:
    """Load another preset into the router, as the lab build does."""
    site = next((s for s in lab.topology.sites if s.name == node), None)
    spec = next_spec(site.nat if site is not None else None, kind)
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
    and the old path must not carry the call meanwhile. Links are changed in-process (Rtnl): no `ip`
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

    with Rtnl(host_ns) as r:
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
        with Rtnl(router_ns) as r:
            r.veth(port, 0, master=bridge, peer=new, peer_index=0, peer_netns=host_fd)
            r.commit()
    finally:
        os.close(host_fd)
    with netns.entered(host_ns):
        link = socket.if_nametoindex(new)

    with Rtnl(host_ns) as r:
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
