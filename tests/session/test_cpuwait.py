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
