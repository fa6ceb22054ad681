"""netsim.session.cpuwait: what a session's processes waited for a CPU (schedstat run_delay)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from netsim.session import cpuwait

pytestmark = pytest.mark.skipif(
    not Path(f"/proc/{os.getpid()}/schedstat").exists(), reason="this kernel keeps no schedstats"
)


def test_runqueue_wait_reads_every_thread() -> None:
    assert cpuwait.runqueue_wait_s([os.getpid()]) is not None
    assert cpuwait.runqueue_wait_s([2**22 + 12345]) is None  # no such process: nothing read


def test_busy_processes_on_one_cpu_wait_for_each_other() -> None:
    """Three spinning children pinned to one CPU: each waits about two thirds of the time."""
    cpu = min(os.sched_getaffinity(0))
    spin = (
        "import os,time; os.sched_setaffinity(0,{%d}); t=time.monotonic()\nwhile time.monotonic()-t<1.5: pass"
    )
    meter = cpuwait.CpuWait(sample_s=0.05)
    procs = [subprocess.Popen([sys.executable, "-c", spin % cpu]) for _ in range(3)]
    for i, p in enumerate(procs):
        meter.watch(f"p{i}", lambda p=p: [p.pid], fresh=True)
    meter.start()
    for p in procs:
        p.wait()
    waits = meter.stop()
    assert waits is not None and set(waits) == {"p0", "p1", "p2"}
    assert sum(waits.values()) > 1.0  # ~3 s if alone on the CPU; others' work only adds
    assert cpuwait.total(waits) == pytest.approx(sum(waits.values()), abs=0.01)


def test_a_long_lived_process_counts_from_its_first_sample_and_a_thread_once() -> None:
    meter = cpuwait.CpuWait(sample_s=0.05)
    me = threading.get_native_id()
    meter.watch("self", lambda: [os.getpid()])
    meter.watch("thread", lambda: [me], threads=True)  # already the first part's: counted there only
    meter.start()
    time.sleep(0.2)
    waits = meter.stop()
    assert waits is not None and waits["thread"] == 0.0
    assert 0.0 <= waits["self"] < 1.0  # since the first sample, not since this process started


def test_process_tree_includes_descendants() -> None:
    child = subprocess.Popen(["sh", "-c", "sleep 5 & wait"])
    try:
        deadline = time.monotonic() + 5
        while len(cpuwait.children(child.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert cpuwait.children(child.pid)[0] == child.pid and len(cpuwait.children(child.pid)) == 2
    finally:
        for pid in reversed(cpuwait.children(child.pid)):
            os.kill(pid, 9)
        child.wait()


def test_the_longest_thread_does_not_grow_with_the_number_of_threads() -> None:
    """Four spinning threads of one process pinned to one CPU: the part's sum counts every thread's wait,
    its longest thread only its own (about three quarters of the time each)."""
    cpu = min(os.sched_getaffinity(0))
    spin = (
        "import os,threading,time; os.sched_setaffinity(0,{%d}); t=time.monotonic()\n"
        "def f():\n    while time.monotonic()-t<1.2: pass\n"
        "ts=[threading.Thread(target=f) for _ in range(4)]\n[x.start() for x in ts]; [x.join() for x in ts]"
    )
    meter = cpuwait.CpuWait(sample_s=0.05)
    proc = subprocess.Popen([sys.executable, "-c", spin % cpu])
    meter.watch("p", lambda: [proc.pid], fresh=True)
    meter.start()
    proc.wait()
    waits, longest = meter.stop(), meter.longest()
    assert waits is not None and longest is not None
    assert 0 < longest["p"] <= 1.3  # one thread cannot wait longer than it lived
    assert waits["p"] > 2 * longest["p"]  # the sum adds the threads up
