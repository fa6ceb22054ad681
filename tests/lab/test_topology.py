"""The lab model: TOML tables, validation errors that name field and value, the address plan (no root)."""

from __future__ import annotations

import ipaddress
import re
import tomllib
from pathlib import Path

import pytest

from netsim.lab import nat
from netsim.lab.impair import Impairment
from netsim.lab.topology import (
    Carrier,
    Iface,
    NodePlan,
    Site,
    Topology,
    TopologyError,
    from_dict,
    plan,
    segments,
    standard_topology,
)

CHOICES = "open, full-cone, restricted-cone, port-restricted-cone, symmetric, udp-blocked, custom"


def test_standard_topology_is_two_sites_and_a_server() -> None:
    topo = standard_topology("full-cone", "symmetric")
    assert topo == Topology(
        name="standard",
        sites=(
            Site("nat-a", nat.preset("full-cone"), ("a",)),
            Site("nat-b", nat.preset("symmetric"), ("b",)),
        ),
    )
    assert topo.nodes() == ["server", "nat-a", "nat-b", "a", "b"]


def test_standard_plan() -> None:
    assert plan(standard_topology("full-cone", "symmetric")) == {
        "server": NodePlan(
            "server",
            "server",
            [
                Iface("eth0", "198.18.0.2/16", "internet"),
                Iface("eth0", "198.18.0.3/16", "internet"),
                Iface("eth0", "198.18.0.4/16", "internet"),  # coturn's relay address
            ],
        ),
        "nat-a": NodePlan(
            "nat-a",
            "router",
            [Iface("wan", "198.18.1.1/16", "internet"), Iface("lan", "10.1.0.1/24", "lan:nat-a")],
        ),
        "a": NodePlan("a", "host", [Iface("eth0", "10.1.0.2/24", "lan:nat-a")], gateway="10.1.0.1"),
        "nat-b": NodePlan(
            "nat-b",
            "router",
            [Iface("wan", "198.18.2.1/16", "internet"), Iface("lan", "10.2.0.1/24", "lan:nat-b")],
        ),
        "b": NodePlan("b", "host", [Iface("eth0", "10.2.0.2/24", "lan:nat-b")], gateway="10.2.0.1"),
    }


def test_double_nat_plan_routes_the_site_via_its_carrier() -> None:
    topo = from_dict(
        {"carrier": [{"name": "cgn"}], "site": [{"name": "r1", "hosts": ["h1"], "behind": "cgn"}]}
    )
    p = plan(topo)
    assert p["cgn"] == NodePlan(
        "cgn",
        "carrier",
        [Iface("wan", "198.18.101.1/16", "internet"), Iface("lan", "100.64.1.1/24", "cgn:cgn")],
    )
    assert p["r1"] == NodePlan(
        "r1",
        "router",
        [Iface("wan", "100.64.1.2/24", "cgn:cgn"), Iface("lan", "10.1.0.1/24", "lan:r1")],
        gateway="100.64.1.1",
    )
    assert p["h1"] == NodePlan("h1", "host", [Iface("eth0", "10.1.0.2/24", "lan:r1")], gateway="10.1.0.1")
    assert topo.carriers == (Carrier("cgn", nat.preset("symmetric")),)  # a carrier's default NAT


def test_segments_list_every_address_on_each_link() -> None:
    topo = from_dict(
        {
            "carrier": [{"name": "cgn", "nat": "symmetric"}],
            "site": [
                {"name": "r1", "nat": "full-cone", "hosts": ["h1", "h2"]},
                {"name": "r2", "nat": "full-cone", "hosts": ["h3"], "behind": "cgn"},
            ],
        }
    )
    found = {
        link: [(node, iface.address) for node, iface in members]
        for link, members in segments(plan(topo)).items()
    }
    assert found == {
        "internet": [
            ("server", "198.18.0.2/16"),
            ("server", "198.18.0.3/16"),
            ("server", "198.18.0.4/16"),
            ("cgn", "198.18.101.1/16"),
            ("r1", "198.18.1.1/16"),
        ],
        "cgn:cgn": [("cgn", "100.64.1.1/24"), ("r2", "100.64.1.3/24")],
        "lan:r1": [("r1", "10.1.0.1/24"), ("h1", "10.1.0.2/24"), ("h2", "10.1.0.3/24")],
        "lan:r2": [("r2", "10.2.0.1/24"), ("h3", "10.2.0.2/24")],
    }


