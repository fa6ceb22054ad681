"""NAT64 carriers and CLAT hosts with tayga in a real lab (root; skipped without tayga or /dev/net/tun)."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from netsim.lab import netns
from netsim.lab.lab import Lab
from netsim.lab.nat64 import CLAT_HOST
from netsim.lab.topology import from_dict

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(
        shutil.which("tayga") is None, reason="tayga is not installed (.ci/setup installs it)"
    ),
    pytest.mark.skipif(not Path("/dev/net/tun").exists(), reason="no /dev/net/tun: tayga needs a TUN device"),
]

SERVER = "198.18.0.2"


def _lab(nat: str) -> Lab:
    carrier = {"name": "mob", "nat": nat, "nat64": True}
    return Lab(
        from_dict(
            {"carrier": [carrier], "site": [{"name": "r1", "hosts": ["h1"], "behind": "mob", "ipv6": "clat"}]}
        ),
        coturn=False,
    )


def _round_trip(lab: Lab, family: int, to: tuple[str, int]) -> tuple[str, int] | None:
    """A UDP packet from h1 to the server and its reply; the source the server saw."""
    host = netns.socket_in(lab.netns("h1"), family)
    server = netns.socket_in(lab.netns("server"))
    with host, server:
        server.bind((SERVER, to[1]))
        server.settimeout(2)
        host.settimeout(2)
        host.sendto(b"ping", to)
        try:
            _, seen = server.recvfrom(64)
            server.sendto(b"pong", seen)
            host.recvfrom(64)
        except TimeoutError:
            return None
        return seen[0], seen[1]


def test_nat64_takes_an_ipv6_only_host_to_the_ipv4_server() -> None:
    with _lab("port-restricted-cone") as lab:
        assert lab.plan["h1"].addresses == [] and lab.plan["r1"].addresses == []  # IPv6-only site
        seen = _round_trip(lab, socket.AF_INET6, ("2001:db8:64::c612:2", 7000))  # 198.18.0.2 in the prefix
        assert seen is not None and seen[0] == lab.address("mob")  # through the carrier's NAT44


def test_clat_gives_the_host_working_ipv4_and_the_carriers_nat_decides_the_mapping() -> None:
    with _lab("symmetric") as lab:
        route = netns.run(lab.netns("h1"), ["ip", "-4", "route"], capture_output=True, text=True).stdout
        assert f"src {CLAT_HOST}" in route
        host = netns.socket_in(lab.netns("h1"))
        servers = [netns.socket_in(lab.netns("server")) for _ in range(2)]
        with host, servers[0], servers[1]:
            host.bind(("0.0.0.0", 0))
            seen = []
            for port, server in zip((7001, 7002), servers, strict=True):
                server.bind((SERVER, port))
                server.settimeout(2)
                host.sendto(b"ping", (SERVER, port))
                _, source = server.recvfrom(64)
                seen.append(source)
                server.sendto(b"pong", source)
                host.settimeout(2)
                assert host.recvfrom(64)[0] == b"pong"  # IPv4 works both ways through CLAT and NAT64
        assert {s[0] for s in seen} == {lab.address("mob")}
        assert seen[0][1] != seen[1][1]  # symmetric NAT44: a new port per destination
