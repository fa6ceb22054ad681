"""IPv6 firewalls: presets pass nft's check (root, no lab) and filter as named in a dual-stack lab (root)."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from netsim.lab import fw6, netns
from netsim.lab.fw6 import Fw6Error, Fw6Spec
from netsim.lab.lab import Lab
from netsim.lab.topology import standard_topology
from netsim.vocab import FW6_PRESETS

pytestmark = pytest.mark.root


@pytest.mark.parametrize("name", FW6_PRESETS)
def test_every_preset_passes_its_own_check(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.nft"
    path.write_text(fw6.preset_text(name))
    assert fw6.is_fw6_file(path)
    fw6.check(path)


def test_a_broken_rules_file_is_named_by_its_own_line(tmp_path: Path) -> None:
    path = tmp_path / "mine.nft"
    lines = fw6.preset_text("apdf").splitlines()
    bad = next(i for i, line in enumerate(lines) if "iifname $WAN_IF drop" in line)
    lines[bad] = lines[bad].replace("drop", "dorp")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(Fw6Error) as caught:
        fw6.check(path)
    assert str(caught.value).startswith(f"{path}:{bad + 1}:")


def _recv(sock: socket.socket) -> tuple[str, int] | None:
    sock.settimeout(0.5)
    try:
        _, seen = sock.recvfrom(64)
        return seen[0], seen[1]
    except TimeoutError:
        return None


def _unsolicited(fw: str | None) -> tuple[str, int] | None:
    """A UDP packet from the server to host a's IPv6 address, with nothing sent out first."""
    topo = standard_topology(
        "port-restricted-cone", "port-restricted-cone", ipv6_a="dual", fw6_a=fw and Fw6Spec(fw)
    )
    with Lab(topo, coturn=False) as lab:
        a6 = lab.plan["a"].addresses6[0]
        host = netns.socket_in(lab.netns("a"), socket.AF_INET6)
        server = netns.socket_in(lab.netns("server"), socket.AF_INET6)
        with host, server:
            host.bind((a6, 4000))
            server.bind(("2001:db8:ffff::2", 0))
            server.sendto(b"hello", (a6, 4000))
            return _recv(host)


def test_unsolicited_inbound_udp_is_dropped_behind_apdf_and_not_behind_open() -> None:
    assert _unsolicited(None) is None  # the default for dual is apdf
    seen = _unsolicited("open")
    assert seen is not None and seen[0] == "2001:db8:ffff::2"  # no translation: the server's own address


def test_a_dual_host_reaches_the_server_over_ipv6_with_its_own_address() -> None:
    with Lab(standard_topology("symmetric", "open", ipv6_a="dual"), coturn=False) as lab:
        host = netns.socket_in(lab.netns("a"), socket.AF_INET6)
        server = netns.socket_in(lab.netns("server"), socket.AF_INET6)
        with host, server:
            server.bind(("2001:db8:ffff::2", 5000))
            host.sendto(b"ping", ("2001:db8:ffff::2", 5000))
            seen = _recv(server)
            assert seen == ("2001:db8:1::2", host.getsockname()[1])  # mapping is the identity
            server.sendto(b"pong", seen)
            assert _recv(host) is not None  # the reply passes the firewall
        v4 = netns.run(lab.netns("b"), ["ip", "-6", "-o", "addr"], capture_output=True, text=True).stdout
        assert v4.strip() == ""  # the IPv4-only site has no IPv6 at all


def test_hole_punching_through_two_apdf_firewalls() -> None:
    """Both hosts send to each other at once, as ICE checks do: the first packets open each firewall for
    the other side's, and a retransmission gets through in both directions."""
    topo = standard_topology("symmetric", "symmetric", ipv6_a="dual", ipv6_b="dual", fw6_b=Fw6Spec("apdf"))
    with Lab(topo, coturn=False) as lab:
        a6, b6 = lab.plan["a"].addresses6[0], lab.plan["b"].addresses6[0]
        sa = netns.socket_in(lab.netns("a"), socket.AF_INET6)
        sb = netns.socket_in(lab.netns("b"), socket.AF_INET6)
        with sa, sb:
            sa.bind((a6, 6000))
            sb.bind((b6, 6000))
            got: dict[str, tuple[str, int] | None] = {}

            def punch(sock: socket.socket, peer: str, me: str) -> None:
                for _ in range(4):
                    sock.sendto(b"check", (peer, 6000))
                    if (seen := _recv(sock)) is not None:
                        got[me] = seen
                        sock.sendto(b"check", (peer, 6000))  # the other side may still be waiting
                        return
                got[me] = None

            threads = [threading.Thread(target=punch, args=args) for args in ((sa, b6, "a"), (sb, a6, "b"))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        assert got == {"a": (b6, 6000), "b": (a6, 6000)}
