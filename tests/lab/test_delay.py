"""The delay line: scheduling (no root), and measured delay and jitter through a real lab's router (root).

The accuracy tests bounce UDP datagrams between host a (behind nat-a) and the server: with `delay_ms = 50` at
nat-a, each round trip crosses the router twice, so it must take 100 ms plus the undelayed round trip, within
10 %. Whichever backend this machine has (netem or the delay line) is the one measured; one test forces the
delay line so it is covered on kernels with netem too.
"""

from __future__ import annotations

import os
import random
import socket
import statistics
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from netsim.lab import delay, impair, netns
from netsim.lab.delay import DelayLine
from netsim.lab.impair import Impairment
from netsim.lab.lab import Lab
from netsim.lab.topology import standard_topology
from netsim.vocab import NO_TURN
from tests.lab.measure import rate_kbit

SERVER = ("198.18.0.2", 9996)


@dataclass
class FakePacket:
    name: str
    accepted: list[str] = field(default_factory=list)

    def accept(self) -> None:
        self.accepted.append(self.name)


def test_fixed_delay_releases_in_arrival_order() -> None:
    line = DelayLine(50)
    a, b = FakePacket("a"), FakePacket("b")
    assert line.push(a, 10.0) == pytest.approx(10.05)
    line.push(b, 10.001)
    assert line.due(10.049) == [] and len(line) == 2
    assert line.wait_s(10.03) == pytest.approx(0.02)
    assert line.due(10.0505) == [a]
    assert line.due(10.06) == [b] and len(line) == 0
    assert line.wait_s(11.0) == delay.PARENT_CHECK_S  # idle: only the parent check wakes it


def test_jitter_is_uniform_around_the_delay_and_may_reorder() -> None:
    line = DelayLine(50, 10, rng=random.Random(7))
    draws = [line.draw_s() for _ in range(20_000)]
    assert 0.040 <= min(draws) < 0.0402 and 0.0598 < max(draws) <= 0.060
    assert statistics.mean(draws) == pytest.approx(0.050, abs=0.0003)
    assert statistics.pstdev(draws) == pytest.approx(0.020 / 12**0.5, rel=0.03)  # uniform over 20 ms
    packets = [FakePacket(str(i)) for i in range(50)]
    for i, p in enumerate(packets):
        line.push(p, i * 0.001)  # 1 ms apart, jitter +-10 ms: like netem, order is not kept
    released = line.due(1.0)
    assert sorted(released, key=lambda p: int(p.name)) == packets and released != packets


def test_rules_queue_each_interface_before_conntrack() -> None:
    assert delay.rules(("wan", "lan")) == (
        "*raw\n"
        "-A PREROUTING -i wan -j NFQUEUE --queue-num 0\n"
        "-A PREROUTING -i lan -j NFQUEUE --queue-num 0\n"
        "COMMIT\n"
    )
    assert delay.argv(50, 2.5)[-3:] == ["--delay-ms=50", "--jitter-ms=2.5", "--queue=0"]


# ---- measured in a real lab -------------------------------------------------------------------------------


SO_TIMESTAMPNS = 35  # socket.h; Python's socket module does not export it
STAMP = struct.Struct("ddd")


