"""NAT behaviours measured in real labs: every preset classifies as named (own probe and natdiscovery agree),
and every knob changes what it claims. Root only, except the natdiscovery parser."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from netsim.lab import nat, netns, probe
from netsim.lab.lab import Lab
from netsim.lab.nat import NatSpec
from netsim.lab.topology import Site, Topology, standard_topology
from netsim.vocab import ADM, APDM, EIM

NATDISCOVERY_SAMPLE = """
-= Mapping Behavior Discovery =-
0: : IPv4. UDP reflexive addr: 198.18.1.1:60105
========================================
NAT with Endpoint Independent Mapping!
========================================

-= Filtering Behavior Discovery =-
STUN receive timeout..
STUN receive timeout..
========================================
NAT with Address and Port Dependent Filtering!
========================================
"""


def test_parse_natdiscovery() -> None:
    assert probe.parse_natdiscovery(NATDISCOVERY_SAMPLE) == {"mapping": EIM, "filtering": APDM}
    adf = "NAT with Address Dependent Mapping!\nNAT with Address Dependent Filtering!\n"
    assert probe.parse_natdiscovery(adf) == {"mapping": ADM, "filtering": ADM}
    blocked = "-= Mapping Behavior Discovery =-\nSTUN receive timeout..\n"
    assert probe.parse_natdiscovery(blocked) == {"mapping": None, "filtering": None}


def test_lifetime_delays_are_sorted_and_bounded() -> None:
    delays = probe.lifetime_delays(30.0)
    assert delays == sorted(delays) and delays[0] == 0.5 and delays[-1] == 30.0
    assert 2.5 in delays and 3.0 in delays


def one_site(spec: NatSpec, hosts: tuple[str, ...] = ("a",)) -> Topology:
    return Topology(name="probe", sites=(Site("nat-a", spec, hosts),))


def server(lab: Lab) -> tuple[str, tuple[str, str]]:
    ips = lab.addresses("server")
    return lab.netns("server"), (ips[0], ips[1])


# (mapping, filtering, hole punching works) as RFC 4787 and the libwebrtc matrix expect them
EXPECTED = {
    "open": (EIM, EIM, True),
    "full-cone": (EIM, EIM, True),
    "restricted-cone": (EIM, ADM, True),
    "port-restricted-cone": (EIM, APDM, True),
    "symmetric": (APDM, APDM, False),
}


@pytest.mark.root
@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_preset_classifies_as_named(kind: str, no_leftovers: None) -> None:
    mapping, filtering, punches = EXPECTED[kind]
    with Lab(standard_topology(kind, "full-cone")) as lab:
        seen = probe.classify(lab, "a")
        independent = probe.natdiscovery(lab.netns("a"), lab.addresses("server")[0])
    assert (seen["udp"], seen["mapping"], seen["filtering"]) == (True, mapping, filtering)
    assert seen["hole_punch"] is punches
    assert seen["hairpin"] is None  # one host per site: nobody to hairpin from
    assert (independent["mapping"], independent["filtering"]) == (mapping, filtering), independent["output"]


@pytest.mark.root
def test_udp_blocked_has_no_udp_at_all(no_leftovers: None) -> None:
    with Lab(standard_topology("udp-blocked", "full-cone")) as lab:
        seen = probe.classify(lab, "a")
        independent = probe.natdiscovery(lab.netns("a"), lab.addresses("server")[0])
    assert seen == {
        "mapping": None,
        "filtering": None,
        "hairpin": None,
        "udp": False,
        "hole_punch": False,
        "port_preservation": None,
    }
    assert (independent["mapping"], independent["filtering"]) == (None, None), independent["output"]


def tcp_connects(ns: str, address: tuple[str, int]) -> bool:
    with netns.socket_in(ns, kind=socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(address)
        except OSError:
            return False
        return True


@pytest.mark.root
def test_udp_blocked_lets_only_tcp_443_out(no_leftovers: None) -> None:
    with Lab(standard_topology("udp-blocked", "full-cone")) as lab:
        ip = lab.addresses("server")[0]
        assert tcp_connects(lab.netns("a"), (ip, 443))  # coturn's aux server: TURN over TCP/TLS
        assert not tcp_connects(lab.netns("a"), (ip, 3478))  # coturn listens there too, but it is blocked
        assert tcp_connects(lab.netns("b"), (ip, 3478))  # the other site shows the listener is there


@pytest.mark.root
@pytest.mark.parametrize(
    ("mapping", "filtering"),
    [(ADM, ADM), (ADM, EIM), (APDM, EIM), (APDM, ADM), (EIM, ADM)],
)
def test_custom_mapping_and_filtering_are_what_they_say(
    mapping: str, filtering: str, no_leftovers: None
) -> None:
    spec = nat.preset("custom", mapping=mapping, filtering=filtering)
    with Lab(one_site(spec)) as lab:
        server_ns, ips = server(lab)
        own = (
            probe.mapping_behaviour(lab.netns("a"), server_ns, ips),
            probe.filtering_behaviour(lab.netns("a"), server_ns, ips),
        )
        independent = probe.natdiscovery(lab.netns("a"), ips[0])
    assert own == (mapping, filtering)
    assert (independent["mapping"], independent["filtering"]) == (mapping, filtering), independent["output"]


@pytest.mark.root
@pytest.mark.parametrize("kind", ["full-cone", "restricted-cone", "port-restricted-cone", "symmetric"])
@pytest.mark.parametrize("hairpin", [True, False])
def test_hairpin_knob(kind: str, hairpin: bool, no_leftovers: None) -> None:
    spec = nat.preset(kind, hairpin=hairpin)
    with Lab(one_site(spec, ("a", "a2"))) as lab:
        seen = probe.classify(lab, "a")
    assert seen["hairpin"] is hairpin
    assert (seen["mapping"], seen["filtering"]) == EXPECTED[kind][:2]  # hairpinning changes nothing else


@pytest.mark.root
@pytest.mark.parametrize(
    ("kind", "lifetime_s"), [("full-cone", 3), ("restricted-cone", 3), ("port-restricted-cone", 5)]
)
def test_lifetime_knob_is_measured(kind: str, lifetime_s: int, no_leftovers: None) -> None:
    with Lab(one_site(nat.preset(kind, lifetime_s=lifetime_s))) as lab:
        server_ns, ips = server(lab)
        measured = probe.mapping_lifetime(lab.netns("a"), server_ns, ips[0], upper_s=3 * lifetime_s)
    assert measured is not None and lifetime_s - 1.0 <= measured <= lifetime_s


@pytest.mark.root
def test_classify_measures_lifetime_only_when_asked(no_leftovers: None) -> None:
    with Lab(one_site(nat.preset("symmetric", lifetime_s=2))) as lab:
        quick = probe.classify(lab, "a")
        measured = probe.classify(lab, "a", measure_lifetime=True)
    assert "lifetime_s" not in quick
    assert 1.0 <= measured["lifetime_s"] <= 2.0
    low, high = measured["lifetime_bracket_s"]  # the bracket it was measured in: [low, high)
    assert low == measured["lifetime_s"] and high is not None and low < 2.0 <= high + 0.5
    assert probe.bracket_text(low, high) == f"[{low:g}, {high:g}) s"


def test_a_lifetime_is_shown_as_the_bracket_measured() -> None:
    """Issue 17: `classify --lifetime` printed a bare lower bound."""
    assert probe.bracket_text(15.0, 20.0) == "[15, 20) s"
    assert probe.bracket_text(0.0, 0.5) == "[0, 0.5) s"
    assert probe.bracket_text(300.0, None) == "[300, inf) s"


@pytest.mark.root
@pytest.mark.parametrize("preserve", [True, False])
def test_port_preservation_knob(preserve: bool, no_leftovers: None) -> None:
    with Lab(one_site(nat.preset("full-cone", port_preservation=preserve))) as lab:
        seen = probe.classify(lab, "a")
    assert seen["port_preservation"] is preserve
    assert (seen["mapping"], seen["filtering"], seen["hole_punch"]) == (EIM, EIM, True)  # still a full cone


@pytest.mark.root
def test_probe_catches_the_hole_punching_trap_natdiscovery_misses(tmp_path: Path, no_leftovers: None) -> None:
    """Without the input-hook drop, a port-restricted cone still classifies EIM/APDF but cannot be punched."""
    trap = tmp_path / "trap.nft"
    lines = (nat.RULES_DIR / "port-restricted-cone.nft").read_text().splitlines()
    kept = [line for line in lines if line.strip() != "iifname $WAN_IF meta nfproto ipv4 ct state new drop"]
    kept.insert(
        kept.index("\t\tiifname $WAN_IF meta nfproto ipv4 ct state new ct status dnat accept") + 1,
        "\t\tiifname $WAN_IF meta nfproto ipv4 ct state new drop",
    )
    trap.write_text("\n".join(kept) + "\n")
    assert len(kept) == len(lines) - 1  # only the input chain's drop is gone
    with Lab(one_site(nat.preset("port-restricted-cone", rules_file=str(trap)))) as lab:
        seen = probe.classify(lab, "a")
        independent = probe.natdiscovery(lab.netns("a"), lab.addresses("server")[0])
    assert (independent["mapping"], independent["filtering"]) == (EIM, APDM)
    assert (seen["mapping"], seen["filtering"]) == (EIM, APDM)
    assert seen["hole_punch"] is False


# The mapping lifetime written into a rules file (docs/nat.md, "Lifetimes"): a ct timeout policy attached
# after conntrack; it wins over the router's sysctl (lifetime_s) for the flows it is attached to.
FILE_LIFETIME = """
	ct timeout mapping-lifetime {
		protocol udp; l3proto ip
		policy = { unreplied : 3, replied : 3 }
	}

	chain lifetime {
		type filter hook prerouting priority filter; policy accept;
		ct state new meta l4proto udp ct timeout set "mapping-lifetime"
	}
}
"""


def with_file_lifetime(preset_name: str) -> str:
    """A preset's file with FILE_LIFETIME added at the end of its table."""
    body = nat.preset_text(preset_name).rstrip()
    assert body.endswith("}")
    return body[:-1] + FILE_LIFETIME.lstrip("\n")


