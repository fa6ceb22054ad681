"""Measurements the lab tests share (plain functions, not tests)."""

from __future__ import annotations

import time

from netsim.lab import netns
from netsim.lab.lab import Lab


def rate_kbit(lab: Lab, port: int, offered_kbit: int = 8000, seconds: float = 1.5) -> float:
    """Payload rate at the server while host a offers `offered_kbit` of 1000-byte datagrams."""
    srv, cli = netns.socket_in(lab.netns("server")), netns.socket_in(lab.netns("a"))
    with srv, cli:
        srv.bind(("198.18.0.2", port))
        srv.setblocking(False)
        interval = 1000 * 8 / (offered_kbit * 1000)
        start = next_send = time.monotonic()
        received, first, last = 0, 0.0, 0.0
        while time.monotonic() - start < seconds:
            if time.monotonic() >= next_send:
                cli.sendto(b"y" * 1000, ("198.18.0.2", port))
                next_send += interval
            while True:
                try:
                    data, _ = srv.recvfrom(2048)
                except BlockingIOError:
                    break
                last = time.monotonic()
                first = first or last
                received += len(data)
    return received * 8 / max(last - first, 1e-6) / 1000
