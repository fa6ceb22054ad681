"""Running scenarios: each in a fresh lab, its record checked against its expectation and appended to the
run's results.jsonl (the results stage's `finish_run` then writes the summary and the report).

The lab, the session and the launcher are imported where a session runs: the pytest controller (which only
schedules and reports) starts its workers ~0.3 s sooner without them."""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netsim import runfiles
from netsim.records import Expected, Experiment, ResultRecord
from netsim.suite.expectations import Expectation, MissingExpectation, expectation, mismatch
from netsim.suite.experiment import experiment
from netsim.suite.progress import RunProgress
from netsim.suite.scenario import Scenario
from netsim.vocab import CHROMIUM

if TYPE_CHECKING:
    from netsim.peers.launcher import Launcher

# Scheduling estimates (bench/suite.py --phases): a session's lab, services, peers, connect and teardown on
# an idle 2-core machine, and what each Chromium side adds (browser start and its slower close).
SESSION_S = 0.8
BROWSER_S = 1.5


def run_one(
    scn: Scenario,
    launcher: Launcher,
    table: dict[str, Any],
    run_id: str | None,
    repeat: int = 0,
    strict: bool = True,
    pcap_dir: Path | None = None,
) -> tuple[ResultRecord, str | None]:
    """Run a scenario in a fresh lab; the result record (with expectation and outcome) and any mismatch.

    strict: a scenario missing from the expectations table is an error (the suite); otherwise (a
    researcher's own file from the command line) it runs and records no expectation.
    pcap_dir: capture the internet segment into pcap_dir/<scenario>-r<repeat>.pcap (recorded relative to
    its parent, the run directory).
    """
    from netsim.lab.lab import Lab
    from netsim.session.run import run_session

    expected = expectation_or_none(scn, table, strict)
    exp = experiment(scn)  # before the run: a rules file may change while it runs
    pcap: Path | None = None
    with Lab(scn.topology) as lab, contextlib.ExitStack() as stack:
        if pcap_dir is not None:
            pcap_dir.mkdir(parents=True, exist_ok=True)
            pcap = stack.enter_context(lab.capture(pcap_dir / f"{scn.id.replace('/', '--')}-r{repeat}.pcap"))
        record = run_session(lab, scn.options, launcher=launcher)
    problem = label(record, scn, run_id, repeat, expected, exp)
    record["pcap"] = None if pcap is None else str(pcap.relative_to(pcap.parent.parent))
    return record, problem


def expectation_or_none(scn: Scenario, table: dict[str, Any], strict: bool = False) -> Expectation | None:
    """The scenario's expectation; None (its outcome unchecked) when it has none, unless `strict`."""
    try:
        return expectation(scn, table)
    except MissingExpectation:
        if strict:
            raise
        return None


def label(
    record: ResultRecord,
    scn: Scenario,
    run_id: str | None,
    repeat: int,
    expected: Expectation | None,
    exp: Experiment,
) -> str | None:
    """Add the suite's keys to a session's record (scenario, labels, expectation, outcome, experiment);
    returns the mismatch, if any."""
    problem = None if expected is None else mismatch(record, expected)
    if run_id is not None:
        record["run_id"] = run_id
    record["scenario"] = scn.id
    record["group"] = scn.group
    record["nat_a"], record["nat_b"] = scn.nat_a, scn.nat_b
    record["repeat"] = repeat
    record["expected"] = None if expected is None else expected_entry(expected)
    record["outcome"] = "unchecked" if expected is None else ("passed" if problem is None else "failed")
    record["passed"] = None if expected is None else problem is None
    record["mismatch"] = problem
    record["experiment"] = exp
    return problem


def expected_entry(exp: Expectation) -> Expected:
    """An expectation as the record keeps it."""
    entry: Expected = {
        "needs_relay": exp.needs_relay,
        "connect": exp.connect,
        "verdict": exp.verdict,
        "source": exp.source,
    }
    if exp.call is not None:
        entry["call"] = exp.call
    return entry


@dataclass(frozen=True)
class Done:
    """What a worker reports about one finished session (the record itself is already in results.jsonl)."""

    scenario: str
    repeat: int
    verdict: str
    needs_relay: bool | None
    outcome: str
    mismatch: str | None


Task = tuple[Scenario, int]  # a scenario and its repeat index


