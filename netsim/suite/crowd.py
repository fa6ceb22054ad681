"""Many pairs in one lab, as a real TURN server sees them: every pairing of a population gets two sites of
one shared lab (one coturn, one signaling server), and up to K sessions run at once.

Each session runs in a thread of this process with `run_session`; the peers are forked by one launcher.
Sessions start in a ramp (a few at a time) and their connect deadline grows with the number running, since
on two cores 200 peers negotiating at once are slower than two. The relay-less needs_relay run is left out:
the NAT matrix already answers that per cell, and it would double the peers. The lab resolves its neighbours
statically, so it does not fill the kernel's neighbour table that every namespace on the machine shares.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import signal
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netsim import runfiles
from netsim.lab import nftables
from netsim.lab.lab import Lab
from netsim.lab.nat import preset
from netsim.lab.topology import Carrier, Site, Topology
from netsim.peers.browser import page_directory
from netsim.peers.launcher import Launcher
from netsim.records import Attempt, ResultRecord
from netsim.session.cpuwait import runqueue_wait_s, tasks
from netsim.session.load import RETRY_GROWTH
from netsim.session.options import SessionOptions, connect_deadline
from netsim.session.run import run_session
from netsim.suite.expectations import Expectation
from netsim.suite.experiment import experiment
from netsim.suite.mixes import MixError, split_kind
from netsim.suite.parallel import WriteStop
from netsim.suite.runner import DEFAULT_RETRIES, Counts, Done, attempt_entry, expectation_or_none, label
from netsim.suite.scenario import Scenario
from netsim.vocab import AIORTC, PASSED, PION, UDP_BLOCKED, VIOLATED

MAX_PAIRS = 120  # two sites a pair; site N's WAN is 198.18.N.1 and its LAN 10.N.0.0/24
CARRIER_WAN_BASE = 100  # carrier C's WAN is 198.18.(100 + C).1 (netsim.lab.topology.plan)
# The kernel's ARP table is one for all namespaces, capped by the root namespace's gc_thresh3 (1024 by
# default), which netsim must not change; past the cap new entries fail ("neighbor table overflow") and late
# sessions cannot reach the signaling server at all. The crowd's lab resolves its neighbours statically
# (permanent entries are exempt from the cap, see Lab(static_neighbours=True)) except between two sites'
# routers, which the lab leaves to ARP on a segment this large: a pair's two routers learn each other.
NEIGH_PER_PAIR = 2
NEIGH_SHARE = 0.75  # of the table one lab may take: other labs on the machine need theirs
GC_THRESH3 = Path("/proc/sys/net/ipv4/neigh/default/gc_thresh3")
ARP_STATS = Path("/proc/net/stat/arp_cache")  # the table's counters, one line per CPU (read only)
RELAY_COUNTERS = "netsim_crowd"  # nftables table in the server's namespace counting relayed bytes
# The shared servers run before the peers on the CPU, as servers on machines of their own would. Among 200
# peers (and whatever else the machine runs) coturn's and the signaling server's threads waited 62-215 s in
# all for a CPU during a 100-pair run and 1-9 % of the sessions missed their deadline; at -10, 1-21 s and
# none. They use little CPU (coturn ~0.3 s for 100 pairs), so others lose little to them.
SERVICE_NICE = -10
# Between session starts: a burst of peer start-ups and handshakes at once costs more than it saves. Sized by
# what starting a session costs its stack (the heavier side of a pairing counts): aiortc's 0.15 s was tuned
# on 200 aiortc peers; a Pion peer is a static Go binary that starts in ~0.02 CPU-s.
RAMP_S = {AIORTC: 0.15, PION: 0.02}
DEFAULT_RAMP_S = 0.15  # Chromium's pages, and programs users bring (their cost is unknown)
LOAD_DEADLINE_S = 0.1  # extra connect deadline per session running at once


def crowd_topology(scenarios: list[Scenario]) -> tuple[Topology, list[tuple[str, str]]]:
    """One topology with two sites per scenario (its NAT kinds: plain, udp-blocked or CGN-layered), and the
    (host a, host b) of each scenario in order.

    CGN-layered homes sit behind carriers shared as in the field: one carrier per CGN kind and side, so
    that many homes share it but a pairing's two homes never do (in its own lab each side has a carrier of
    its own; two homes behind one CGN would be a different cell, hairpinning through it)."""
    most = max_pairs()
    if not 0 < len(scenarios) <= most:
        why = (
            "two sites a pair, each with its own public address 198.18.N.1"
            if most == MAX_PAIRS
            else f"the kernel's neighbour table, shared by every namespace, holds {neigh_cap()} entries"
        )
        got = len(scenarios)
        raise MixError(
            f"--size: one lab holds 1 to {most} pairs here, got {got} ({why}; see docs/population.md)"
        )
    sites, hosts = [], []
    carriers: dict[tuple[str, str], Carrier] = {}
    for i, scn in enumerate(scenarios):
        pair = []
        for side, kind in (("a", scn.nat_a), ("b", scn.nat_b)):
            home, cgn = split_kind(kind)
            behind = None
            if cgn is not None:
                carrier = carriers.setdefault((cgn, side), Carrier(f"cgn{len(carriers)}{side}", preset(cgn)))
                behind = carrier.name
            host = f"h{i}{side}"
            sites.append(Site(f"r{i}{side}", preset(home), (host,), behind=behind))
            pair.append(host)
        hosts.append((pair[0], pair[1]))
    return Topology(
        "crowd", sites=_clear_of_carriers(sites, len(carriers)), carriers=tuple(carriers.values())
    ), hosts


def _clear_of_carriers(sites: list[Site], carriers: int) -> tuple[Site, ...]:
    """The sites in an order where the N-th (1-based) with a public WAN 198.18.N.1 never takes a carrier's
    198.18.(100 + C).1: positions 101 to 100 + carriers go to sites behind a carrier (every carrier has
    one, so there are enough)."""
    if len(sites) <= CARRIER_WAN_BASE or not carriers:
        return tuple(sites)
    behind = [s for s in sites if s.behind is not None]
    spots = range(CARRIER_WAN_BASE, CARRIER_WAN_BASE + carriers)  # 0-based positions 100..
    moved = {id(s) for s in behind[: len(spots)]}
    rest = iter(s for s in sites if id(s) not in moved)
    out: list[Site] = []
    for pos in range(len(sites)):
        out.append(behind[pos - CARRIER_WAN_BASE] if pos in spots else next(rest))
    return tuple(out)


def neigh_cap() -> int:
    """The machine's neighbour table cap (read only: a root-namespace sysctl)."""
    try:
        return int(GC_THRESH3.read_text())
    except (OSError, ValueError):
        return 1024