@pytest.mark.root
def test_a_lifetime_written_in_the_file_is_honoured(tmp_path: Path, no_leftovers: None) -> None:
    """Issue 11, finding 3: the file says 3 s, lifetime_s (the sysctl) says 30 s: the file wins."""
    own = tmp_path / "short.nft"
    own.write_text(with_file_lifetime("port-restricted-cone"))
    spec = nat.preset("custom", rules_file=str(own), lifetime_s=30)
    assert nat.sysctls(spec)["net.netfilter.nf_conntrack_udp_timeout"] == "30"
    with Lab(one_site(spec)) as lab:
        server_ns, ips = server(lab)
        measured = probe.mapping_lifetime(lab.netns("a"), server_ns, ips[0], upper_s=20)
    assert measured is not None and 2.0 <= measured <= 3.0


@pytest.mark.root
@pytest.mark.parametrize("kind", ["symmetric", "port-restricted-cone", "full-cone", "restricted-cone"])
def test_a_copied_preset_file_behaves_as_the_preset(kind: str, tmp_path: Path, no_leftovers: None) -> None:
    """Issue 11, finding 2: the copy runs under a custom spec (EIM by default), yet classifies as `kind`."""
    copy = tmp_path / f"{kind}.nft"
    copy.write_text(nat.preset_text(kind))
    with Lab(one_site(nat.preset("custom", rules_file=str(copy)))) as lab:
        seen = probe.classify(lab, "a")
    mapping, filtering, punches = EXPECTED[kind]
    assert (seen["mapping"], seen["filtering"], seen["hole_punch"]) == (mapping, filtering, punches)
    assert seen["port_preservation"] is (kind != "symmetric")


@pytest.mark.root
@pytest.mark.parametrize(
    ("fw", "expected"),
    [
        ("open", {"udp": True, "mapping": EIM, "filtering": EIM, "hole_punch": True, "unsolicited": True}),
        ("eif", {"udp": True, "mapping": EIM, "filtering": EIM, "hole_punch": True, "unsolicited": False}),
        ("apdf", {"udp": True, "mapping": EIM, "filtering": APDM, "hole_punch": True, "unsolicited": False}),
        (
            "block-udp",
            {"udp": False, "mapping": None, "filtering": None, "hole_punch": False, "unsolicited": None},
        ),
    ],
)
def test_classify_reports_each_ipv6_firewall_in_rfc_4787_terms(fw: str, expected: dict[str, object]) -> None:
    from netsim.lab.fw6 import Fw6Spec

    topo = standard_topology("symmetric", "open", ipv6_a="dual", fw6_a=Fw6Spec(fw))
    with Lab(topo) as lab:
        result = probe.classify(lab, "a")
    assert result["mapping"] == APDM  # the IPv4 NAT is classified as before
    six = result["ipv6"]
    assert six["translated"] is (False if expected["udp"] else None)  # no NAT66: the host's own address
    assert {k: six[k] for k in expected} == expected
