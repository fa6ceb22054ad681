"""The delay line: one-way delay and jitter at a router whose kernel has no sch_netem.

A process in the router's namespace binds an NFQUEUE (libnetfilter_queue through the `netfilterqueue`
binding); iptables-nft rules in the namespace's raw PREROUTING chain send every packet arriving on the
router's interfaces to it. The line holds each packet and gives it back to the kernel (accept) once its delay
has passed. Queueing *before* conntrack makes a delayed packet look to the NAT exactly like one that arrived
later: a flow's first packets never wait unconfirmed in the conntrack table while later ones overtake them
(which on a symmetric NAT could give one flow two mappings).

Each packet's delay is drawn on its own, uniformly from [delay - jitter, delay + jitter], as netem does by
default; like netem, jitter larger than the gap between two packets reorders them. Both backends thus run
the same experiment, and a record says which one was used.

Run as `python -m netsim.lab.delay --delay-ms 50 [--jitter-ms 10]` inside the namespace (`start` does that
and installs the rules); it prints `ready` once bound and ends on SIGTERM or when its parent goes away.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import os
import random
import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any, Protocol

from netsim.lab import netns
from netsim.lab.registry import LabError

QUEUE_NUM = 0  # NFQUEUE numbers are per network namespace: every router can use the same one
# Packets the kernel keeps for the line at once (held ones count): 20,000 pkt/s for 0.5 s.
MAX_QUEUE = 10_000
READY = b"ready"
READY_TIMEOUT_S = 15.0  # an interpreter start on a loaded 2-core machine takes well under a second
PARENT_CHECK_S = 1.0  # how often an idle line checks that its lab owner still lives


class Held(Protocol):
    """What the line needs of a queued packet (netfilterqueue.Packet)."""

    def accept(self) -> None: ...


class DelayLine:
    """Packets ordered by release time; pure scheduling, no I/O."""

    def __init__(self, delay_ms: float, jitter_ms: float = 0.0, rng: random.Random | None = None) -> None:
        self.delay_s = delay_ms / 1000
        self.jitter_s = jitter_ms / 1000
        self.rng = rng or random.Random()
        self._heap: list[tuple[float, int, Held]] = []
        self._seq = itertools.count()  # ties keep arrival order

    def __len__(self) -> int:
        return len(self._heap)

    def draw_s(self) -> float:
        if not self.jitter_s:
            return self.delay_s
        return max(0.0, self.rng.uniform(self.delay_s - self.jitter_s, self.delay_s + self.jitter_s))

    def push(self, packet: Held, now: float) -> float:
        release = now + self.draw_s()
        heapq.heappush(self._heap, (release, next(self._seq), packet))
        return release

    def due(self, now: float) -> list[Held]:
        out = []
        while self._heap and self._heap[0][0] <= now:
            out.append(heapq.heappop(self._heap)[2])
        return out

    def wait_s(self, now: float, idle_s: float = PARENT_CHECK_S) -> float:
        """How long to sleep before the next release (idle_s when nothing is held)."""
        if not self._heap:
            return idle_s
        return min(idle_s, max(0.0, self._heap[0][0] - now))


# ---- the process ------------------------------------------------------------------------------------------


def serve(line: DelayLine, queue_num: int = QUEUE_NUM) -> None:
    """Bind the queue, say `ready`, then hold and release packets until SIGTERM or orphaned."""
    from netfilterqueue import NetfilterQueue

    clock = time.monotonic

    def on_packet(packet: Any) -> None:
        packet.retain()  # keep it beyond the callback; the verdict comes later
        line.push(packet, clock())

    nfq = NetfilterQueue()
    nfq.bind(queue_num, on_packet, max_len=MAX_QUEUE)
    fd = nfq.get_fd()
    os.set_blocking(fd, False)
    parent = os.getppid()
    sys.stdout.buffer.write(READY + b"\n")
    sys.stdout.flush()
    try:
        while True:
            readable, _, _ = select.select([fd], [], [], line.wait_s(clock()))
            if readable:
                nfq.run(block=False)
            for packet in line.due(clock()):
                packet.accept()
            if not readable and os.getppid() != parent:
                return  # the lab's owner died (SIGKILL): `netsim cleanup` removes the rest
    finally:
        nfq.unbind()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m netsim.lab.delay", description=__doc__)
    parser.add_argument("--delay-ms", type=float, required=True)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--queue", type=int, default=QUEUE_NUM)
    args = parser.parse_args(argv)
    # Ctrl-C reaches the whole process group; the lab ends the line by pid (SIGTERM) during its teardown.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    _prioritise()
    serve(DelayLine(args.delay_ms, args.jitter_ms), args.queue)
    return 0


def _prioritise() -> None:
    """Run ahead of ordinary processes: netem works in the kernel's timers, unaffected by a loaded machine,
    and a delay line that waits for a CPU adds that wait to every packet it holds (measured at a load
    average of 37 on 2 cores, round trips through 50 ms each way: mean 117-133 ms and up to 445 ms with
    ordinary or nice -10 scheduling, 100.6 ms and at most 101.4 ms with SCHED_FIFO). The lowest real-time
    priority is enough to be woken on time; the kernel's real-time throttling still keeps 5 % of each CPU
    for everything else, and the line's work is per packet."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except OSError:
        pass  # not permitted (e.g. in a container without CAP_SYS_NICE): ordinary scheduling


