"""How long a session's own processes waited for a CPU while it ran.

The kernel counts, per thread, the time it was runnable but not running (`run_delay`, the second field of
/proc/PID/task/TID/schedstat, in ns). A peer that waits for a CPU misses deadlines that a quiet machine
would meet; the session records the wait (`timings.cpu_wait_s`, per part in `cpu_wait`) so that a miss
under load is judged inconclusive rather than a NAT verdict (netsim.session.load).

Peers are short-lived (an aiortc peer exits when its session ends, a browser is closed once its last peer
is done), so their threads are sampled every SAMPLE_S while the session runs; a thread counts from the
first time it is seen (from 0 for a process started for this session: a new task's counters start at 0),
and what a thread waited after its last sample is lost (at most SAMPLE_S each).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

SAMPLE_S = 0.1
TREE_EVERY = 10  # samples between rescans of a browser's process tree (a scan reads every /proc/*/stat)


def tasks(pid: int) -> list[int]:
    """Every thread of a process (a priority or a schedstat is a thread's, not a process's, on Linux)."""
    try:
        return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return []


def thread_wait_ns(pid: int, tid: int) -> int | None:
    """run_delay of one thread in ns; None when it is gone or the kernel keeps no schedstats."""
    try:
        return int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None


def runqueue_wait_s(pids: list[int]) -> float | None:
    """Seconds the processes' live threads have spent runnable but waiting for a CPU, summed; None where
    nothing could be read (no schedstats)."""
    total, read = 0, False
    for pid in pids:
        for tid in tasks(pid):
            value = thread_wait_ns(pid, tid)
            if value is not None:
                total += value
                read = True
    return total / 1e9 if read else None


def children(pid: int) -> list[int]:
    """pid and its descendants (a browser's process tree), parents first."""
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                kids.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    tree, todo = [], [pid]
    while todo:
        p = todo.pop(0)
        tree.append(p)
        todo.extend(kids.get(p, []))
    return tree


class _Part:
    """The processes of one part of a session (a side's peer, the relay-less run, coturn, signaling)."""

    def __init__(self, pids: Callable[[], list[int]], fresh: bool, tree: bool, threads: bool) -> None:
        self.pids = pids  # called each sample: a browser's pid is known only once it started
        self.fresh = fresh  # started for this session: its threads count from 0
        self.tree = tree  # with every descendant (a browser)
        self.threads = threads  # the ids are threads of this process (the in-process signaling server)
        self.known: list[int] = []
        self.seen = False


class CpuWait:
    """Samples the run_delay of a session's processes in a thread; `stop` returns seconds per part.

    A thread is counted for the first part that names it (the relay-less run's page lives in the same
    browser as the main run's). Use as a context manager, or start/stop.
    """

    def __init__(self, sample_s: float = SAMPLE_S) -> None:
        self.sample_s = sample_s
        self.parts: dict[str, _Part] = {}
        self.first: dict[tuple[int, int], int] = {}  # (pid, tid) -> run_delay when first seen (ns)
        self.last: dict[tuple[int, int], int] = {}
        self.owner: dict[tuple[int, int], str] = {}
        self.read_any = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._samples = 0

    def watch(
        self,
        name: str,
        pids: Callable[[], list[int]],
        fresh: bool = False,
        tree: bool = False,
        threads: bool = False,
    ) -> None:
        """Add processes (or, with `threads`, threads of this process) to a part; a part may get several
        calls (a side's peer and its browser, say), which must agree on the flags."""
        with self._lock:
            part = self.parts.get(name)
            if part is None:
                self.parts[name] = _Part(pids, fresh, tree, threads)
                return
            before = part.pids
            part.pids = lambda: [*before(), *pids()]

    def start(self) -> CpuWait:
        self._thread = threading.Thread(target=self._run, name="cpu-wait", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.sample_s):
            self.sample()

    def sample(self) -> None:
        """Read every thread of every part once."""
        with self._lock:
            rescan = self._samples % TREE_EVERY == 0
            self._samples += 1
            for name, part in self.parts.items():
                try:
                    roots = [p for p in part.pids() if p]
                except Exception:  # a peer object that has no pid yet
                    roots = []
                if part.tree and (rescan or not part.known):
                    part.known = [p for root in roots for p in children(root)]
                pids = part.known if part.tree else roots
                for pid in pids:
                    for tid in [pid] if part.threads else tasks(pid):
                        self._read(name, part, pid, tid)
                part.seen = part.seen or bool(pids)

    def _read(self, name: str, part: _Part, pid: int, tid: int) -> None:
        value = thread_wait_ns(pid, tid)
        if value is None:
            return
        self.read_any = True
        key = (pid, tid)
        if key not in self.first:
            if self.owner.setdefault(key, name) != name:
                return
            # Born since the part was first sampled, or a process started for the session: from 0.
            self.first[key] = 0 if part.fresh or part.seen else value
        if self.owner.get(key) == name:
            self.last[key] = value

    def stop(self) -> dict[str, float] | None:
        """Stop sampling (one last sample first); seconds waited per part, None without schedstats."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.sample()
        return self._per_part(lambda waits: sum(waits, 0.0))

    def longest(self) -> dict[str, float] | None:
        """Per part, the longest any one of its threads waited, in seconds (after `stop`; None without
        schedstats). Unlike the sum, it does not grow with the number of threads: a browser's ~100 threads
        each wait a little at every wake-up on a busy machine, while its peer's own thread may not."""
        return self._per_part(lambda waits: max(waits, default=0.0))

    def _per_part(self, combine: Callable[[list[float]], float]) -> dict[str, float] | None:
        """Each part's threads' waits (seconds since first seen), combined; None without schedstats."""
        if not self.read_any:
            return None
        waits: dict[str, list[float]] = {name: [] for name in self.parts}
        for key, value in self.last.items():
            waits[self.owner[key]].append(max(0, value - self.first[key]) / 1e9)
        return {name: round(combine(w), 3) for name, w in waits.items()}

    def __enter__(self) -> CpuWait:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()


def total(parts: dict[str, float] | None) -> float | None:
    """All parts' wait, summed (the session's `timings.cpu_wait_s`)."""
    return None if parts is None else round(sum(parts.values()), 3)
