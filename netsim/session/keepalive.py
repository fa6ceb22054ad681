"""Each stack's keepalive interval as the NAT router sees it: a capture on the router's WAN while the call
is held, and the STUN binding requests (ICE consent checks and keepalives) that leave it.

The interval is the median gap between outbound binding requests of the busiest flow (the selected pair's:
most of them), counted only after the connect, when the stacks have settled into their keepalive rhythm.
A relayed path carries its checks inside TURN ChannelData or Send indications, which are not counted: its
keepalive is then null. The pcap parser reads the classic libpcap format tcpdump writes (Ethernet frames).
"""

from __future__ import annotations

import contextlib
import ipaddress
import statistics
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netsim.lab import netns

if TYPE_CHECKING:
    from netsim.lab.lab import Lab

STUN_COOKIE = 0x2112A442
BINDING_REQUEST = 0x0001
MIN_REQUESTS = 2  # fewer than this in one flow: no interval to tell


def packets(data: bytes) -> Iterator[tuple[float, bytes]]:
    """(timestamp, frame) of each packet of a libpcap capture (either byte order, µs or ns stamps)."""
    if len(data) < 24:
        return
    magic = data[:4]
    endian = {
        b"\xd4\xc3\xb2\xa1": "<",
        b"\xa1\xb2\xc3\xd4": ">",
        b"\x4d\x3c\xb2\xa1": "<",
        b"\xa1\xb2\x3c\x4d": ">",
    }
    order = endian.get(magic)
    if order is None:
        return
    scale = 1e-9 if magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d") else 1e-6
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, caplen, _ = struct.unpack(order + "IIII", data[pos : pos + 16])
        pos += 16
        yield sec + frac * scale, data[pos : pos + caplen]
        pos += caplen


def udp_of(frame: bytes) -> tuple[str, int, str, int, bytes] | None:
    """(src, sport, dst, dport, payload) of an Ethernet/IPv4/UDP frame, else None."""
    if len(frame) < 14 + 20 + 8 or frame[12:14] != b"\x08\x00":
        return None
    ip = frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    if ip[9] != 17 or len(ip) < ihl + 8:
        return None
    src, dst = str(ipaddress.IPv4Address(ip[12:16])), str(ipaddress.IPv4Address(ip[16:20]))
    sport, dport = struct.unpack("!HH", ip[ihl : ihl + 4])
    return src, sport, dst, dport, ip[ihl + 8 :]


def is_binding_request(payload: bytes) -> bool:
    if len(payload) < 20:
        return False
    kind, _, cookie = struct.unpack("!HHI", payload[:8])
    return bool(kind == BINDING_REQUEST and cookie == STUN_COOKIE)


def keepalive(data: bytes, wan_ip: str) -> dict[str, Any]:
    """{"interval_s", "requests", "flow"}: the busiest flow of outbound binding requests from `wan_ip`."""
    flows: dict[tuple[str, int, str, int], list[float]] = {}
    for ts, frame in packets(data):
        udp = udp_of(frame)
        if udp is None or udp[0] != wan_ip:
            continue
        if is_binding_request(udp[4]):
            flows.setdefault(udp[:4], []).append(ts)
    if not flows:
        return {"interval_s": None, "requests": 0, "flow": None}
    flow, times = max(flows.items(), key=lambda kv: len(kv[1]))
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    interval = round(statistics.median(gaps), 3) if len(times) >= MIN_REQUESTS else None
    return {
        "interval_s": interval,
        "requests": len(times),
        "flow": f"{flow[0]}:{flow[1]} -> {flow[2]}:{flow[3]}",
    }


@contextlib.contextmanager
def capture(lab: Lab, router: str, path: Path) -> Iterator[Path]:
    """tcpdump of UDP on the router's WAN interface (inside its namespace) into `path`, for the block."""
    argv = ["tcpdump", "-i", "wan", "--immediate-mode", "-U", "-n", "-s", "128", "-w", str(path), "udp"]
    proc = lab.popen(router, argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield path
    finally:
        netns.end(proc, grace_s=3.0)  # SIGTERM first: tcpdump then writes what it holds


def router_wan(lab: Lab, router: str) -> str | None:
    """The router's WAN address (where its NATed packets come from)."""
    node = lab.plan.get(router)
    if node is None:
        return None
    wan = next((i for i in node.ifaces if i.name == "wan"), None)
    return wan.address.split("/")[0] if wan is not None else None
