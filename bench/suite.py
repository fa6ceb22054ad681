"""Benchmark: wall time of the scenario suite's aiortc groups with -n 2, -n 4 and -n 8, beside the target
(<= 30 s on 2 cores), the whole suite beside its target (<= 180 s), and where a session's time goes.
Needs root.

The aiortc target covers the aiortc groups without the timeline group (63 scenarios; timeline sessions hold
a connection for tens of seconds on purpose and count towards the whole suite's 180 s): `--timeline` adds
it. Runs `pytest -m aiortc -k "not timeline" scenarios/` as subprocesses (each writes its own run under
reports/) and prints every wall time beside the target, the fastest worker count, and with --serial the
serial time and each ratio to it. `--xdist-own` runs the fastest count once more with xdist's own
scheduler instead of netsim.suite.shard's longest-first one, for the ratio between them. `--whole 4,8`
runs the whole suite (aiortc, Chromium, mixed, timeline: `pytest scenarios/`) with each count. With --phases
one more run (at the fastest count) loads this file as a pytest plugin that times each phase of every
session (lab build, coturn start, signaling start, peer start, waiting for the main run, the relay-less run
after it, teardown) and prints their sums and shares, and when each worker started and finished.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
TARGET_S = 30.0
WHOLE_TARGET_S = 180.0
WORKERS = (2, 4, 8)
XDIST_OWN = ["-p", "no:netsim.suite.shard"]  # xdist's own scheduler (and no --shard options)
PHASES_ENV = "NETSIM_BENCH_PHASES"  # set: this module, loaded as a plugin, writes phase times there
_started: dict[str, float] = {}  # epoch time the last pytest run started


def suite_run(
    workers: int | None,
    extra: list[str],
    timeline: bool = False,
    phases_dir: Path | None = None,
    whole: bool = False,
) -> tuple[float, int, str]:
    """(wall seconds, pytest exit code, pytest's last line) of one run of the aiortc groups (`whole`: of
    every group)."""
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--no-report"]
    argv += [] if whole else ["-m", "aiortc", *([] if timeline else ["-k", "not timeline"])]
    argv += [*(["-n", str(workers)] if workers else []), "scenarios/", *extra]
    env = dict(os.environ)
    if phases_dir is not None:
        argv += ["-p", "suite"]
        env["PYTHONPATH"] = os.pathsep.join([str(REPO / "bench"), env.get("PYTHONPATH", "")])
        env[PHASES_ENV] = str(phases_dir)
    t0 = time.perf_counter()
    _started["epoch"] = time.time()
    out = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    return wall, out.returncode, lines[-1] if lines else out.stderr.strip()[-200:]


def _summary(line: str) -> str:
    """'63 passed in 31.2s' -> '63 passed' (pytest's own time includes no interpreter start)."""
    return re.sub(r"\s+in [\d.]+s.*$", "", line.strip("= "))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", default=",".join(map(str, WORKERS)), help="worker counts, e.g. 2,4,8")
    parser.add_argument(
        "--serial", action="store_true", help="also run serially (about 2 minutes) for ratios"
    )
    parser.add_argument("--phases", action="store_true", help="one more run that times each session phase")
    parser.add_argument("--timeline", action="store_true", help="include the timeline group")
    parser.add_argument(
        "--xdist-own", action="store_true", help="the fastest count again with xdist's own scheduler"
    )
    parser.add_argument("--whole", default="", help="worker counts for the whole suite, e.g. 4,8")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments, e.g. -k matrix")
    args = parser.parse_args()
    walls: dict[int, float] = {}
    for n in (int(w) for w in args.workers.split(",")):
        wall, code, last = suite_run(n, args.pytest_args, args.timeline)
        walls[n] = wall
        verdict = "OK" if wall <= TARGET_S and code == 0 else "MISSED"
        print(
            f"aiortc scenario groups with -n {n}: {wall:6.1f} s  target <= {TARGET_S:.0f} s  {verdict}  ",
            end="",
        )
        print(f"({_summary(last)}, pytest exit {code})", flush=True)
    fastest = min(walls, key=lambda n: walls[n])
    print(f"fastest: -n {fastest} ({walls[fastest]:.1f} s)")
    if args.xdist_own:
        own, code, last = suite_run(fastest, [*args.pytest_args, *XDIST_OWN], args.timeline)
        print(f"aiortc scenario groups with -n {fastest}, xdist's own scheduler: {own:6.1f} s  ", end="")
        ratio = walls[fastest] / own
        print(f"({_summary(last)}, pytest exit {code}); longest first / xdist's own = {ratio:.2f}")
    for n in (int(w) for w in args.whole.split(",") if w):
        wall, code, last = suite_run(n, args.pytest_args, whole=True)
        verdict = "OK" if wall <= WHOLE_TARGET_S and code == 0 else "MISSED"
        print(
            f"whole suite with -n {n}: {wall:6.1f} s  target <= {WHOLE_TARGET_S:.0f} s  {verdict}  ", end=""
        )
        print(f"({_summary(last)}, pytest exit {code})", flush=True)
    if args.serial:
        serial, code, last = suite_run(None, args.pytest_args, args.timeline)
        ratios = ", ".join(f"serial / -n {n} = {serial / w:.2f}" for n, w in walls.items())
        print(f"aiortc scenario groups serial:  {serial:6.1f} s  ({_summary(last)}, pytest exit {code})")
        print(f"  {ratios}")
    if args.phases:
        with tempfile.TemporaryDirectory() as tmp:
            wall, code, last = suite_run(fastest, args.pytest_args, args.timeline, Path(tmp))
            print(f"\nphases of every session, run with -n {fastest}: {wall:.1f} s ({_summary(last)})")
            print_phases(merge_phases(Path(tmp)), fastest, wall)
            print_timelines(merge_timelines(Path(tmp)), _started["epoch"])


# ---- the phase plugin (loaded in every pytest process with `-p suite` when PHASES_ENV is set) --------------

PHASES = {
    "lab": "lab build (namespaces, links, NAT rules)",
    "coturn": "coturn start to ready",
    "signaling": "signaling server start",
    "peers": "peer start (main and relay-less run)",
    "wait": "main run: waiting for both verdicts",
    "relay_less": "relay-less run: waiting after the main run",
    "teardown": "lab teardown (services, peers, namespaces)",
}
_totals: dict[str, float] = {}
_state = {"in_needs_relay": False}
_tests: list[dict[str, Any]] = []  # {"nodeid", "start", "end"} (epoch seconds) of every test call
_configured: dict[str, float] = {}


def _timed(phase: str | Callable[[], str], fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            name = phase() if callable(phase) else phase
            _totals[name] = _totals.get(name, 0.0) + time.perf_counter() - t0

    return wrapper


def _flagged(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _state["in_needs_relay"] = True
        try:
            return fn(*args, **kwargs)
        finally:
            _state["in_needs_relay"] = False

    return wrapper


def _instrument() -> None:
    from netsim.lab.lab import Lab
    from netsim.services.coturn import Coturn
    from netsim.session import run

    Lab.build = _timed("lab+coturn", Lab.build)  # type: ignore[method-assign]
    Lab.teardown = _timed("teardown", Lab.teardown)  # type: ignore[method-assign]
    Lab.start_signaling = _timed("signaling", Lab.start_signaling)  # type: ignore[method-assign]
    Coturn.start = _timed("coturn", Coturn.start)  # type: ignore[method-assign]
    run.start_peers = _timed("peers", run.start_peers)
    run.wait_peers = _timed(lambda: "relay_less" if _state["in_needs_relay"] else "wait", run.wait_peers)
    run._needs_relay = _flagged(run._needs_relay)


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get(PHASES_ENV):
        _configured["t"] = time.time()
        _instrument()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    t0, start = time.perf_counter(), time.time()
    yield
    if os.environ.get(PHASES_ENV):
        _totals["session"] = _totals.get("session", 0.0) + time.perf_counter() - t0
        _totals["sessions"] = _totals.get("sessions", 0.0) + 1
        _tests.append({"nodeid": item.nodeid, "start": start, "end": time.time()})


def pytest_unconfigure(config: pytest.Config) -> None:
    out = os.environ.get(PHASES_ENV)
    if out and _totals:
        (Path(out) / f"{os.getpid()}.json").write_text(json.dumps(_totals))
        timeline = {"configured": _configured.get("t"), "ended": time.time(), "tests": _tests}
        (Path(out) / f"{os.getpid()}.timeline").write_text(json.dumps(timeline))


def merge_phases(directory: Path) -> dict[str, float]:
    merged: dict[str, float] = {}
    for path in directory.glob("*.json"):
        for key, value in json.loads(path.read_text()).items():
            merged[key] = merged.get(key, 0.0) + value
    if "lab+coturn" in merged:
        merged["lab"] = merged.pop("lab+coturn") - merged.get("coturn", 0.0)
    return merged


def print_phases(totals: dict[str, float], workers: int, wall: float) -> None:
    sessions = int(totals.get("sessions", 0))
    busy = totals.get("session", 0.0)
    if not sessions:
        print("no session was timed")
        return

    def row(label: str, value: float) -> None:
        print(f"{label:<46} {value:8.1f} {value / sessions * 1e3:9.0f} ms {value / busy:6.1%}")

    print(f"{'phase':<46} {'sum s':>8} {'per session':>12} {'share':>6}")
    for key, label in PHASES.items():
        row(label, totals.get(key, 0.0))
    row("other (records, verdicts, expectations)", busy - sum(totals.get(k, 0.0) for k in PHASES))
    row(f"all {sessions} sessions (test calls)", busy)
    idle = workers * wall - busy
    print(f"worker time outside sessions (start-up, launcher, idle): {idle:.1f} s of {workers * wall:.1f} s")


def merge_timelines(directory: Path) -> list[dict[str, Any]]:
    """Every worker's timeline (the plugin's .timeline files), those that ran tests."""
    found = [json.loads(p.read_text()) for p in directory.glob("*.timeline")]
    return [t for t in found if t["tests"]]


def print_timelines(timelines: list[dict[str, Any]], started: float) -> None:
    """When each worker ran its first test and ended its last (seconds from `started`, epoch): a long tail
    shows as workers ending far apart."""
    ends = []
    for i, t in enumerate(sorted(timelines, key=lambda t: t["tests"][0]["start"])):
        tests = sorted(t["tests"], key=lambda x: x["start"])
        first, last = tests[0]["start"] - started, tests[-1]["end"] - started
        busy = sum(x["end"] - x["start"] for x in tests)
        ends.append(last)
        print(
            f"  worker {i}: first test at {first:5.1f} s, last ended at {last:5.1f} s, "
            f"{len(tests):3} tests, busy {busy:5.1f} s"
        )
    if ends:
        print(f"  workers ended between {min(ends):.1f} s and {max(ends):.1f} s")


if __name__ == "__main__":
    main()
