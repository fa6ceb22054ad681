"""The raw rtnetlink helper on a real kernel (root)."""

from __future__ import annotations

import errno
import json
import os

import pytest

from netsim.lab import netns
from netsim.lab.rtnl import BATCH_MAX, Rtnl

pytestmark = pytest.mark.root

BRIDGE_MAC = bytes.fromhex("026e73aa0001")


def _neighbours(ns: str, dev: str) -> list[dict[str, object]]:
    out = netns.run(ns, ["ip", "-j", "neigh", "show", "dev", dev], capture_output=True, text=True, check=True)
    return list(json.loads(out.stdout or "[]"))


def _link(ns: str, dev: str) -> dict[str, object]:
    out = netns.run(ns, ["ip", "-j", "link", "show", dev], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout)[0])


def test_links_keep_the_mac_addresses_they_were_made_with(scratch_netns: str) -> None:
    rtnl = Rtnl(scratch_netns)
    fd = os.open(netns.path(scratch_netns), os.O_RDONLY)
    try:
        rtnl.bridge("br0", 7, mac=BRIDGE_MAC)
        peer_mac = bytes.fromhex("026e73aa0002")
        rtnl.veth("p1", 8, master=7, peer="eth0", peer_index=9, peer_netns=fd, peer_mac=peer_mac)
        rtnl.commit()
    finally:
        os.close(fd)
        rtnl.close()
    assert _link(scratch_netns, "eth0")["address"] == "02:6e:73:aa:00:02"
    # a bridge without its own MAC would take its lowest port's; this one keeps the one it was made with
    assert _link(scratch_netns, "br0")["address"] == "02:6e:73:aa:00:01"


def test_permanent_neighbours_are_made_in_batches_larger_than_one_send(scratch_netns: str) -> None:
    count = BATCH_MAX * 2 + 5  # three sendmsg calls, each waiting for its acks
    rtnl = Rtnl(scratch_netns)
    try:
        rtnl.bridge("br0", 7, mac=BRIDGE_MAC)
        for i in range(count):
            rtnl.neighbour(7, f"10.9.{i // 250}.{i % 250 + 1}", bytes((2, 0, 0, 0, i // 256, i % 256)))
        rtnl.commit()
    finally:
        rtnl.close()
    entries = {e["dst"]: e for e in _neighbours(scratch_netns, "br0")}
    assert len(entries) == count
    assert entries["10.9.0.1"]["lladdr"] == "02:00:00:00:00:00"
    last = count - 1
    assert (
        entries[f"10.9.{last // 250}.{last % 250 + 1}"]["lladdr"]
        == f"02:00:00:00:{last // 256:02x}:{last % 256:02x}"
    )
    assert all(e["state"] == ["PERMANENT"] for e in entries.values())


def test_a_refused_neighbour_names_the_address_the_link_and_the_namespace(scratch_netns: str) -> None:
    rtnl = Rtnl(scratch_netns)
    try:
        rtnl.bridge("br0", 7)
        rtnl.neighbour(7, "10.9.0.2", BRIDGE_MAC)
        rtnl.neighbour(7, "10.9.0.2", BRIDGE_MAC)  # exists already
        rtnl.neighbour(99, "10.9.0.3", BRIDGE_MAC)  # no link 99: the second failure, not the one reported
        with pytest.raises(OSError) as caught:
            rtnl.commit()
    finally:
        rtnl.close()
    assert caught.value.errno == errno.EEXIST
    what = f"add permanent neighbour 10.9.0.2 lladdr 02:6e:73:aa:00:01 on link 7 in namespace {scratch_netns}"
    assert str(caught.value) == f"[Errno {errno.EEXIST}] netlink: {what}: File exists"
    assert [e["dst"] for e in _neighbours(scratch_netns, "br0")] == ["10.9.0.2"]


def test_a_refused_netlink_request_is_named_with_its_namespace_and_reason(scratch_netns: str) -> None:
    rtnl = Rtnl(scratch_netns)
    try:
        rtnl.bridge("br0", 7)
        rtnl.address(99, "10.9.0.1/24")  # no link 99
        with pytest.raises(OSError) as caught:
            rtnl.commit()
    finally:
        rtnl.close()
    assert caught.value.errno == errno.ENODEV
    what = f"netlink: add address 10.9.0.1/24 in namespace {scratch_netns}: No such device"
    assert str(caught.value).startswith(f"[Errno {errno.ENODEV}] {what}")
    links = netns.run(scratch_netns, ["ip", "-o", "link", "show", "br0"], capture_output=True, text=True)
    assert links.stdout.startswith("7: br0:")  # the batch's requests before the refused one took effect


def test_delete_link_removes_the_link_with_its_addresses(scratch_netns: str) -> None:
    with Rtnl(scratch_netns) as rtnl:
        rtnl.bridge("br0", 7)
        rtnl.address(7, "10.9.0.1/24")
        rtnl.commit()
        rtnl.delete_link(7, "br0")
        rtnl.commit()
    links = netns.run(scratch_netns, ["ip", "-o", "link"], capture_output=True, text=True).stdout
    addrs = netns.run(scratch_netns, ["ip", "-o", "-4", "addr"], capture_output=True, text=True).stdout
    assert "br0" not in links and "10.9.0.1" not in addrs