# ---- starting it in a router ------------------------------------------------------------------------------


def rules(interfaces: Sequence[str], queue_num: int = QUEUE_NUM) -> str:
    """iptables-restore input: packets arriving on the interfaces go to the queue before conntrack."""
    lines = ["*raw", *(f"-A PREROUTING -i {i} -j NFQUEUE --queue-num {queue_num}" for i in interfaces)]
    return "\n".join([*lines, "COMMIT", ""])


def argv(delay_ms: float, jitter_ms: float, queue_num: int = QUEUE_NUM) -> list[str]:
    return [
        sys.executable,
        "-m",
        "netsim.lab.delay",
        f"--delay-ms={delay_ms:g}",
        f"--jitter-ms={jitter_ms:g}",
        f"--queue={queue_num}",
    ]


def start(
    netns_name: str, delay_ms: float, jitter_ms: float, interfaces: Sequence[str]
) -> subprocess.Popen[bytes]:
    """Start the line in a router's namespace and queue its interfaces to it; the caller ends it by pid."""
    proc = netns.popen(
        netns_name,
        argv(delay_ms, jitter_ms),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_ready(proc, netns_name)
        # Rules only once the queue is bound: a queue without a listener drops what it gets.
        for tool in ("iptables-nft-restore", "ip6tables-nft-restore"):
            done = netns.run(
                netns_name, [tool, "--noflush"], input=rules(interfaces).encode(), capture_output=True
            )
            if done.returncode != 0:
                why = done.stderr.decode(errors="replace").strip() or f"exit {done.returncode}"
                raise LabError(f"delay line in {netns_name}: {tool} failed: {why}")
    except BaseException:
        netns.end(proc, grace_s=2.0)
        raise
    return proc


def _wait_ready(proc: subprocess.Popen[bytes], netns_name: str) -> None:
    assert proc.stdout is not None
    readable, _, _ = select.select([proc.stdout], [], [], READY_TIMEOUT_S)
    line = proc.stdout.readline().strip() if readable else b""
    if line == READY:
        return
    netns.end(proc, grace_s=2.0)
    assert proc.stderr is not None
    err = proc.stderr.read().decode(errors="replace").strip().splitlines()
    why = err[-1] if err else f"no `ready` within {READY_TIMEOUT_S:g} s"
    raise LabError(f"delay line in {netns_name} did not start: {why} (`netsim doctor` says what is missing)")


if __name__ == "__main__":
    raise SystemExit(main())
