"""The lab model: loading, validation errors that name field and value, the address plan (no root)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from netsim.lab.topology import TopologyError, from_dict, load_scenario, plan, standard_topology

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def test_standard_topology_nodes_and_addresses() -> None:
    topo = standard_topology("full-cone", "symmetric")
    assert topo.nodes() == ["server", "nat-a", "nat-b", "a", "b"]
    p = plan(topo)
    assert p["server"].addresses == ["198.18.0.2", "198.18.0.3"]
    assert p["nat-a"].addresses == ["198.18.1.1", "10.1.0.1"]
    assert p["a"].addresses == ["10.1.0.2"] and p["a"].gateway == "10.1.0.1"
    assert p["b"].addresses == ["10.2.0.2"]
    assert topo.site("nat-b").nat.kind == "symmetric"


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


def test_double_nat_router_routes_via_carrier() -> None:
    topo = from_dict(
        {"carrier": [{"name": "cgn"}], "site": [{"name": "r1", "hosts": ["h1"], "behind": "cgn"}]}
    )
    p = plan(topo)
    assert p["r1"].addresses[0].startswith("100.64.1.")
    assert p["r1"].gateway == "100.64.1.1"
    assert p["cgn"].addresses == ["198.18.101.1", "100.64.1.1"]


def test_open_site_is_public_and_routed_from_the_internet() -> None:
    p = plan(standard_topology("open", "full-cone"))
    assert p["a"].addresses == ["198.19.1.2"]
    assert ("198.19.1.0/24", "198.18.1.1") in p["server"].routes
    assert ("198.19.1.0/24", "198.18.1.1") in p["nat-b"].routes
    assert p["nat-a"].routes == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"site": [{"name": "r1", "nat": "fancy-cone", "hosts": ["h"]}]}, "fancy-cone"),
        ({"site": [{"name": "r1", "hosts": ["h"], "colour": "red"}]}, "site[0].colour"),
        ({"bogus": 1, "site": [{"name": "r1", "hosts": ["h"]}]}, "bogus"),
        ({"site": [{"name": "r1", "hosts": ["h"]}, {"name": "r2", "hosts": ["h"]}]}, "duplicate name 'h'"),
        ({"site": [{"name": "r1", "hosts": ["r1"]}]}, "duplicate name 'r1'"),
        ({"site": [{"name": "R1", "hosts": ["h"]}]}, "site[0].name"),
        (
            {
                "site": [
                    {"name": "r1", "hosts": ["h1"], "lan": "10.7.0.0/24"},
                    {"name": "r2", "hosts": ["h2"], "lan": "10.7.0.128/25"},
                ]
            },
            "overlaps",
        ),
        ({"site": [{"name": "r1", "hosts": ["h1"], "lan": "192.168.1.0/24"}]}, "192.168.1.0/24"),
        ({"site": [{"name": "r1", "hosts": ["h1"], "lan": "ten"}]}, "site[0].lan"),
        (
            {"site": [{"name": "r1", "hosts": ["h1"], "behind": "nope"}]},
            "site[0].behind: unknown carrier 'nope'",
        ),
        ({"site": [{"name": "r1", "hosts": []}]}, "site[0].hosts"),
        ({"site": []}, "at least one"),
        ({"site": [{"name": "r1", "hosts": ["h"]}], "ipv6": "yes"}, "ipv6"),
        ({"site": [{"name": "r1", "hosts": ["h"], "nat": {"type": "symmetric", "hairpin": "x"}}]}, "hairpin"),
    ],
)
def test_validation_names_field_and_value(data: dict, message: str) -> None:
    with pytest.raises(TopologyError) as err:
        from_dict(data)
    assert message in str(err.value)


def test_standard_topology_rejects_unknown_nat() -> None:
    with pytest.raises(TopologyError, match="nat-a.nat.*warp"):
        standard_topology("warp", "open")


def test_load_scenario_file(tmp_path: Path) -> None:
    path = tmp_path / "two.toml"
    path.write_text(
        'name = "two"\n[[site]]\nname = "r1"\nnat = { type = "full-cone", hairpin = true }\nhosts = ["h1"]\n'
    )
    topo = load_scenario(path)
    assert topo.name == "two" and topo.site("r1").nat.hairpin is True


def test_load_scenario_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="not found"):
        load_scenario(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(TopologyError, match="bad.toml"):
        load_scenario(bad)


def test_shipped_scenario_files_are_valid() -> None:
    files = sorted(SCENARIOS.glob("*.toml"))
    for path in files:
        if path.name == "expected.toml":
            continue
        load_scenario(path)


def test_rules_file_is_relative_to_the_scenario_file(tmp_path: Path) -> None:
    (tmp_path / "nat").mkdir()
    path = tmp_path / "nat" / "mine.toml"
    path.write_text(
        '[[site]]\nname = "r1"\nnat = { type = "custom", rules_file = "my.nft" }\nhosts = ["h1"]\n'
    )
    assert load_scenario(path).site("r1").nat.rules_file == str(tmp_path / "nat" / "my.nft")
