"""A lab's wiring, planned before anything is made: link indexes, MAC addresses and static neighbour entries
(no root)."""

from __future__ import annotations

from netsim.lab.nat import preset
from netsim.lab.topology import Site, Topology, plan, standard_topology
from netsim.lab.wiring import INET, MESH_MAX, Port, Wiring, neighbours, port_of


def _sites(count: int) -> Topology:
    return Topology(
        "many", tuple(Site(f"r{i}", preset("full-cone"), (f"h{i}",)) for i in range(1, count + 1))
    )


def test_every_addressed_interface_gets_its_own_locally_administered_mac() -> None:
    wiring = Wiring.of(plan(_sites(3)))
    keys = [key for key in wiring.links if key[0] != INET]
    assert sorted(wiring.macs) == sorted(keys)
    assert len(set(wiring.macs.values())) == len(keys)
    assert all(len(mac) == 6 and mac[0] & 0b11 == 0b10 for mac in wiring.macs.values())  # local, unicast


def test_a_small_lab_resolves_every_neighbour_on_each_segment() -> None:
    nodes = plan(standard_topology("full-cone", "symmetric"))
    wiring = Wiring.of(nodes)
    table = neighbours(nodes, wiring)

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
    count = MESH_MAX  # with the server: one more node than a full mesh takes
    nodes = plan(_sites(count))
    table = neighbours(nodes, Wiring.of(nodes))
    assert {ip for _, ip, _ in table["r1"]} == {"198.18.0.2", "198.18.0.3", "198.18.0.4", "10.1.0.2"}
    assert len(table["server"]) == count
    # linear in sites: 3 server addresses per router, one entry per router at the server, two per LAN
    assert sum(len(v) for v in table.values()) == count * (3 + 1 + 2)
    smaller = plan(_sites(count - 1))
    meshed = neighbours(smaller, Wiring.of(smaller))
    assert len(meshed["r1"]) == 3 + (count - 2) + 1  # the server, every other router, its host


def test_interfaces_plug_into_the_internet_or_their_router_s_bridge() -> None:
    nodes = plan(standard_topology("full-cone", "symmetric"))
    assert port_of(nodes["nat-a"].ifaces[0]) == Port(INET, INET)
    assert port_of(nodes["a"].ifaces[0]) == Port("nat-a", "lan")
    wiring = Wiring.of(nodes)
    assert wiring.bridges["nat-a"] == [("lan", wiring.links["nat-a", "lan"])]
    assert {v.port_node for v in wiring.veths["a"]} == {"nat-a"}
