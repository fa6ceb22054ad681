"""Faults on the command line: `netsim pair`, `matrix` and `up` interrupted or killed in every phase (root).

Each run stops at a pause point (NETSIM_PAUSE_AT, netsim/pause.py) and gets its signal there, so the signal
lands in that phase every time. Afterwards nothing of the run may remain: no namespace, no registry entry,
no process. A run that could clean up (SIGINT, SIGTERM) must have done so itself; after SIGKILL,
`netsim cleanup` with the same private registry (NETSIM_RUNTIME_DIR under tmp_path, so no other lab is
ever touched) must remove the rest. A run's processes are its descendants and whatever runs in its
namespaces, recorded while it is paused and identified by pid plus start time, never by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from netsim.lab import netns, registry
from netsim.lab.lab import PREFIX_ENV
from netsim.pause import PAUSE_ENV

pytestmark = pytest.mark.root

COMMANDS = {
    "pair": ["pair", "--nat-a", "full-cone", "--nat-b", "open", "--no-needs-relay"],
    "matrix": ["matrix", "--kinds", "open", "--no-report"],
    "up": ["up", "--nat-a", "full-cone", "--nat-b", "open"],
}
PHASES = ("imports", "lab-build", "coturn-start", "negotiation")
# How each fault is delivered: (signal, to the whole process group?). Ctrl-C in a terminal signals the group.
FAULTS = {
    "int": (signal.SIGINT, False),
    "int-group": (signal.SIGINT, True),
    "term": (signal.SIGTERM, False),
    "kill": (signal.SIGKILL, False),
    "kill-group": (signal.SIGKILL, True),
}
PAUSE_TIMEOUT_S = 60.0  # generous: the machine is shared and loaded
GONE_TIMEOUT_S = 15.0


_PREFIX = os.environ.get(PREFIX_ENV, "ns")  # the runs inherit it: their labs carry it


@dataclass
class Run:
    """One netsim process in its own session (so a group signal reaches nothing else) and registry."""

    name: str
    proc: subprocess.Popen[bytes]
    runtime: Path
    stderr: bytes = b""
    processes: set[tuple[int, str]] = field(default_factory=set)  # (pid, start time) of the run

    @property
    def ns_pattern(self) -> re.Pattern[str]:
        # Lab ids are <prefix><owner pid in hex><4 hex digits>; the fixed length tells pid 0x1a2 from 0x1a2b.
        return re.compile(rf"{_PREFIX}{self.proc.pid:x}[0-9a-f]{{4}}-")

    def namespaces(self) -> list[str]:
        return [n for n in netns.list_names() if self.ns_pattern.match(n)]


def _start(tmp_path: Path, name: str, argv: list[str], pause_at: str) -> Run:
    work = tmp_path / name
    runtime = tmp_path / "run"  # one private registry per test: one `netsim cleanup` serves every run
    (work / "reports").mkdir(parents=True)
    env = {**os.environ, "NETSIM_RUNTIME_DIR": str(runtime), PAUSE_ENV: pause_at}
    env["NETSIM_REPORTS"] = str(work / "reports")
    proc = subprocess.Popen(
        [sys.executable, "-m", "netsim", *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        cwd=work,  # outside the repository: a matrix run still checks the shipped expectations
        start_new_session=True,
    )
    return Run(name, proc, runtime)


def _wait_paused(run: Run, phase: str) -> None:
    """Read the run's stderr until it says `netsim: paused at <phase>`."""
    assert run.proc.stderr is not None
    marker = f"netsim: paused at {phase} ".encode()
    deadline = time.monotonic() + PAUSE_TIMEOUT_S
    while marker not in run.stderr:
        left = deadline - time.monotonic()
        readable, _, _ = select.select([run.proc.stderr], [], [], max(0.0, left))
        chunk = os.read(run.proc.stderr.fileno(), 65536) if readable else b""
        if not chunk:
            run.proc.kill()
            raise AssertionError(f"{run.name}: never paused at {phase}; stderr:\n{run.stderr.decode()}")
        run.stderr += chunk


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else fields[19]  # a zombie has ended; it only waits to be reaped