@contextmanager
def echo_server(lab: Lab) -> Iterator[None]:
    """A UDP echo on the server, in a thread: answers (client's send time, kernel arrival time, send time)."""
    sock = _stamped(netns.socket_in(lab.netns("server")))
    sock.bind(SERVER)
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer, arrived = _recv_stamped(sock)
            except TimeoutError:
                continue
            sock.sendto(STAMP.pack(STAMP.unpack(data)[0], arrived, time.time()), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        sock.close()


def rtts_ms(lab: Lab, count: int = 40, gap_s: float = 0.01) -> tuple[list[float], int]:
    """Network round trips of `count` datagrams from host a, one at a time: (answered ones, lost).

    A round trip is the sum of the two one-way times, each from a send to the kernel's arrival timestamp
    (SO_TIMESTAMPNS): the echo's and the client's wake-up on a loaded machine are not the network's.
    """
    out, lost = [], 0
    with echo_server(lab), _stamped(netns.socket_in(lab.netns("a"))) as cli:
        cli.settimeout(1.0)
        for _ in range(count):
            sent = time.time()
            cli.sendto(STAMP.pack(sent, 0, 0), SERVER)
            try:
                while True:
                    data, _, back = _recv_stamped(cli)
                    echoed, arrived, answered = STAMP.unpack(data)
                    if echoed == sent:  # not a late answer to an earlier, timed-out probe
                        break
            except TimeoutError:
                lost += 1
                continue
            out.append(((arrived - sent) + (back - answered)) * 1000)
            time.sleep(gap_s)
    return out, lost


def pipelined_rtts_ms(lab: Lab, count: int, gap_s: float) -> tuple[list[float], int]:
    """Like rtts_ms, but probes leave every gap_s without awaiting answers: a lost one costs no timeout."""
    answers: dict[float, float] = {}
    with echo_server(lab), _stamped(netns.socket_in(lab.netns("a"))) as cli:
        cli.settimeout(0.001)
        sent: set[float] = set()
        for _ in range(count):
            stamp = time.time()
            sent.add(stamp)
            cli.sendto(STAMP.pack(stamp, 0, 0), SERVER)
            _collect(cli, answers, until=time.monotonic() + gap_s)
        _collect(cli, answers, until=time.monotonic() + 0.5)  # the last answers, 100 ms away
    assert set(answers) <= sent
    return list(answers.values()), count - len(answers)


def _collect(cli: socket.socket, answers: dict[float, float], until: float) -> None:
    while time.monotonic() < until:
        try:
            data, _, back = _recv_stamped(cli)
        except TimeoutError:
            continue
        sent, arrived, answered = STAMP.unpack(data)
        answers[sent] = ((arrived - sent) + (back - answered)) * 1000


def _stamped(sock: socket.socket) -> socket.socket:
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    return sock


def _recv_stamped(sock: socket.socket) -> tuple[bytes, tuple[str, int], float]:
    data, ancillary, _, peer = sock.recvmsg(2048, 64)
    for level, kind, raw in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            seconds, nanos = struct.unpack("qq", raw[:16])
            return data, peer, seconds + nanos / 1e9
    raise AssertionError("no SO_TIMESTAMPNS on a received datagram")


@pytest.fixture(scope="module")
def undelayed_ms() -> float:
    with Lab(standard_topology("port-restricted-cone", "open"), coturn=False) as lab:
        return statistics.mean(rtts_ms(lab)[0])


@pytest.mark.root
@pytest.mark.parametrize("jitter_ms", [0, 10])
def test_rtt_through_one_delayed_site(no_leftovers: None, undelayed_ms: float, jitter_ms: float) -> None:
    imp = Impairment(delay_ms=50, jitter_ms=jitter_ms)
    with Lab(standard_topology("port-restricted-cone", "open", impair_a=imp), coturn=False) as lab:
        rtts, lost = rtts_ms(lab)
    want = 100 + undelayed_ms
    assert lost == 0
    assert abs(statistics.mean(rtts) - want) <= 0.1 * want, (statistics.mean(rtts), want, rtts)
    spread = statistics.pstdev(rtts)
    if jitter_ms:
        # Two independent uniform draws of +-10 ms: a standard deviation of 8.2 ms.
        assert 4 < spread < 14, rtts
    else:
        assert min(rtts) >= 100, rtts  # never early: the delay is a floor


@pytest.mark.root
def test_the_delay_line_ends_with_its_lab(no_leftovers: None) -> None:
    topo = standard_topology(
        "symmetric", "full-cone", impair_a=Impairment(delay_ms=5), impair_b=Impairment(delay_ms=5)
    )
    with Lab(topo, coturn=False) as lab:
        if impair.delay_backend_here() != impair.NFQUEUE:
            pytest.skip("this kernel has sch_netem: the lab uses netem, not the delay line")
        lines = {site: _delay_lines(lab.netns(site)) for site in ("nat-a", "nat-b")}
        assert all(len(pids) == 1 for pids in lines.values()), lines
    for pids in lines.values():
        assert not any(_is_delay_line(pid) for pid in pids)


def _delay_lines(netns_name: str) -> list[int]:
    """Pids of delay-line processes inside a namespace (matched by its bind mount's device and inode)."""
    st = os.stat(netns.path(netns_name))
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ns = os.stat(f"/proc/{entry}/ns/net")
        except OSError:
            continue
        if (ns.st_dev, ns.st_ino) == (st.st_dev, st.st_ino) and _is_delay_line(int(entry)):
            found.append(int(entry))
    return found


def _is_delay_line(pid: int) -> bool:
    try:
        return b"netsim.lab.delay" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@pytest.mark.root
def test_forced_delay_line_with_loss(no_leftovers: None, undelayed_ms: float) -> None:
    """The delay line (forced, so netem kernels test it too) keeps random loss working."""
    with Lab(standard_topology("full-cone", "open"), coturn=False) as lab:
        imp = Impairment(delay_ms=50, loss_pct=20)
        procs = impair.apply(lab.netns("nat-a"), imp, delay_backend=impair.NFQUEUE)
        try:
            assert len(procs) == 1
            rtts, lost = pipelined_rtts_ms(lab, count=300, gap_s=0.005)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=5)
    # Each round trip crosses the lossy router twice: 1 - 0.8**2 = 36 % lost (sigma 2.8 % over 300).
    assert 0.26 < lost / 300 < 0.46, lost
    want = 100 + undelayed_ms
    assert abs(statistics.mean(rtts) - want) <= 0.1 * want, rtts


