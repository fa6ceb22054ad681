"""Keepalive intervals from a capture (netsim/session/keepalive.py): a libpcap file built here, byte by byte
as tcpdump writes it, read back (no root, no capture)."""

from __future__ import annotations

import struct

from netsim.session import keepalive

WAN = "198.18.1.1"


def _frame(src: str, sport: int, dst: str, dport: int, payload: bytes, proto: int = 17) -> bytes:
    ip = bytes([0x45, 0, 0, 20 + 8 + len(payload), 0, 0, 0, 0, 64, proto, 0, 0])
    ip += bytes(int(x) for x in src.split(".")) + bytes(int(x) for x in dst.split("."))
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
    return b"\x02" * 6 + b"\x02" * 6 + b"\x08\x00" + ip + udp + payload


def _stun(kind: int, cookie: int = keepalive.STUN_COOKIE) -> bytes:
    return struct.pack("!HHI", kind, 0, cookie) + b"\x00" * 12


def _pcap(packets: list[tuple[float, bytes]], nanos: bool = False, big: bool = False) -> bytes:
    order = ">" if big else "<"
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, 1)
    scale = 1e9 if nanos else 1e6
    for t, frame in packets:
        sec = int(t)
        out += struct.pack(order + "IIII", sec, round((t - sec) * scale), len(frame), len(frame)) + frame
    return out


BINDING = _stun(keepalive.BINDING_REQUEST)


def _capture(nanos: bool = False, big: bool = False) -> bytes:
    busy = [(100.0 + 5.0 * i, _frame(WAN, 4000, "198.18.2.1", 5000, BINDING)) for i in range(4)]
    other = [(101.0, _frame(WAN, 4001, "198.18.0.2", 3478, BINDING))]  # one request of another flow
    noise = [
        (102.0, _frame("198.18.2.1", 5000, WAN, 4000, BINDING)),  # inbound: not ours
        (103.0, _frame(WAN, 4000, "198.18.2.1", 5000, _stun(0x0101))),  # a response, not a request
        (104.0, _frame(WAN, 4000, "198.18.2.1", 5000, _stun(1, cookie=1))),  # no magic cookie
        (105.0, _frame(WAN, 4000, "198.18.2.1", 5000, BINDING, proto=6)),  # TCP
        (106.0, b"\x00" * 10),  # a runt
    ]
    return _pcap(sorted(busy + other + noise), nanos=nanos, big=big)


def test_the_busiest_flows_median_gap() -> None:
    assert keepalive.keepalive(_capture(), WAN) == {
        "interval_s": 5.0,
        "requests": 4,
        "flow": f"{WAN}:4000 -> 198.18.2.1:5000",
    }


def test_nanosecond_and_big_endian_captures_read_the_same() -> None:
    for nanos, big in ((True, False), (False, True), (True, True)):
        assert keepalive.keepalive(_capture(nanos, big), WAN)["interval_s"] == 5.0


def test_one_request_has_no_interval_and_none_has_no_flow() -> None:
    one = _pcap([(1.0, _frame(WAN, 4000, "198.18.2.1", 5000, BINDING))])
    assert keepalive.keepalive(one, WAN) == {
        "interval_s": None,
        "requests": 1,
        "flow": f"{WAN}:4000 -> 198.18.2.1:5000",
    }
    assert keepalive.keepalive(_pcap([]), WAN) == {"interval_s": None, "requests": 0, "flow": None}
    assert keepalive.keepalive(b"not a capture at all, not a capture", WAN)["requests"] == 0


def test_udp_of_reads_addresses_ports_and_payload() -> None:
    frame = _frame("10.1.0.2", 1234, "10.2.0.3", 80, b"hi")
    assert keepalive.udp_of(frame) == ("10.1.0.2", 1234, "10.2.0.3", 80, b"hi")
    assert keepalive.udp_of(frame[:20]) is None