def expected_seconds(scn: Scenario, expected: Expectation | None) -> float:
    """About how long the scenario's session takes, to start the longest first: a pairing that needs a
    relay or fails waits out the whole connect deadline (its relay-less or main run fails only then; with
    no expectation, assume it does), a held call its hold, a Chromium side its browser."""
    opts = scn.options
    fails = (
        expected is None or not expected.connect or (opts.needs_relay and expected.needs_relay is not False)
    )
    browsers = (opts.peer_a == CHROMIUM) + (opts.peer_b == CHROMIUM)
    return SESSION_S + (opts.deadline_s if fails else 0.0) + opts.hold_s + BROWSER_S * browsers


def schedule(scenarios: list[Scenario], repeats: int, table: dict[str, Any] | None = None) -> list[Task]:
    """Every (scenario, repeat), the longest expected first (`table`: the expectations; without it, every
    pairing is assumed to wait its deadline) so that parallel workers finish together."""
    cost = {scn.id: expected_seconds(scn, expectation_or_none(scn, table or {})) for scn in scenarios}
    tasks = [(scn, r) for scn in scenarios for r in range(repeats)]
    return sorted(tasks, key=lambda task: -cost[task[0].id])


def _run_task(task: Task, launcher: Launcher, table: dict[str, Any], directory: Path, pcap: bool) -> Done:
    scn, repeat = task
    pcap_dir = directory / "pcap" if pcap else None
    record, problem = run_one(scn, launcher, table, directory.name, repeat, strict=False, pcap_dir=pcap_dir)
    runfiles.append_record(directory, record)
    return Done(scn.id, repeat, record["verdict"], record["needs_relay"], record["outcome"], problem)


def _worker(tasks: Any, done: Any, table: dict[str, Any], directory: Path, pcap: bool) -> None:
    """A worker process: its own launcher, sessions from the task queue until the None that ends it."""
    from netsim.peers.launcher import Launcher

    with Launcher() as launcher:
        while (task := tasks.get()) is not None:
            try:
                done.put(_run_task(task, launcher, table, directory, pcap))
            except Exception as exc:  # reported, counted as failed; the run goes on
                done.put(Done(task[0].id, task[1], "error", None, "failed", f"{type(exc).__name__}: {exc}"))


def run_many(
    scenarios: list[Scenario],
    repeats: int,
    table: dict[str, Any],
    directory: Path,
    pcap: bool = False,
    jobs: int = 1,
) -> int:
    """Run every scenario `repeats` times into `directory`, `jobs` sessions at a time (each in its own lab,
    each worker with its own launcher); shows progress and returns how many violated an expectation."""
    tasks = schedule(scenarios, repeats, table)
    failures = 0
    with RunProgress(len(tasks)) as progress:
        for item in (
            _run_serial(tasks, table, directory, pcap)
            if jobs == 1
            else _run_parallel(tasks, table, directory, pcap, jobs)
        ):
            failures += item.outcome == "failed"
            mark = {"passed": "ok", "failed": "FAILED", "unchecked": "unchecked"}.get(
                item.outcome, item.outcome
            )
            line = f"{item.scenario:<60} {item.verdict:<11} needs_relay={item.needs_relay!s:<5} {mark}"
            progress.session(line, item.verdict, item.outcome, item.mismatch)
    return failures


def _run_serial(tasks: list[Task], table: dict[str, Any], directory: Path, pcap: bool) -> Iterator[Done]:
    from netsim.peers.launcher import Launcher

    with Launcher() as launcher:
        for task in tasks:
            yield _run_task(task, launcher, table, directory, pcap)


def _run_parallel(
    tasks: list[Task], table: dict[str, Any], directory: Path, pcap: bool, jobs: int
) -> Iterator[Done]:
    """Worker processes (spawned: a clean interpreter each, no inherited locks or threads)."""
    ctx = multiprocessing.get_context("spawn")
    todo, done = ctx.Queue(), ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(todo, done, table, directory, pcap)) for _ in range(jobs)]
    for task in tasks:
        todo.put(task)
    for _ in workers:
        todo.put(None)
    for w in workers:
        w.start()
    try:
        received = 0
        while received < len(tasks):
            try:
                item = done.get(timeout=1.0)
            except queue.Empty:
                if not any(w.is_alive() for w in workers):
                    raise RuntimeError(
                        f"every worker exited with {len(tasks) - received} sessions to go"
                    ) from None
                continue
            received += 1
            yield item
    finally:
        for w in workers:
            w.join(timeout=30)
            if w.is_alive():  # interrupted: SIGTERM makes its lab tear down, then it exits
                w.terminate()
                w.join(timeout=30)
