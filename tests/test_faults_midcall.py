"""Faults of the lab's own parts mid-call, recorded as they happened (root): coturn killed 3 s into a held
relayed call, one Chromium killed mid-call, the signaling server stopped for 15 s during a population. Each
checks that the record and the terminal tell the same story. The harness (private registry, the run's
processes by pid and start time) is tests/test_faults.py's."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netsim.cli.pair import format_record
from tests.test_faults import Run, _family_namespaces, _leftovers, _processes_of, _reap

pytestmark = pytest.mark.root
CONNECT_TIMEOUT_S = 90.0


@pytest.fixture(autouse=True)
def _short_runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A private registry with a short path: Chromium's socket path (TMPDIR inside the lab's directory)
    holds 107 bytes, and pytest's tmp_path is too long for it."""
    directory = Path(tempfile.mkdtemp(prefix="nsr"))
    monkeypatch.setenv("NETSIM_TEST_RUNTIME", str(directory))
    try:
        yield
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _start_out(tmp_path: Path, argv: list[str]) -> tuple[Run, Path]:
    """A netsim run in its own session and private registry, its stdout kept in a file."""
    runtime, work = Path(os.environ["NETSIM_TEST_RUNTIME"]) / "run", tmp_path / "work"
    (work / "reports").mkdir(parents=True)
    out = tmp_path / "stdout.txt"
    env = {**os.environ, "NETSIM_RUNTIME_DIR": str(runtime), "NETSIM_REPORTS": str(work / "reports")}
    with out.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "netsim", *argv],
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.PIPE,
            env=env,
            cwd=work,
            start_new_session=True,
        )
    return Run("midcall", proc, runtime), out


def _wait_connected(run: Run) -> None:
    """Until both peers of the held call said they connected (their `.up` files in the lab directory)."""
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while len(list(run.runtime.glob("*/peers/*.up"))) < 2:
        assert run.proc.poll() is None, run.proc.stderr.read().decode()  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the call never connected"
        time.sleep(0.05)


def _descendant(run: Run, match: str) -> int:
    """The pid of the run's own descendant whose command line contains `match` (found by walking its process
    tree from its pid; never a process of anybody else)."""
    for pid, _start in sorted(_processes_of(run)):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if match in cmdline and pid != run.proc.pid:
            return pid
    raise AssertionError(f"no process of the run matches {match!r}")


def _finish(run: Run) -> tuple[str, str]:
    assert run.proc.stderr is not None
    run.proc.wait(timeout=120)
    err = run.proc.stderr.read().decode()
    run.proc.stderr.close()
    return err, ""


def _held_call(tmp_path: Path, argv: list[str], victim: str) -> tuple[dict, str, Run]:  # type: ignore[type-arg]
    run, out = _start_out(tmp_path, argv)
    try:
        _wait_connected(run)
        time.sleep(3.0)
        os.kill(_descendant(run, victim), signal.SIGKILL)
        run.processes = _processes_of(run)
        err, _ = _finish(run)
        assert "Traceback" not in err, err
        record = json.loads(out.read_text())
        return record, err, run
    finally:
        _reap([run])


def _agree(record: dict, code: int) -> str:  # type: ignore[type-arg]
    """The terminal's text (`netsim pair` prints format_record) and the exit code say what the record says."""
    text = format_record(record)  # type: ignore[arg-type]
    call = record["call"]
    assert f"call: {call['outcome']}" in text and str(call["cause"]) in text
    expected_code = {"violated": 1, "inconclusive": 4}[record["outcome"]]
    assert code == expected_code, (code, record["outcome"])
    if record["outcome"] == "violated":  # the call was expected to hold
        assert "expectation violated" in text and "call" in str(record["mismatch"])
    return text


def test_coturn_killed_3_s_into_a_held_relayed_call(tmp_path: Path) -> None:
    argv = ["pair", "--nat-a", "symmetric", "--nat-b", "symmetric", "--policy", "relay", "--hold", "12"]
    argv += ["--no-needs-relay", "--expect-call", "held", "--retries", "0", "--json"]
    record, _err, run = _held_call(tmp_path, argv, "turnserver")
    assert record["verdict"] == "relay" and record["connect_s"] is not None  # it did connect, over TURN
    assert record["call"]["outcome"] == "dropped"
    assert "coturn exited" in str(record["call"]["cause"])
    _agree(record, run.proc.returncode)
    assert _leftovers(run) == []


def test_one_chromium_killed_mid_call_keeps_the_connect(tmp_path: Path) -> None:
    argv = ["pair", "--peer-a", "chromium", "--peer-b", "chromium", "--nat-a", "full-cone", "--nat-b", "open"]
    argv += ["--hold", "12", "--no-needs-relay", "--expect-call", "held", "--retries", "0", "--json"]
    record, _err, run = _held_call(tmp_path, argv, "--remote-debugging-pipe")
    assert record["verdict"] in ("direct", "direct-host") and record["connect_s"] is not None
    assert record["a"]["state"] == record["b"]["state"] == "connected"
    assert record["call"]["outcome"] == "dropped"
    assert "browser crashed" in str(record["call"]["cause"])
    _agree(record, run.proc.returncode)
    assert _leftovers(run) == []


def test_signaling_stopped_15_s_during_a_population(tmp_path: Path) -> None:
    """Sessions that could not reach the signaling server are labelled infrastructure failures, shown as
    inconclusive, and left out of the shares, which say how many were left out."""
    argv = ["population", "--mix", "full-cone=1,port-restricted-cone=1", "--size", "40", "--concurrent", "4"]
    argv += ["--retries", "0", "--no-report"]
    run, out = _start_out(tmp_path, argv)
    try:
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        reports = tmp_path / "work" / "reports"
        while not list(reports.glob("*/results.jsonl")):
            assert run.proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        sig = _descendant(run, "netsim signaling")
        os.kill(sig, signal.SIGSTOP)
        time.sleep(15)
        os.kill(sig, signal.SIGCONT)
        run.processes = _processes_of(run)
        err, _ = _finish(run)
        assert "Traceback" not in err, err
        directory = next(reports.glob("*/results.jsonl")).parent
        records = [json.loads(line) for line in (directory / "results.jsonl").read_text().splitlines()]
        broken = [r for r in records if r.get("infrastructure")]
        assert broken, "no session met the stopped signaling server"
        assert all(r["outcome"] == "inconclusive" and "signaling" in r["infrastructure"] for r in broken)
        # No failure counts as a NAT answer: the rest that failed did so starved of CPU (docs/load.md).
        assert all(r["outcome"] == "inconclusive" for r in records if r["verdict"] == "failed")
        left_out = sum(r["outcome"] == "inconclusive" for r in records)
        summary = json.loads((directory / "summary.json").read_text())
        assert summary["inconclusive"] == left_out and summary["violated"] == 0
        text = out.read_text()
        assert f"{left_out} inconclusive sessions left out" in text
        assert text.count(" inconclusive") >= left_out  # each one's terminal line says so
        assert run.proc.returncode == 4
        assert _leftovers(run) == [] and _family_namespaces({p for p, _ in run.processes}) == []
    finally:
        _reap([run])