@pytest.mark.root
def test_rate_with_delay(no_leftovers: None) -> None:
    """2 Mbit/s with 50 ms of delay: the rate holds, and the delay too."""
    imp = Impairment(rate_kbit=2000, delay_ms=50)
    with Lab(standard_topology("full-cone", "open", impair_a=imp), coturn=False) as lab:
        kbit = rate_kbit(lab, 9995)
        time.sleep(0.5)  # TBF's queue (up to 200 ms at the rate) drains before the round trips
        rtts, lost = rtts_ms(lab, count=10)
    assert 1400 < kbit < 2300, kbit
    assert lost == 0 and 100 <= statistics.mean(rtts) <= 115, rtts


@pytest.mark.root
def test_rules_stay_in_the_router(no_leftovers: None) -> None:
    """The delay line's queue rules live in the router's namespace only (conftest guards the root one)."""
    with Lab(standard_topology("full-cone", "open", impair_a=Impairment(delay_ms=5)), coturn=False) as lab:
        if impair.delay_backend_here() != impair.NFQUEUE:
            pytest.skip("this kernel has sch_netem: the lab uses netem, not the delay line")
        listing = ["iptables-nft", "-t", "raw", "-S"]
        in_router = lab.run("nat-a", listing, capture_output=True, text=True).stdout
        in_host = lab.run("a", listing, capture_output=True, text=True).stdout
    assert "-A PREROUTING -i wan -j NFQUEUE --queue-num 0" in in_router
    assert "-A PREROUTING -i lan -j NFQUEUE --queue-num 0" in in_router
    assert "NFQUEUE" not in in_host


@pytest.mark.root
@pytest.mark.alone  # aiortc times its echoes in Python: other tests' load added 18 ms to the median in CI
def test_a_session_through_one_delayed_site(no_leftovers: None) -> None:
    """A real aiortc session: its echo round trip grows by 100 ms through `delay_ms = 50` at nat-a."""
    from netsim.peers.launcher import Launcher
    from netsim.session.options import SessionOptions
    from netsim.session.run import run_session

    rtt: dict[float, float] = {}
    with Launcher() as launcher:
        launcher.wait_ready()
        for delay_ms in (0.0, 50.0):
            imp = Impairment(delay_ms=delay_ms) if delay_ms else None
            with Lab(standard_topology("full-cone", "port-restricted-cone", impair_a=imp)) as lab:
                # Without TURN: a relay that wins the nomination race would measure another path.
                rec = run_session(lab, SessionOptions(turn=NO_TURN, deadline_s=10.0), launcher=launcher)
            assert rec["verdict"] == "direct", rec["reason"]
            assert rec["timings"]["rtt_ms"] is not None
            rtt[delay_ms] = rec["timings"]["rtt_ms"]
    print(rtt)  # shown when the assertion fails
    want = 100 + rtt[0.0]
    assert abs(rtt[50.0] - want) <= 0.1 * want, rtt
