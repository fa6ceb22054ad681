"""The lab's wiring plan: link indexes, MAC addresses and static neighbour entries, before anything is made
(no root)."""

from __future__ import annotations

from netsim.lab import lab
from netsim.lab.lab import INET, _neighbours, _Port, _Wiring
from netsim.lab.nat import preset
from netsim.lab.topology import Iface, Site, Topology, plan, standard_topology


def _port(iface: Iface) -> _Port:
    return _Port(INET, INET) if iface.link == "internet" else _Port(iface.link.split(":", 1)[1], "lan")


def _sites(count: int) -> Topology:
    return Topology(
        "many", tuple(Site(f"r{i}", preset("full-cone"), (f"h{i}",)) for i in range(1, count + 1))
    )


def test_every_addressed_interface_gets_its_own_locally_administered_mac() -> None:
    wiring = _Wiring.of(plan(_sites(3)), _port)
    keys = [key for key in wiring.links if key[0] != INET]
    assert sorted(wiring.macs) == sorted(keys)
    assert len(set(wiring.macs.values())) == len(keys)
    assert all(len(mac) == 6 and mac[0] & 0b11 == 0b10 for mac in wiring.macs.values())  # local, unicast


def test_a_small_lab_resolves_every_neighbour_on_each_segment() -> None:
    nodes = plan(standard_topology("full-cone", "symmetric"))
    wiring = _Wiring.of(nodes, _port)
    table = _neighbours(nodes, wiring)

    def entries(node: str) -> set[tuple[str, str, str]]:
        names = {index: name for (owner, name), index in wiring.links.items() if owner == node}
        by_mac = {mac: key for key, mac in wiring.macs.items()}
        return {(names[index], ip, "/".join(by_mac[mac])) for index, ip, mac in table[node]}

    server_eth0 = "server/eth0"
    assert entries("nat-a") == {
        ("wan", "198.18.0.2", server_eth0),
        ("wan", "198.18.0.3", server_eth0),
        ("wan", "198.18.0.4", server_eth0),
        ("wan", "198.18.2.1", "nat-b/wan"),
        ("lan", "10.1.0.2", "a/eth0"),
    }
    assert entries("a") == {("eth0", "10.1.0.1", "nat-a/lan")}  # the LAN bridge's own MAC
    assert entries("server") == {("eth0", "198.18.1.1", "nat-a/wan"), ("eth0", "198.18.2.1", "nat-b/wan")}
    assert sum(len(v) for v in table.values()) == 5 + 5 + 2 + 1 + 1


def test_beyond_the_mesh_size_only_servers_are_resolved_on_the_internet() -> None:
    count = lab.MESH_MAX  # with the server: one more node than a full mesh takes
    nodes = plan(_sites(count))
    table = _neighbours(nodes, _Wiring.of(nodes, _port))
    assert {ip for _, ip, _ in table["r1"]} == {"198.18.0.2", "198.18.0.3", "198.18.0.4", "10.1.0.2"}
    assert len(table["server"]) == count
    # linear in sites: 3 server addresses per router, one entry per router at the server, two per LAN
    assert sum(len(v) for v in table.values()) == count * (3 + 1 + 2)
    smaller = plan(_sites(count - 1))
    meshed = _neighbours(smaller, _Wiring.of(smaller, _port))
    assert len(meshed["r1"]) == 3 + (count - 2) + 1  # the server, every other router, its host