def max_pairs() -> int:
    """Pairs one lab holds: the addressing limit, or the share of the neighbour table its dynamic entries
    may take, whichever is smaller."""
    return min(MAX_PAIRS, int(neigh_cap() * NEIGH_SHARE) // NEIGH_PER_PAIR)


def table_fulls() -> int | None:
    """How often the kernel refused a neighbour entry since boot ("neighbor table overflow"), all CPUs;
    the counter is machine-wide, so a rise during a run may also come from another lab."""
    try:
        lines = ARP_STATS.read_text().splitlines()
        column = lines[0].split().index("table_fulls")
        return sum(int(line.split()[column], 16) for line in lines[1:] if line.strip())
    except (OSError, ValueError, IndexError):
        return None


@dataclass(frozen=True)
class CrowdStats:
    """What the shared TURN server saw during the run."""

    pairs: int
    concurrent: int
    build_s: float
    run_s: float
    allocations: int  # successful TURN allocations coturn logged
    coturn_cpu_s: float | None  # user + system CPU time of coturn over the run
    agreement: float | None  # share of sessions whose outcome matches their cell's expectation
    relayed_bytes: int | None = None  # IP bytes to and from coturn's relay address (both directions)
    neigh_table_fulls: int | None = None  # neighbour entries the kernel refused during the run, machine-wide
    load_1m: float | None = None  # the machine's 1-minute load average at the end: others' work included
    services_wait_s: float | None = None  # time coturn and signaling were runnable but waited for a CPU


def _coturn_cpu_s(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_crowd(
    scenarios: list[Scenario],
    concurrent: int,
    table: dict[str, Any],
    directory: Path,
    show: Any = print,
    retries: int = DEFAULT_RETRIES,
) -> tuple[Counts, CrowdStats]:
    """Run every scenario's pairing in one shared lab, `concurrent` at a time; records go to `directory`.
    A session that load made inconclusive runs again in the same lab with twice the deadline, up to
    `retries` times. Returns how the sessions ended and the run's figures.

    Interrupted (Ctrl-C, SIGTERM), sessions not started are dropped and the lab's teardown ends the running
    ones at once (their peers die with it); the records written so far stay."""
    topo, hosts = crowd_topology(scenarios)
    t0 = time.monotonic()
    counts = Counts()
    passed = checked = 0
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        # The pool's shutdown comes first on the way out (queued sessions never start), then the lab's
        # teardown, which ends the running sessions' peers at once.
        with (
            Launcher() as launcher,
            Lab(topo, static_neighbours=True) as lab,
            contextlib.ExitStack() as stack,
        ):
            build_s = time.monotonic() - t0
            # Its own process: in this one it would share the GIL with every session thread.
            lab.start_signaling(in_process=False, static_dir=page_directory())
            meter = _Meter(lab)
            running = min(concurrent, len(scenarios))
            t1 = time.monotonic()
            pool = ThreadPoolExecutor(max_workers=running)
            stack.callback(pool.shutdown, wait=False, cancel_futures=True)  # on a stop: none starts
            futures: dict[Future[ResultRecord], tuple[Scenario, SessionOptions, list[Attempt]]] = {}
            for i, (scn, (a, b)) in enumerate(zip(scenarios, hosts, strict=True)):
                blocked = [scn.nat_a, scn.nat_b].count(UDP_BLOCKED)
                # The load's allowance covers Pion's relay wait once 20 sessions run at once, and then both
                # stacks get the same deadline; in smaller crowds the stack's own rule (connect_deadline).
                loaded = connect_deadline(blocked) + LOAD_DEADLINE_S * running
                deadline = max(loaded, connect_deadline(blocked, scn.options.peer_a))
                opts = scn.options.replace(host_a=a, host_b=b, needs_relay=False, deadline_s=deadline)
                delay = i * ramp_s(opts.peer_a, opts.peer_b) if i < running else 0.0
                futures[pool.submit(_one, lab, launcher, opts, delay)] = (scn, opts, [])
            while futures:
                # A timeout, so that a signal the kernel gave a session thread acts here within 0.5 s.
                done, _ = wait(futures, timeout=0.5, return_when=FIRST_COMPLETED)
                if not done:
                    continue
                future = done.pop()
                scn, opts, attempts = futures.pop(future)
                record = future.result()
                attempts.append(attempt_entry(record, opts.deadline_s))
                if attempts[-1]["inconclusive"] and len(attempts) <= retries:
                    again = opts.replace(deadline_s=opts.deadline_s * RETRY_GROWTH)
                    futures[pool.submit(_one, lab, launcher, again, 0.0)] = (scn, again, attempts)
                    continue
                record["attempts"] = attempts
                expected = _expectation(scn, table)
                problem = label(record, scn, directory.name, 0, expected, experiment(scn))
                _append(directory, record)
                counts.add(
                    Done(scn.id, 0, record["verdict"], None, record["outcome"], problem, len(attempts))
                )
                if record["outcome"] in (PASSED, VIOLATED):
                    checked += 1
                    passed += record["outcome"] == PASSED
                show(f"{scn.id:<60} {record['verdict']:<11} {record.get('outcome')}")
            run_s = time.monotonic() - t1
            seen = meter.read(lab)
    finally:
        signal.signal(signal.SIGTERM, previous)
    stats = CrowdStats(
        pairs=len(scenarios),
        concurrent=running,
        build_s=round(build_s, 3),
        run_s=round(run_s, 3),
        agreement=round(passed / checked, 4) if checked else None,
        **seen,
    )
    return counts, stats


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _append(directory: Path, record: ResultRecord) -> None:
    try:
        runfiles.append_record(directory, record)
    except OSError as exc:  # a full disk: the run stops, naming the file
        raise WriteStop(f"{directory / runfiles.RESULTS_FILE}: {exc.strerror or exc}") from None


class _Meter:
    """What the shared servers and the kernel did from now until `read`: coturn's allocations, CPU and
    relayed bytes, the servers' wait for a CPU, neighbour entries the kernel refused. Starting it also gives
    the servers their priority and sets up the relay counter."""

    def __init__(self, lab: Lab) -> None:
        assert lab.coturn is not None
        self.coturn = lab.coturn.process.pid if lab.coturn.process is not None else None
        _count_relayed(lab)
        self.services = [p.pid for p in (lab.coturn.process, lab.signaling_process) if p is not None]
        prioritise(self.services)
        self.wait0 = runqueue_wait_s(self.services)
        self.fulls0 = table_fulls()
        self.cpu0 = _coturn_cpu_s(self.coturn) if self.coturn else None
        self.log0 = lab.coturn.log_size()

    def read(self, lab: Lab) -> dict[str, Any]:
        """The CrowdStats fields measured since the start."""
        assert lab.coturn is not None
        cpu1 = _coturn_cpu_s(self.coturn) if self.coturn else None
        wait1, fulls1 = runqueue_wait_s(self.services), table_fulls()
        return {
            "allocations": len(re.findall(r"ALLOCATE processed, success", lab.coturn.log_since(self.log0))),
            "coturn_cpu_s": _delta(self.cpu0, cpu1, 3),
            "relayed_bytes": _relayed_bytes(lab),
            "neigh_table_fulls": _delta(self.fulls0, fulls1, 0),
            "load_1m": round(os.getloadavg()[0], 1),
            "services_wait_s": _delta(self.wait0, wait1, 3),
        }


def _delta(before: float | None, after: float | None, digits: int) -> Any:
    if before is None or after is None:
        return None
    return round(after - before, digits) if digits else int(after - before)


def prioritise(pids: list[int], nice: int = SERVICE_NICE) -> None:
    """Give every thread of our own processes `pids` the priority `nice`."""
    for pid in pids:
        for tid in tasks(pid):
            try:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
            except OSError:  # the thread ended meanwhile
                pass


def _count_relayed(lab: Lab) -> None:
    """Counters in the server's namespace on coturn's relay address: what it relays, peers' side."""
    relay = lab.addresses(lab.topology.servers[0])[2]
    nftables.load(
        lab.netns(lab.topology.servers[0]),
        f"""table ip {RELAY_COUNTERS} {{
  counter relayed {{ }}
  chain received {{ type filter hook input priority 0; ip daddr {relay} counter name relayed; }}
  chain sent {{ type filter hook output priority 0; ip saddr {relay} counter name relayed; }}
}}
""",
    )


def _relayed_bytes(lab: Lab) -> int | None:
    argv = ["nft", "-j", "list", "counter", "ip", RELAY_COUNTERS, "relayed"]
    out = lab.run(lab.topology.servers[0], argv, capture_output=True, text=True)
    if out.returncode != 0:
        return None
    for item in json.loads(out.stdout).get("nftables", []):
        if "counter" in item:
            return int(item["counter"]["bytes"])
    return None


def ramp_s(peer_a: str, peer_b: str) -> float:
    """The pause between two session starts for this stack pairing (RAMP_S)."""
    return max(RAMP_S.get(peer, DEFAULT_RAMP_S) for peer in (peer_a, peer_b))


def _one(lab: Lab, launcher: Launcher, opts: Any, delay_s: float) -> ResultRecord:
    time.sleep(delay_s)  # the ramp
    return run_session(lab, opts, launcher=launcher)  # Launcher.spawn takes one request at a time


def _expectation(scn: Scenario, table: dict[str, Any]) -> Expectation | None:
    """The cell's expectation, without needs_relay (the relay-less run is left out here)."""
    exp = expectation_or_none(scn, table)
    return None if exp is None else dataclasses.replace(exp, needs_relay=None)
