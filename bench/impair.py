"""Benchmark: the delay line's accuracy and its packet-rate ceiling. Needs root.

A standard lab with the delay line (forced, so a kernel with netem measures it too) at nat-a; host a sends UDP
datagrams to the server, each carrying its send time, and the server's kernel stamps each arrival
(SO_TIMESTAMPNS), so a one-way time is the network's, not the receiver's wake-up. Printed beside targets:

- accuracy at 100 pkt/s through 50 ms: mean one-way delay within 10 % (<= 5 ms off), and with 10 ms of jitter
  the mean still 50 ms and the standard deviation that of a uniform draw (5.8 ms);
- the ceiling: the highest offered rate (200-byte datagrams, one direction) the line forwards with its mean
  delay within 10 % of 50 ms and at least 99 % delivered. Target >= 2,000 pkt/s: a call's media is about
  50 pkt/s of audio plus ~250 pkt/s of 2.5 Mbit/s video per direction, and a site's line carries both
  directions of every call behind it, so 2,000 pkt/s holds a few HD calls at once with room to spare.

Run: sudo .venv/bin/python bench/impair.py [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import struct
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from netsim.lab import impair, netns
from netsim.lab.impair import Impairment
from netsim.lab.lab import Lab
from netsim.lab.topology import standard_topology

DELAY_MS = 50.0
TOLERANCE = 0.10
TARGET_PPS = 2000
RATES = (500, 1000, 2000, 5000, 10_000, 20_000, 40_000, 80_000)
PAYLOAD = 200
SO_TIMESTAMPNS = 35
SO_RCVBUFFORCE = 33
SERVER = ("198.18.0.2", 9993)
SEND_TIME = struct.Struct("d")


@dataclass
class Run:
    offered_pps: float  # what the sender managed
    sent: int
    delays_ms: list[float]

    @property
    def delivered(self) -> float:
        return len(self.delays_ms) / self.sent if self.sent else 0.0

    @property
    def mean_ms(self) -> float:
        return statistics.mean(self.delays_ms) if self.delays_ms else float("nan")

    def pct_ms(self, q: float) -> float:
        ordered = sorted(self.delays_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def one_way(lab: Lab, pps: int, seconds: float) -> Run:
    """Send `pps` datagrams a second for `seconds` (in 1 ms batches), then read every arrival's stamp."""
    srv, cli = netns.socket_in(lab.netns("server")), netns.socket_in(lab.netns("a"))
    with srv, cli:
        srv.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        srv.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)  # holds every datagram of a run
        srv.bind(SERVER)
        pad = b"x" * (PAYLOAD - SEND_TIME.size)
        sent, start = 0, time.monotonic()
        while (elapsed := time.monotonic() - start) < seconds:
            while sent < pps * elapsed:
                cli.sendto(SEND_TIME.pack(time.time()) + pad, SERVER)
                sent += 1
            time.sleep(0.001)
        offered = sent / (time.monotonic() - start)
        time.sleep(DELAY_MS / 1000 * 4 + 0.2)  # the line's backlog drains
        return Run(offered, sent, _drain(srv))


def _drain(sock: socket.socket) -> list[float]:
    sock.setblocking(False)
    delays: list[float] = []
    while True:
        try:
            data, ancillary, _, _ = sock.recvmsg(2048, 64)
        except BlockingIOError:
            return delays
        for level, kind, raw in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanos = struct.unpack("qq", raw[:16])
                delays.append((seconds + nanos / 1e9 - SEND_TIME.unpack(data[: SEND_TIME.size])[0]) * 1000)


def within(run: Run) -> bool:
    return abs(run.mean_ms - DELAY_MS) <= TOLERANCE * DELAY_MS and run.delivered >= 0.99


def delayed_lab(jitter_ms: float = 0.0) -> tuple[Lab, list[subprocess.Popen[Any]]]:
    lab = Lab(standard_topology("full-cone", "open"), coturn=False)
    lab.__enter__()
    imp = Impairment(delay_ms=DELAY_MS, jitter_ms=jitter_ms)
    return lab, impair.apply(lab.netns("nat-a"), imp, delay_backend=impair.NFQUEUE)


def close(lab: Lab, procs: list[subprocess.Popen[Any]]) -> None:
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=5)
    lab.__exit__(None, None, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="length of each rate's run")
    args = parser.parse_args()
    print(f"this machine's delay backend: {impair.delay_backend_here()} ({impair.netem_probe()[1]})")
    print(f"delay line, {DELAY_MS:g} ms one way, {PAYLOAD}-byte datagrams from a to server\n")

    lab, procs = delayed_lab()
    try:
        base = one_way(lab, 100, 2.0)
        print("accuracy at 100 pkt/s")
        print(
            f"  fixed:   mean {base.mean_ms:6.2f} ms  p50 {base.pct_ms(0.5):6.2f}"
            f"  p99 {base.pct_ms(0.99):6.2f}  max {max(base.delays_ms):6.2f}"
            f"   target: mean within {TOLERANCE * DELAY_MS:g} ms"
        )
        runs = []
        print("\nrate ceiling")
        for pps in RATES:
            run = one_way(lab, pps, args.seconds)
            runs.append((pps, run))
            verdict = "ok" if within(run) else "OVER"
            print(
                f"  {pps:6d} pkt/s offered ({run.offered_pps:7.0f} sent): delivered {run.delivered:6.1%}"
                f"  mean {run.mean_ms:7.2f} ms  p99 {run.pct_ms(0.99):7.2f} ms  {verdict}"
            )
            if not within(run):
                break
    finally:
        close(lab, procs)

    lab, procs = delayed_lab(jitter_ms=10)
    try:
        jit = one_way(lab, 100, 2.0)
    finally:
        close(lab, procs)
    sd = statistics.pstdev(jit.delays_ms)
    print(
        f"\n  jitter 10 ms: mean {jit.mean_ms:6.2f} ms  sd {sd:5.2f} ms   target: mean within"
        f" {TOLERANCE * DELAY_MS:g} ms of {DELAY_MS:g}, sd {20 / 12**0.5:.1f} ms (uniform +-10 ms)"
    )
    # The sender is one Python loop: where it falls short of the offer, the sent rate is what was measured.
    ceiling = max((run.offered_pps for _, run in runs if within(run)), default=0.0)
    capped = " (the sender's limit, not the line's)" if runs and within(runs[-1][1]) else ""
    print(
        f"\nceiling: {ceiling:.0f} pkt/s forwarded within 10 % of {DELAY_MS:g} ms{capped}"
        f"   target: >= {TARGET_PPS}"
    )


if __name__ == "__main__":
    main()
