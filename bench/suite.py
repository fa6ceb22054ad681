"""Benchmark: wall time of the scenario suite's aiortc groups with -n 2, -n 4 and -n 8, beside the target
(<= 30 s on 2 cores), the whole suite beside its target (<= 180 s), and where a session's time goes.
Needs root.

`--versus 47c3236` times the README's main job, the 25-cell matrix-turn-chromium group (-n 4) and the 100
Chromium browser-matrix scenarios here and at that commit (a temporary git worktree, run from its own
sources), back to back, each beside its target (main job <= 0.5x and <= 120 s, matrix-turn-chromium <=
0.5x, browser matrices <= 60 s), with the machine's load around every run. `--reset N` times N resets of a
kept lab (netsim.lab.reset; target: rules swap and flush <= 50 ms).

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
    parser.add_argument(
        "--versus",
        metavar="COMMIT",
        default="",
        help="time the main job and the browser targets here and at COMMIT, back to back (e.g. 47c3236)",
    )
    parser.add_argument("--reset", type=int, default=0, metavar="N", help="time N kept-lab resets")
    parser.add_argument("--runs-to", type=Path, default=None, help="--versus: keep the runs' records here")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments, e.g. -k matrix")
    args = parser.parse_args()
    if args.reset:
        print_resets(args.reset)
    if args.versus:
        versus(args.versus, args.pytest_args, args.runs_to)
    if args.reset or args.versus:
        return
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


# ---- this tree beside an earlier commit (issue 22's targets) ----------------------------------------------

MAIN_JOB = ["-n", "auto", "scenarios/"]  # the README's main job (its -n at the earlier commit: BASE_WORKERS)
BASE_WORKERS = "4"  # the README's main job used -n 4 until workers kept their labs (-n auto since)
MAIN_TARGET_S, MAIN_RATIO = 120.0, 0.5
BROWSERS_TARGET_S = 60.0  # the 100 Chromium browser-matrix scenarios, default workers
TURN_CHROMIUM = ["-n", "4", "-m", "chromium", "-k", "matrix-turn-chromium/", "scenarios/"]
RESET_TARGET_S = 0.05  # a kept lab's rules swap and flushes, per cell


def timed(
    argv: list[str], tree: Path, extra: list[str], keep: Path | None = None
) -> tuple[float, int, str, str]:
    """(wall seconds, exit code, pytest's last line, load averages before/after) of `pytest argv` in `tree`
    (its own sources first on the path: no install needed); its run directory goes under `keep` if given."""
    full = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--no-report", *argv, *extra]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        reports = str(keep.resolve()) if keep is not None else tmp
        t0 = time.perf_counter()
        out = subprocess.run([*full, "--reports", reports], cwd=tree, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    last = lines[-1] if lines else out.stderr.strip()[-200:]
    return wall, out.returncode, _summary(last), f"load {before:.1f} -> {os.getloadavg()[0]:.1f}"


def versus(commit: str, extra: list[str], keep: Path | None = None) -> None:
    """Each target's run at `commit` (a temporary worktree) and here, back to back, beside its target."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(base), commit],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        try:
            rows = [
                ("main job", [*MAIN_JOB[:1], BASE_WORKERS, *MAIN_JOB[2:]], MAIN_JOB),
                ("matrix-turn-chromium -n 4", TURN_CHROMIUM, TURN_CHROMIUM),
                (
                    "100 Chromium browser-matrix scenarios",
                    ["-n", BASE_WORKERS, *BROWSER_MATRICES],
                    ["-n", "auto", *BROWSER_MATRICES],
                ),
            ]
            for name, base_argv, argv in rows:
                then = timed(base_argv, base, extra, keep and keep / "base")
                now = timed(argv, REPO, extra, keep and keep / "here")
                print_versus(name, commit, then, now)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=REPO, capture_output=True)


BROWSER_MATRICES = ["-m", "chromium", "-k", "matrix", "scenarios/"]


def print_versus(
    name: str, commit: str, then: tuple[float, int, str, str], now: tuple[float, int, str, str]
) -> None:
    ratio = now[0] / then[0]
    print(f"{name}: at {commit} {then[0]:6.1f} s ({then[2]}, exit {then[1]}, {then[3]})", flush=True)
    print(f"{'':{len(name)}}  here {now[0]:6.1f} s ({now[2]}, exit {now[1]}, {now[3]})  ratio {ratio:.2f}")
    targets = []
    if name == "main job":
        targets += [
            f"<= {MAIN_RATIO}x: {_ok(ratio <= MAIN_RATIO)}",
            f"<= {MAIN_TARGET_S:.0f} s: {_ok(now[0] <= MAIN_TARGET_S)}",
        ]
    elif name.startswith("matrix-turn"):
        targets.append(f"<= {MAIN_RATIO}x: {_ok(ratio <= MAIN_RATIO)}")
    else:
        targets.append(f"<= {BROWSERS_TARGET_S:.0f} s: {_ok(now[0] <= BROWSERS_TARGET_S)}")
    print(f"{'':{len(name)}}  targets: {', '.join(targets)}", flush=True)


def _ok(met: bool) -> str:
    return "OK" if met else "MISSED"


def print_resets(n: int) -> None:
    """Median and worst of n resets of a kept standard lab (NAT presets cycled): the rules swap and flushes
    (the target), and the whole reset with coturn's restart and the signaling check."""
    import statistics

    from netsim.lab import reset
    from netsim.lab.lab import Lab
    from netsim.lab.topology import standard_topology

    kinds = ["full-cone", "restricted-cone", "port-restricted-cone", "symmetric", "udp-blocked"]
    swaps, whole = [], []
    with Lab(standard_topology("full-cone", "full-cone")) as lab:
        lab.start_signaling()
        for i in range(n):
            t0 = time.perf_counter()
            steps = reset.reset(lab, standard_topology(kinds[i % 5], kinds[(i * 2 + 1) % 5]))
            whole.append(time.perf_counter() - t0)
            swaps.append(steps["rules_s"] + steps["flush_s"])
    med = statistics.median(swaps)
    print(
        f"kept-lab reset, {n} cells: rules swap + flush median {med * 1000:.1f} ms (worst "
        f"{max(swaps) * 1000:.1f} ms)  target <= {RESET_TARGET_S * 1000:.0f} ms: "
        f"{_ok(med <= RESET_TARGET_S)}; "
        f"whole reset with coturn's restart median {statistics.median(whole) * 1000:.1f} ms "
        f"(load {os.getloadavg()[0]:.1f})",
        flush=True,
    )


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