def _processes_of(run: Run) -> set[tuple[int, str]]:
    """The run's process, its descendants, and every process in one of its namespaces."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found = {run.proc.pid}
    grew = True
    while grew:
        more = {pid for pid, ppid in parents.items() if ppid in found} - found
        found |= more
        grew = bool(more)
    with registry.held_open(run.namespaces()) as wanted:
        for pid in parents:
            try:
                st = os.stat(f"/proc/{pid}/ns/net")
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in wanted:
                found.add(pid)
    return {(pid, start) for pid in found if (start := _start_time(pid)) is not None}


def _deliver(run: Run, sig: signal.Signals, group: bool) -> None:
    if group:
        os.killpg(run.proc.pid, sig)  # the run leads its own session and group
    else:
        os.kill(run.proc.pid, sig)


def _finish(run: Run) -> None:
    assert run.proc.stderr is not None
    run.proc.wait(timeout=60)
    run.stderr += run.proc.stderr.read()
    run.proc.stderr.close()


def _cleanup(runtime: Path) -> None:
    env = {**os.environ, "NETSIM_RUNTIME_DIR": str(runtime)}
    out = subprocess.run(
        [sys.executable, "-m", "netsim", "cleanup"], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, f"netsim cleanup failed:\n{out.stderr}"


def _leftovers(run: Run) -> list[str]:
    """What remains of the run: processes (waited for a while: some end on EOF), namespaces, entries."""
    deadline = time.monotonic() + GONE_TIMEOUT_S
    alive = run.processes
    while alive and time.monotonic() < deadline:
        alive = {(pid, start) for pid, start in alive if _start_time(pid) == start}
        time.sleep(0.05)
    found = [f"process {pid}" for pid, _ in sorted(alive)]
    found += [f"namespace {n}" for n in run.namespaces()]
    if run.runtime.exists():
        lab_id = re.compile(rf"{_PREFIX}{run.proc.pid:x}[0-9a-f]{{4}}$")
        found += [f"registry {p.name}" for p in run.runtime.iterdir() if lab_id.match(p.name)]
    return found


def _expected_code(sig: signal.Signals, phase: str) -> int:
    if sig == signal.SIGKILL:
        return -signal.SIGKILL
    if sig == signal.SIGINT:
        return 130  # KeyboardInterrupt, after the lab is removed
    # SIGTERM acts like Ctrl-C (SystemExit(143)) from the first lab on; before that nothing is built.
    return -signal.SIGTERM if phase == "imports" else 128 + signal.SIGTERM


def _cases() -> list[tuple[str, str]]:
    return [(c, p) for c in COMMANDS for p in PHASES if not (c == "up" and p == "negotiation")]


@pytest.mark.parametrize(("command", "phase"), _cases(), ids=[f"{c}-{p}" for c, p in _cases()])
def test_every_fault_in_every_phase_leaves_nothing(tmp_path: Path, command: str, phase: str) -> None:
    """One run per fault, all paused in `phase` at once (they share the start-up time)."""
    runs = {f: _start(tmp_path, f, COMMANDS[command], phase) for f in FAULTS}
    problems = []
    try:
        for run in runs.values():
            _wait_paused(run, phase)
            run.processes = _processes_of(run)
        if phase != "imports":  # the lab exists while paused: a check that the checks can see it
            assert all(run.namespaces() for run in runs.values())
        for fault, run in runs.items():
            _deliver(run, *FAULTS[fault])
        for fault, run in runs.items():
            _finish(run)
            if run.proc.returncode != _expected_code(FAULTS[fault][0], phase):
                problems.append(f"{fault}: exit {run.proc.returncode}; stderr:\n{run.stderr.decode()}")
        # Who could clean up did so on its own: checked before `netsim cleanup` may hide a leak.
        for fault, run in runs.items():
            if FAULTS[fault][0] != signal.SIGKILL:
                problems += [f"{fault}: {left} remains" for left in _leftovers(run)]
        _cleanup(tmp_path / "run")
        for fault, run in runs.items():
            problems += [f"{fault}: {left} remains after netsim cleanup" for left in _leftovers(run)]
    finally:
        _reap(runs.values())
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("command", "second"),
    # Two different signals pending at once are handled in signal-number order, so each case sends one kind.
    [("pair", (signal.SIGINT, signal.SIGINT)), ("matrix", (signal.SIGTERM, signal.SIGTERM))],
    ids=["pair-int-int", "matrix-term-term"],
)
def test_interrupts_during_teardown_wait_until_it_is_done(
    tmp_path: Path, command: str, second: tuple[signal.Signals, signal.Signals]
) -> None:
    """Ctrl-C in negotiation starts teardown; more signals while it runs are held, then the first acts."""
    run = _start(tmp_path, command, COMMANDS[command], "negotiation,teardown")
    try:
        _wait_paused(run, "negotiation")
        run.processes = _processes_of(run)
        os.kill(run.proc.pid, signal.SIGINT)
        _wait_paused(run, "teardown")
        assert run.namespaces(), "teardown paused before it started: the lab must still be there"
        for sig in second:
            os.kill(run.proc.pid, sig)
        _finish(run)
        assert run.proc.returncode == _expected_code(second[0], "teardown"), run.stderr.decode()
        assert _leftovers(run) == []  # without `netsim cleanup`
    finally:
        _reap([run])


def _reap(runs: Iterable[Run]) -> None:
    """After a failed check: a run still going is killed with its group, and its private registry emptied."""
    for run in runs:
        if run.proc.poll() is None:
            os.killpg(run.proc.pid, signal.SIGKILL)
            run.proc.wait()
        registry.cleanup(all_labs=True, runtime_dir=run.runtime)


# --- parallel runs: -j 2 and --concurrent, interrupted mid-run --------------------------------------------

PARALLEL = {
    # 9 sessions, 2 at a time; without TURN the cone x symmetric cells wait out their 3 s deadline.
    "j2": ["matrix", "--kinds", "open,full-cone,symmetric", "--turn", "none", "-j", "2", "--no-report"],
    "concurrent": ["population", "--mix", "full-cone=1,symmetric=1", "--size", "12", "--concurrent", "3"],
}
STOP_WITHIN_S = 10.0  # "within a few seconds": a busy worker's lab teardown, on a loaded machine


def _family_namespaces(pids: Iterable[int]) -> list[str]:
    """Namespaces of labs made by any of these processes (a -j run's labs are its workers')."""
    ids = {f"{_PREFIX}{pid:x}" for pid in pids}
    return [n for n in netns.list_names() if n.split("-", 1)[0][:-4] in ids]


def _start_parallel(tmp_path: Path, argv: list[str]) -> tuple[Run, Path]:
    run = _start(tmp_path, "parallel", argv, pause_at="")
    return run, tmp_path / "parallel" / "reports"


def _wait_for_records(run: Run, reports: Path, at_least: int) -> Path:
    """Wait until the run has written `at_least` records (it is then mid-run); its run directory."""
    deadline = time.monotonic() + PAUSE_TIMEOUT_S * 2
    while time.monotonic() < deadline:
        assert run.proc.poll() is None, f"{run.name} ended early: {run.proc.stderr.read().decode()}"  # type: ignore[union-attr]
        for results in reports.glob("*/results.jsonl"):
            if len(results.read_bytes().splitlines()) >= at_least:
                return results.parent
        time.sleep(0.1)
    raise AssertionError("the run wrote no records in time")


@pytest.mark.parametrize("how", ["int-group", "term"])
@pytest.mark.parametrize("mode", list(PARALLEL))
def test_an_interrupted_parallel_run_stops_at_once_and_keeps_its_records(
    tmp_path: Path, mode: str, how: str
) -> None:
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) or SIGTERM to the netsim process of a
    -j 2 or --concurrent run: it exits within seconds with "interrupted", code 130, no traceback; every
    completed record is whole, summary.json is marked partial; no lab, process or semaphore is left."""
    run, reports = _start_parallel(tmp_path, PARALLEL[mode])
    try:
        directory = _wait_for_records(run, reports, 1)
        run.processes = _processes_of(run)
        pids = {pid for pid, _ in run.processes}
        assert _family_namespaces(pids), "mid-run: a lab must exist"
        sig, group = FAULTS[how]
        t0 = time.monotonic()
        _deliver(run, sig, group)
        _finish(run)
        took = time.monotonic() - t0
        err = run.stderr.decode()
        assert run.proc.returncode == 130, err
        assert took < STOP_WITHIN_S, f"took {took:.1f} s to stop"
        assert "netsim: interrupted" in err and "Traceback" not in err and "leaked" not in err, err
        lines = (directory / "results.jsonl").read_bytes().splitlines()
        records = [json.loads(line) for line in lines]  # every line whole
        assert records and all(r.get("outcome") for r in records)
        summary = json.loads((directory / "summary.json").read_text())
        assert summary["partial"] is True and summary["sessions"] == len(records)
        assert not list(directory.glob(".*.tmp"))
        left = _leftovers(run) + [f"namespace {n}" for n in _family_namespaces(pids)]
        assert left == [], left
    finally:
        _reap([run])