def test_open_site_is_public_and_routed_from_the_internet() -> None:
    p = plan(standard_topology("open", "full-cone"))
    assert p["a"].addresses == ["198.19.1.2"]
    route = ("198.19.1.0/24", "198.18.1.1")
    assert (p["server"].routes, p["nat-b"].routes, p["nat-a"].routes) == ([route], [route], [])


def test_every_address_stays_in_lab_ranges() -> None:
    ranges = [ipaddress.ip_network(r) for r in ("198.18.0.0/15", "100.64.0.0/10", "10.0.0.0/8")]
    topo = from_dict(
        {
            "carrier": [{"name": "cgn", "nat": "symmetric"}],
            "site": [
                {"name": "r1", "nat": "full-cone", "hosts": ["h1", "h2"], "behind": "cgn"},
                {"name": "r2", "nat": "open", "hosts": ["h3"]},
            ],
        }
    )
    for node in plan(topo).values():
        for address in node.addresses:
            assert any(ipaddress.ip_address(address) in r for r in ranges), (node.name, address)


def test_a_toml_topology_reads_every_key(tmp_path: Path) -> None:
    text = """
name = "two"
ipv6 = false

[[carrier]]
name = "cgn"
nat = "port-restricted-cone"

[[site]]
name = "r1"
nat = { type = "full-cone", hairpin = true, lifetime_s = 5 }
hosts = ["h1", "h2"]
behind = "cgn"
lan = "10.9.0.0/24"
impair = { loss_pct = 3, rate_kbit = 1000 }

[[site]]
name = "r2"
hosts = ["h3"]

[[server]]
name = "srv"
"""
    assert from_dict(tomllib.loads(text)) == Topology(
        name="two",
        sites=(
            Site(
                "r1",
                nat.preset("full-cone", hairpin=True, lifetime_s=5),
                ("h1", "h2"),
                behind="cgn",
                lan="10.9.0.0/24",
                impair=Impairment(loss_pct=3, rate_kbit=1000),
            ),
            Site("r2", nat.preset("port-restricted-cone"), ("h3",)),  # a site's default NAT
        ),
        carriers=(Carrier("cgn", nat.preset("port-restricted-cone")),),
        servers=("srv",),
    )


def test_the_default_name_names_a_table_without_one() -> None:
    data = tomllib.loads('[[site]]\nname = "r1"\nhosts = ["h1"]\n')
    assert from_dict(data, default_name="from-file").name == "from-file"
    assert from_dict(data).name == "scenario"


