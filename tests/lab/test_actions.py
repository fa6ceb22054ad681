"""The actions of network events in a real lab (root), and the rulesets they load (no root)."""

from __future__ import annotations

import socket

import pytest

from netsim.lab import actions
from netsim.lab.topology import standard_topology


def test_down_ruleset_drops_both_ways_before_conntrack() -> None:
    text = actions.down_ruleset("wan")
    assert 'iifname "wan" drop' in text and text.count('oifname "wan" drop') == 2
    assert "priority raw - 10" in text and "fwd" not in text  # fwd is an nft keyword
    several = actions.down_ruleset(["eth0", "eth1"], actions.MOVE_TABLE)
    assert f"table inet {actions.MOVE_TABLE}" in several and 'iifname { "eth0", "eth1" } drop' in several


@pytest.mark.root
def test_down_and_up_in_a_real_router() -> None:
    from netsim.lab.lab import Lab
    from netsim.lab.netns import run

    with Lab(standard_topology("port-restricted-cone", "full-cone"), coturn=False) as lab:
        actions.down(lab, "nat-a")
        listed = run(lab.netns("nat-a"), ["nft", "list", "tables"], capture_output=True, text=True).stdout
        assert actions.DOWN_TABLE in listed
        actions.up(lab, "nat-a")
        listed = run(lab.netns("nat-a"), ["nft", "list", "tables"], capture_output=True, text=True).stdout
        assert actions.DOWN_TABLE not in listed
        flushed = actions.flush(lab, "nat-b")
        assert "map mapping" in flushed["flushed"]


@pytest.mark.root
def test_nat_event_changes_the_routers_behaviour_live() -> None:
    """A `nat` event loads another preset into a running router: the mapping a probe measures changes."""
    from netsim.lab import probe
    from netsim.lab.lab import Lab
    from netsim.vocab import APDM, EIM

    with Lab(standard_topology("port-restricted-cone", "open"), coturn=False) as lab:
        server_ips = (lab.addresses("server")[0], lab.addresses("server")[1])

        def mapping() -> str | None:
            return probe.mapping_behaviour(lab.netns("a"), lab.netns("server"), server_ips)

        assert mapping() == EIM
        assert actions.change_nat(lab, "nat-a", "symmetric") == {"kind": "symmetric", "lifetime_s": 30}
        assert mapping() == APDM


@pytest.mark.root
def test_move_puts_the_host_behind_the_other_site() -> None:
    """After a move the host has only its new LAN address, its traffic leaves through the new site's NAT, and
    a socket bound to the old address (as aiortc's ICE sockets are) can send nothing any more; it can move
    again."""
    import contextlib

    from netsim.lab.lab import Lab
    from netsim.lab.netns import run, socket_in
    from netsim.lab.topology import from_dict

    sites = [{"name": f"nat-{h}", "nat": "port-restricted-cone", "hosts": [h]} for h in "abc"]
    with Lab(from_dict({"site": sites}), coturn=False) as lab, contextlib.ExitStack() as stack:
        server = stack.enter_context(socket_in(lab.netns("server")))
        server.bind((lab.address("server"), 0))
        server.settimeout(3)
        to = server.getsockname()

        def seen_from(sock: socket.socket) -> str:
            sock.sendto(b"x", to)
            return str(server.recvfrom(16)[1][0])

        stale = stack.enter_context(socket_in(lab.netns("a")))
        stale.bind((lab.address("a"), 0))
        assert seen_from(stale) == lab.address("nat-a")

        detail = actions.move(lab, "a", "nat-c")
        assert (detail["address"], detail["gateway"]) == ("10.3.0.200", "10.3.0.1")
        assert 0 <= detail["cut_s"] <= detail["gone_s"] <= detail["took_s"] < 5
        tables = run(lab.netns("a"), ["nft", "list", "tables"], capture_output=True, text=True).stdout
        assert actions.MOVE_TABLE not in tables  # the cut lasts only until the old link is gone
        listed = run(lab.netns("a"), ["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
        assert [line.split()[3] for line in listed.splitlines() if " lo " not in line] == ["10.3.0.200/24"]
        assert seen_from(stack.enter_context(socket_in(lab.netns("a")))) == lab.address("nat-c")
        with pytest.raises(OSError):
            stale.sendto(b"x", to)

        # And on again (cellular back to another Wi-Fi): the link of the first move goes the same way.
        again = actions.move(lab, "a", "nat-b", index=1)
        assert (again["address"], again["gateway"]) == ("10.2.0.201", "10.2.0.1")
        listed = run(lab.netns("a"), ["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
        assert [line.split()[3] for line in listed.splitlines() if " lo " not in line] == ["10.2.0.201/24"]
        assert seen_from(stack.enter_context(socket_in(lab.netns("a")))) == lab.address("nat-b")