# --- a full reports disk mid-run ---------------------------------------------------------------------------


@contextlib.contextmanager
def _small_tmpfs(where: Path, size_kib: int) -> Iterator[Path]:
    """A tmpfs of `size_kib` mounted on `where` in a private mount namespace (`unshare -m`), never on the
    host's mounts; yields the path to it as seen from here (/proc/PID/root/... of the namespace's holder)."""
    where.mkdir(parents=True, exist_ok=True)
    script = f'mount -t tmpfs -o size={size_kib}k netsim-full "$1" && echo up && exec sleep 600'
    holder = subprocess.Popen(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", str(where)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "up\n", "no tmpfs"
        yield Path(f"/proc/{holder.pid}/root") / str(where).lstrip("/")
    finally:
        holder.kill()  # ours, by pid: its mount namespace, and the tmpfs with it, go away
        holder.wait()


def test_a_full_reports_disk_stops_the_run_cleanly(tmp_path: Path) -> None:
    """A write error mid-run: one line naming the file, exit 2, the records written so far whole, no
    truncated line, no temporary file, the labs torn down and nothing else left."""
    with _small_tmpfs(tmp_path / "full", 160) as reports:
        argv = ["matrix", "--kinds", "open,full-cone,symmetric", "--turn", "none", "--no-report"]
        run = _start(tmp_path, "full", [*argv, "--reports", str(reports)], pause_at="")
        try:
            directory = _wait_for_records(run, reports, 1)
            results = directory / "results.jsonl"
            size = len(results.read_bytes())
            # Leave room for less than one more record: the next one fails part-way.
            free = os.statvfs(reports).f_bavail * os.statvfs(reports).f_frsize
            with contextlib.suppress(OSError):
                (reports / "filler").write_bytes(b"\0" * max(0, free - size // 2))
            run.processes = _processes_of(run)
            _finish(run)
            err = run.stderr.decode().strip()
            assert run.proc.returncode == 2, err
            assert err.splitlines()[-1] == f"netsim: error: {results}: No space left on device", err
            assert "Traceback" not in err
            lines = results.read_bytes().split(b"\n")
            assert lines[-1] == b"" and all(json.loads(line) for line in lines[:-1])  # whole lines only
            assert 1 <= len(lines) - 1 < 9
            assert not [p.name for p in directory.iterdir() if p.name.endswith(".tmp")]
            assert _leftovers(run) == []
            pids = {pid for pid, _ in run.processes}
            assert _family_namespaces(pids) == []
        finally:
            _reap([run])