def test_a_relative_rules_file_is_resolved_against_base_dir(tmp_path: Path) -> None:
    data = tomllib.loads(
        '[[site]]\nname = "r1"\nnat = { type = "custom", rules_file = "my.nft" }\nhosts = ["h1"]\n'
    )
    assert from_dict(data, base_dir=tmp_path / "nat").site("r1").nat.rules_file == str(
        tmp_path / "nat" / "my.nft"
    )
    assert from_dict(data).site("r1").nat.rules_file == "my.nft"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"site": [{"name": "r1", "nat": "fancy-cone", "hosts": ["h"]}]},
            f"site[0].nat.type: unknown NAT type 'fancy-cone' (choose from {CHOICES})",
        ),
        (
            {"site": [{"name": "r1", "hosts": ["h"], "nat": {"type": "symmetric", "hairpin": "x"}}]},
            "site[0].nat.hairpin: expected true or false, got 'x'",
        ),
        (
            {"site": [{"name": "r1", "hosts": ["h"], "nat": 3}]},
            "site[0].nat: expected a NAT type name or a table, got 3",
        ),
        (
            {"site": [{"name": "r1", "hosts": ["h"], "colour": "red"}]},
            "site[0].colour: unknown key (allowed: behind, fw6, hosts, impair, ipv4_hosts, ipv6, lan, name, "
            "nat)",
        ),
        (
            {"bogus": 1, "site": [{"name": "r1", "hosts": ["h"]}]},
            "bogus: unknown key (allowed: carrier, ipv6, name, server, site)",
        ),
        (
            {"session": {"group": "lan"}, "site": [{"name": "r1", "hosts": ["h"]}]},
            "session: unknown key (allowed: carrier, ipv6, name, server, site)",
        ),
        (
            {"site": [{"name": "r1", "hosts": ["h"]}, {"name": "r2", "hosts": ["h"]}]},
            "site[1].hosts[0]: duplicate name 'h' (also site[0].hosts[0])",
        ),
        (
            {"site": [{"name": "r1", "hosts": ["r1"]}]},
            "site[0].hosts[0]: duplicate name 'r1' (also site[0].name)",
        ),
        (
            {"site": [{"name": "R1", "hosts": ["h"]}]},
            "site[0].name: bad node name 'R1' (lower-case letter, then [a-z0-9-], <= 12)",
        ),
        ({"site": [{"hosts": ["h"]}]}, "site[0].name: missing"),
        ({"site": [{"name": 7, "hosts": ["h"]}]}, "site[0].name: expected a string, got 7"),
        (
            {
                "site": [
                    {"name": "r1", "hosts": ["h1"], "lan": "10.7.0.0/24"},
                    {"name": "r2", "hosts": ["h2"], "lan": "10.7.0.128/25"},
                ]
            },
            "site[1].lan: 10.7.0.128/25 overlaps site[0].lan (10.7.0.0/24)",
        ),
        (
            {"site": [{"name": "r1", "hosts": ["h1"], "lan": "192.168.1.0/24"}]},
            "site[0].lan: 192.168.1.0/24 is outside the lab's LAN ranges (10.0.0.0/8 or 198.19.0.0/16)",
        ),
        (
            {"site": [{"name": "r1", "hosts": ["h1"], "lan": "ten"}]},
            "site[0].lan: not an IPv4 network: 'ten'",
        ),
        (
            {"site": [{"name": "r1", "hosts": ["h1", "h2"], "lan": "10.7.0.0/30"}]},
            "site[0].lan: 10.7.0.0/30 does not fit 2 hosts (use a /16 to /29)",
        ),
        (
            {"site": [{"name": "r1", "hosts": ["h1"], "behind": "nope"}]},
            "site[0].behind: unknown carrier 'nope'",
        ),
        ({"site": [{"name": "r1", "hosts": []}]}, "site[0].hosts: a site needs at least one host"),
        ({"site": [{"name": "r1", "hosts": "h1"}]}, "site[0].hosts: expected a list of host names, got 'h1'"),
        ({"site": []}, "site: a topology needs at least one [[site]]"),
        ({"site": {"name": "r1"}}, "site: expected an array of tables ([[site]]), got {'name': 'r1'}"),
        (
            {"site": [{"name": "r1", "hosts": ["h"]}], "ipv6": "yes"},
            "ipv6: expected true or false, got 'yes'",
        ),
        (
            {"carrier": [{"name": "cgn", "nat": "open"}], "site": [{"name": "r1", "hosts": ["h"]}]},
            "carrier[0].nat: a carrier-grade NAT cannot be 'open'",
        ),
        (
            {"site": [{"name": "r1", "hosts": ["h"], "impair": 3}]},
            "site[0].impair: expected a table like {loss_pct = 2, rate_kbit = 1000}, got 3",
        ),
        (
            {"site": [{"name": "r1", "hosts": ["h"], "impair": {"jitter_ms": 3}}]},
            "site[0].impair.jitter_ms: expected a number from 0 to delay_ms (0), got 3",
        ),
        (
            {"site": [{"name": "r1", "hosts": ["h"], "impair": {"delay": 3}}]},
            "site[0].impair.delay: unknown key (choose from loss_pct, rate_kbit, delay_ms, jitter_ms)",
        ),
        (
            {"server": [{"name": "s", "ip": "1"}], "site": [{"name": "r1", "hosts": ["h"]}]},
            "server[0].ip: unknown key",
        ),
    ],
)
def test_validation_names_field_and_value(data: dict, message: str) -> None:
    with pytest.raises(TopologyError, match=f"^{re.escape(message)}"):
        from_dict(data)


def test_standard_topology_rejects_unknown_nat() -> None:
    with pytest.raises(
        TopologyError, match=rf"^nat-a\.nat\.type: unknown NAT type 'warp' \(choose from {CHOICES}\)$"
    ):
        standard_topology("warp", "open")
