"""The IPv6 half of a lab's plan (no root): addresses from 2001:db8::/32, routes; nothing for IPv4 labs."""

from __future__ import annotations

import pytest

from netsim.lab.plan6 import uses_ipv6
from netsim.lab.topology import TopologyError, from_dict, plan, standard_topology


def test_an_ipv4_lab_plans_no_ipv6_at_all() -> None:
    topo = standard_topology("symmetric", "full-cone")
    assert not uses_ipv6(topo)
    nodes = plan(topo)
    assert all(not n.addresses6 and n.gateway6 is None for n in nodes.values())
    assert all(":" not in dst for n in nodes.values() for dst, _ in n.routes)


def test_a_dual_site_gets_a_lan_prefix_routes_and_gateways() -> None:
    nodes = plan(standard_topology("symmetric", "symmetric", ipv6_a="dual", ipv6_b="dual"))
    assert nodes["server"].addresses6 == ["2001:db8:ffff::2", "2001:db8:ffff::3", "2001:db8:ffff::4"]
    assert nodes["nat-a"].addresses6 == ["2001:db8:ffff::1:1", "2001:db8:1::1"]
    assert nodes["a"].addresses6 == ["2001:db8:1::2"] and nodes["a"].gateway6 == "2001:db8:1::1"
    # IPv4 addresses keep their places: index 0 is still the WAN / first service address
    assert nodes["nat-a"].addresses == ["198.18.1.1", "10.1.0.1"]
    assert nodes["server"].addresses == ["198.18.0.2", "198.18.0.3", "198.18.0.4"]
    assert ("2001:db8:2::/64", "2001:db8:ffff::1:2") in nodes["nat-a"].routes
    assert ("2001:db8:1::/64", "2001:db8:ffff::1:1") not in nodes["nat-a"].routes
    assert {("2001:db8:1::/64", "2001:db8:ffff::1:1"), ("2001:db8:2::/64", "2001:db8:ffff::1:2")} <= set(
        nodes["server"].routes
    )


def test_an_ipv4_only_site_beside_a_dual_one_stays_ipv4_only() -> None:
    nodes = plan(standard_topology("symmetric", "symmetric", ipv6_a="dual"))
    assert nodes["b"].addresses6 == [] and nodes["nat-b"].addresses6 == []
    assert [r for r in nodes["server"].routes if ":" in r[0]] == [("2001:db8:1::/64", "2001:db8:ffff::1:1")]


def test_a_dual_site_behind_a_carrier_is_routed_through_it() -> None:
    topo = from_dict(
        {
            "carrier": [{"name": "cgn", "nat": "symmetric"}],
            "site": [{"name": "r1", "hosts": ["h1"], "behind": "cgn", "ipv6": "dual"}],
        }
    )
    nodes = plan(topo)
    assert nodes["cgn"].addresses6 == ["2001:db8:ffff::ca:1", "2001:db8:fc01::1"]
    assert nodes["r1"].addresses6 == ["2001:db8:fc01::2", "2001:db8:1::1"]
    assert nodes["r1"].gateway6 == "2001:db8:fc01::1"
    assert ("2001:db8:1::/64", "2001:db8:fc01::2") in nodes["cgn"].routes
    assert ("2001:db8:1::/64", "2001:db8:ffff::ca:1") in nodes["server"].routes


def test_a_clat_site_is_ipv6_only_behind_its_nat64_carrier() -> None:
    nodes = plan(standard_topology("symmetric", "full-cone", ipv6_a="clat"))
    assert nodes["nat64-a"].addresses == ["198.18.101.1", "100.64.1.1"]  # NAT44 from its WAN address
    assert (nodes["nat-a"].addresses, nodes["a"].addresses) == ([], [])
    assert nodes["a"].addresses6 == ["2001:db8:1::2"] and nodes["a"].clat6 == "2001:db8:1::101"
    assert ("2001:db8:1::101/128", "2001:db8:1::2") in nodes["nat-a"].routes  # the CLAT address
    assert nodes["nat-a"].gateway6 == "2001:db8:fc01::1" and nodes["nat-a"].gateway is None
    assert nodes["b"].addresses6 == []


def test_a_nat64_carriers_sites_must_be_clat() -> None:
    carrier = {"name": "mob", "nat": "symmetric", "nat64": True}
    with pytest.raises(TopologyError, match=r"^site\[0\]\.ipv6: 'dual', but its sites are clat"):
        from_dict(
            {"carrier": [carrier], "site": [{"name": "r1", "hosts": ["h1"], "behind": "mob", "ipv6": "dual"}]}
        )


@pytest.mark.parametrize(
    ("site", "message"),
    [
        ({"ipv6": "both"}, "site[0].ipv6: unknown IP mode 'both' (choose from none, dual, only, clat)"),
        ({"fw6": "apdf"}, "site[0].fw6: an IPv6 firewall on an IPv4-only site"),
        ({"ipv6": "dual", "fw6": "strict"}, "site[0].fw6: unknown IPv6 firewall 'strict'"),
        ({"ipv6": "only"}, "site[0].ipv6: 'only' needs lab names with DNS64"),
        ({"ipv6": "clat"}, "site[0].ipv6: 'clat', but a clat site is behind a NAT64 carrier (nat64 = true)"),
    ],
)
def test_bad_ip_modes_and_firewalls_name_the_field(site: dict[str, str], message: str) -> None:
    with pytest.raises(TopologyError) as caught:
        from_dict({"site": [{"name": "r1", "hosts": ["h1"], **site}]})
    assert str(caught.value).startswith(message)


def test_a_host_of_a_dual_site_may_be_ipv4_only() -> None:
    site = {"name": "r1", "hosts": ["h1", "h2"], "ipv6": "dual", "ipv4_hosts": ["h2"]}
    nodes = plan(from_dict({"site": [site]}))
    assert nodes["h1"].addresses6 == ["2001:db8:1::2"]
    assert (nodes["h2"].addresses6, nodes["h2"].gateway6, nodes["h2"].addresses) == ([], None, ["10.1.0.3"])
    for bad, message in (
        ({**site, "ipv4_hosts": ["h9"]}, "site[0].ipv4_hosts[0]: 'h9' is not a host of this site"),
        ({**site, "ipv6": "none"}, "site[0].ipv4_hosts[0]: IPv4-only hosts are for dual sites"),
    ):
        with pytest.raises(TopologyError) as caught:
            from_dict({"site": [bad]})
        assert str(caught.value).startswith(message)
