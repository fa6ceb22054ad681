"""Running scenarios: each in its worker's kept lab or a fresh one (netsim.suite.keep), its record checked
against its expectation and appended to the run's results.jsonl (the results stage's `finish_run` then
writes the summary and the report).

The lab, the session and the launcher are imported where a session runs: the pytest controller (which only
schedules and reports) starts its workers ~0.3 s sooner without them."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netsim import runfiles
from netsim.records import Attempt, Expected, Experiment, ResultRecord
from netsim.session.load import retry_deadline
from netsim.suite.expectations import Expectation, MissingExpectation, expectation, mismatch
from netsim.suite.experiment import experiment
from netsim.suite.progress import RunProgress
from netsim.suite.scenario import Scenario
from netsim.vocab import BROWSERS, CHROMIUM, FIREFOX, INCONCLUSIVE, PASSED, UNCHECKED, VIOLATED

if TYPE_CHECKING:
    from netsim.peers.launcher import Launcher
    from netsim.suite.keep import Keeper

# Scheduling estimates (bench/suite.py --phases): a session's lab, services, peers, connect and teardown on
# an idle 2-core machine, and what each browser side adds (its start and its slower close): Chromium's
# measured so; Firefox's from bench/browser.py (spawn to signed in ~2.3 s, browser.close to exit ~0.7 s).
SESSION_S = 0.8
BROWSER_S = {CHROMIUM: 1.5, FIREFOX: 3.0}
DEFAULT_RETRIES = 2  # runs of an inconclusive session beyond its first (--retries)


def run_one(
    scn: Scenario,
    launcher: Launcher,
    table: dict[str, Any],
    run_id: str | None,
    repeat: int = 0,
    strict: bool = True,
    pcap_dir: Path | None = None,
    retries: int = DEFAULT_RETRIES,
    keeper: Keeper | None = None,
) -> tuple[ResultRecord, str | None]:
    """Run a scenario in a fresh lab, or in `keeper`'s kept lab when it may; the result record (with
    expectation and outcome) and any problem: the mismatch of a violated expectation, or why a session
    stayed inconclusive.

    An attempt that load made inconclusive (netsim.session.load) is run again in a fresh lab, up to
    `retries` times, each with a longer connect deadline; the record is the last attempt's and keeps them
    all under `attempts`.
    strict: a scenario missing from the expectations table is an error (the suite); otherwise (a
    researcher's own file from the command line) it runs and records no expectation.
    pcap_dir: capture the internet segment into pcap_dir/<scenario>-r<repeat>.pcap (recorded relative to
    its parent, the run directory).
    keeper: the worker's kept lab (netsim.suite.keep); without one, every attempt builds its own.
    """
    expected = expectation_or_none(scn, table, strict)
    exp = experiment(scn)  # before the run: a rules file may change while it runs
    attempts: list[Attempt] = []
    for attempt in range(retries + 1):
        deadline = retry_deadline(scn.options.deadline_s, attempt)
        record, pcap = _attempt(scn, launcher, deadline, (repeat, attempt), pcap_dir, keeper)
        attempts.append(attempt_entry(record, deadline))
        if not attempts[-1]["inconclusive"]:
            break
    record["attempts"] = attempts
    problem = label(record, scn, run_id, repeat, expected, exp)
    if keeper is not None:
        keeper.after(record)
    record["pcap"] = None if pcap is None else str(pcap.relative_to(pcap.parent.parent))
    return record, problem


def _attempt(
    scn: Scenario,
    launcher: Launcher,
    deadline_s: float,
    which: tuple[int, int],
    pcap_dir: Path | None,
    keeper: Keeper | None,
) -> tuple[ResultRecord, Path | None]:
    """One attempt (`which`: repeat, attempt) of a scenario's session with this connect deadline, in a
    fresh lab or the kept one (a capture gets a lab of its own; a retry a freshly built one)."""
    from netsim.session.run import run_session
    from netsim.suite.keep import Keeper

    repeat, attempt = which
    opts = scn.options if deadline_s == scn.options.deadline_s else scn.options.replace(deadline_s=deadline_s)
    pcap: Path | None = None
    keeper = keeper or Keeper(launcher, enabled=False)
    with keeper.lab_for(scn, own=pcap_dir is not None, fresh=attempt > 0) as (lab, use):
        with contextlib.ExitStack() as stack:
            if pcap_dir is not None:
                pcap_dir.mkdir(parents=True, exist_ok=True)
                name = f"{scn.id.replace('/', '--')}-r{repeat}" + (f"-a{attempt}" if attempt else "")
                pcap = stack.enter_context(lab.capture(pcap_dir / f"{name}.pcap"))
            record = run_session(lab, opts, launcher=launcher)
        record["lab_use"] = use
        return record, pcap


def attempt_entry(record: ResultRecord, deadline_s: float) -> Attempt:
    """What `attempts` keeps of one attempt."""
    judged: Mapping[str, Any] = record.get("load") or {}
    entry: Attempt = {
        "verdict": record["verdict"],
        "needs_relay": record["needs_relay"],
        "reason": record["reason"],
        "connect_s": record["connect_s"],
        "cpu_wait_s": record["timings"].get("cpu_wait_s"),
        "deadline_s": deadline_s,
        "share": judged.get("share"),
        "inconclusive": bool(judged.get(INCONCLUSIVE) or record.get("infrastructure")),
        "started_at": record["started_at"],
        "infrastructure": record.get("infrastructure"),
    }
    if "call" in record:
        entry["call"] = record["call"].get("outcome")
    return entry


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
    judged: Mapping[str, Any] = record.get("load") or {}
    problem = None if expected is None else mismatch(record, expected)
    inconclusive = bool(judged.get(INCONCLUSIVE) or record.get("infrastructure"))
    if run_id is not None:
        record["run_id"] = run_id
    record["scenario"] = scn.id
    record["group"] = scn.group
    record["nat_a"], record["nat_b"] = scn.nat_a, scn.nat_b
    record["repeat"] = repeat
    record["expected"] = None if expected is None else expected_entry(expected)
    record["outcome"] = (
        INCONCLUSIVE
        if inconclusive
        else UNCHECKED
        if expected is None
        else (PASSED if problem is None else VIOLATED)
    )
    record["passed"] = None if expected is None or inconclusive else problem is None
    record["mismatch"] = None if inconclusive else problem
    record["experiment"] = exp
    if inconclusive:
        return inconclusive_text(record)
    return problem


def inconclusive_text(record: ResultRecord) -> str:
    """Why a session stayed inconclusive: the rule, and each attempt's answer and wait for a CPU."""
    judged: Mapping[str, Any] = record.get("load") or {}
    why = (
        f"inconclusive: the lab's own {record['infrastructure']}"
        if record.get("infrastructure")
        else f"inconclusive: {judged.get('reason')} (rule: {judged.get('rule')} >= {judged.get('threshold')})"
    )
    lines = [
        why,
        *(
            f"  attempt {i + 1}: {a['verdict']}, needs_relay={a['needs_relay']}, "
            f"deadline {a['deadline_s']:g} s, cpu_wait {a['cpu_wait_s']} s, share {a['share']}"
            for i, a in enumerate(record.get("attempts") or [])
        ),
    ]
    return "\n".join(lines)


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
    attempts: int = 1


@dataclass
class Counts:
    """How a run's sessions ended: `violated` expectations, sessions still `inconclusive` after their
    retries, and how many of the inconclusive-at-first-attempt sessions concluded on a retry."""

    sessions: int = 0
    violated: int = 0
    inconclusive: int = 0
    retried: int = 0
    recovered: int = 0

    def add(self, item: Done) -> None:
        self.sessions += 1
        self.violated += item.outcome == VIOLATED
        self.inconclusive += item.outcome == INCONCLUSIVE
        if item.attempts > 1:
            self.retried += 1
            self.recovered += item.outcome != INCONCLUSIVE


Task = tuple[Scenario, int]  # a scenario and its repeat index


def expected_seconds(scn: Scenario, expected: Expectation | None) -> float:
    """About how long the scenario's session takes, to start the longest first: a pairing that needs a
    relay or fails waits out the whole connect deadline (its relay-less or main run fails only then; with
    no expectation, assume it does), a held call its hold, a browser side its browser."""
    opts = scn.options
    fails = (
        expected is None or not expected.connect or (opts.needs_relay and expected.needs_relay is not False)
    )
    browsers = sum(BROWSER_S.get(stack, 0.0) for stack in (opts.peer_a, opts.peer_b))
    return SESSION_S + (opts.deadline_s if fails else 0.0) + opts.hold_s + browsers


def schedule(scenarios: list[Scenario], repeats: int, table: dict[str, Any] | None = None) -> list[Task]:
    """Every (scenario, repeat), the longest expected first (`table`: the expectations; without it, every
    pairing is assumed to wait its deadline) so that parallel workers finish together."""
    cost = {scn.id: expected_seconds(scn, expectation_or_none(scn, table or {})) for scn in scenarios}
    tasks = [(scn, r) for scn in scenarios for r in range(repeats)]
    return sorted(tasks, key=lambda task: -cost[task[0].id])


def near(known: tuple[dict[str, str], dict[str, float]], last: Task, first: Task, task: Task) -> bool:
    """Whether a worker whose last task was `last` should take `task` before `first` (the longest that
    fits): netsim.suite.keep.prefer, by each scenario's lab shape and expected seconds (`known`)."""
    from netsim.suite.keep import prefer

    shapes, cost = known
    return prefer(shapes[last[0].id], shapes[task[0].id], cost[task[0].id], cost[first[0].id])


def browsers(task: Task) -> int:
    """Browsers a task's session starts (Chromium or Firefox sides; 0 for aiortc on both sides)."""
    opts = task[0].options
    return (opts.peer_a in BROWSERS) + (opts.peer_b in BROWSERS)


def run_task(task: Task, env: tuple[Keeper, RunContext]) -> Done | tuple[str, str]:
    """One session into the run directory (in the worker's kept lab when it may); a record that cannot be
    written stops the run (a full disk), reported as ("write-error", what); any other error is reported
    and the run goes on."""
    keeper, (table, directory, pcap, retries) = env
    scn, repeat = task
    pcap_dir = directory / "pcap" if pcap else None
    try:
        record, problem = run_one(
            scn,
            keeper.launcher,
            table,
            directory.name,
            repeat,
            strict=False,
            pcap_dir=pcap_dir,
            retries=retries,
            keeper=keeper,
        )
    except Exception as exc:  # reported, counted as violated; the run goes on
        return Done(scn.id, repeat, "error", None, VIOLATED, f"{type(exc).__name__}: {exc}")
    try:
        runfiles.append_record(directory, record)
    except OSError as exc:
        return ("write-error", f"{directory / runfiles.RESULTS_FILE}: {exc.strerror or exc}")
    attempts = len(record.get("attempts") or [1])
    return Done(
        scn.id, repeat, record["verdict"], record["needs_relay"], record["outcome"], problem, attempts
    )


RunContext = tuple[dict[str, Any], Path, bool, int]  # expectations, run directory, pcap, retries
MARKS = {"passed": "ok", "violated": "VIOLATED", "unchecked": UNCHECKED, "inconclusive": "INCONCLUSIVE"}


def run_many(
    scenarios: list[Scenario],
    repeats: int,
    table: dict[str, Any],
    directory: Path,
    pcap: bool = False,
    jobs: int = 1,
    retries: int = DEFAULT_RETRIES,
    max_browsers: int | None = None,
    keep: bool = True,
) -> Counts:
    """Run every scenario `repeats` times into `directory`, `jobs` sessions at a time (each worker with its
    own launcher and, with `keep`, its kept lab and browsers (netsim.suite.keep), at most `max_browsers`
    browsers starting or running at once; unlimited when workers keep theirs); shows progress and returns
    how the sessions ended. A full disk raises parallel.WriteStop naming the path."""
    from netsim.suite import parallel

    tasks = schedule(scenarios, repeats, table)
    counts = Counts()
    context: RunContext = (table, directory, pcap, retries)
    cap = max_browsers if max_browsers is not None else jobs * 2
    items = (
        _run_serial(tasks, context, keep)
        if jobs == 1
        else parallel.run_parallel(
            tasks, run_task, context, jobs, browsers, cap, keep, _near(scenarios, table)
        )
    )
    # closing: an interrupt while a result is shown ends the workers now, not when the generator is collected
    with RunProgress(len(tasks)) as progress, contextlib.closing(items):
        for item in items:
            if isinstance(item, tuple):
                raise parallel.WriteStop(item[1])
            counts.add(item)
            mark = MARKS.get(item.outcome, item.outcome)
            tries = f" (attempt {item.attempts})" if item.attempts > 1 else ""
            line = f"{item.scenario:<60} {item.verdict:<11} needs_relay={item.needs_relay!s:<5} {mark}{tries}"
            progress.session(line, item.verdict, item.outcome, item.mismatch)
    return counts


def _near(scenarios: list[Scenario], table: dict[str, Any]) -> Any:
    from netsim.suite.keep import shape

    shapes = {scn.id: shape(scn) for scn in scenarios}
    cost = {scn.id: expected_seconds(scn, expectation_or_none(scn, table)) for scn in scenarios}
    return functools.partial(near, (shapes, cost))


def _run_serial(
    tasks: list[Task], context: RunContext, keep: bool
) -> Generator[Done | tuple[str, str], None, None]:
    from netsim.peers.launcher import Launcher
    from netsim.suite.keep import Keeper

    with Launcher() as launcher, Keeper(launcher, keep) as keeper:
        for task in tasks:
            yield run_task(task, (keeper, context))
