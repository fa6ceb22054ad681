"""Running scenarios: each in a fresh lab, its record checked against its expectation and appended to the
run's results.jsonl; `finish_run` writes the summary and the report (the same for pytest and the CLI)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netsim.lab.lab import Lab
from netsim.peers.launcher import Launcher
from netsim.results import store as results
from netsim.results.records import ResultRecord
from netsim.results.tables import matrix_table
from netsim.session.run import run_session
from netsim.suite.expectations import Expectation, ExpectationError, expectation, mismatch
from netsim.suite.scenario import Scenario
from netsim.vocab import MATRIX_GROUPS


def run_one(
    scn: Scenario,
    launcher: Launcher,
    table: dict[str, Any],
    run_id: str,
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
    expected: Expectation | None
    try:
        expected = expectation(scn, table)
    except ExpectationError:
        if strict:
            raise
        expected = None
    pcap: Path | None = None
    with Lab(scn.topology) as lab, contextlib.ExitStack() as stack:
        if pcap_dir is not None:
            pcap_dir.mkdir(parents=True, exist_ok=True)
            pcap = stack.enter_context(lab.capture(pcap_dir / f"{scn.id.replace('/', '--')}-r{repeat}.pcap"))
        record = run_session(lab, scn.options, launcher=launcher)
    problem = None if expected is None else mismatch(record, expected)
    record["run_id"] = run_id
    record["scenario"] = scn.id
    record["group"] = scn.group
    record["nat_a"], record["nat_b"] = scn.nat_a, scn.nat_b
    record["repeat"] = repeat
    if expected is not None:
        record["expected"] = {
            "needs_relay": expected.needs_relay,
            "connect": expected.connect,
            "verdict": expected.verdict,
        }
    record["passed"] = problem is None
    record["mismatch"] = problem
    record["pcap"] = None if pcap is None else str(pcap.relative_to(pcap.parent.parent))
    return record, problem


def run_many(
    scenarios: list[Scenario],
    repeats: int,
    table: dict[str, Any],
    directory: Path,
    pcap: bool = False,
    show: Callable[[str], None] = print,
) -> int:
    """Run scenarios one after another with one launcher into `directory`; returns the mismatch count."""
    failures = 0
    with Launcher() as launcher:
        for scn in scenarios:
            for repeat in range(repeats):
                pcap_dir = directory / "pcap" if pcap else None
                record, problem = run_one(
                    scn, launcher, table, directory.name, repeat, strict=False, pcap_dir=pcap_dir
                )
                results.append_record(directory, record)
                failures += problem is not None
                mark = "ok" if problem is None else "MISMATCH"
                show(f"{scn.id:<64} {record['verdict']:<11} needs_relay={record['needs_relay']!s:<5} {mark}")
                if problem:
                    show("    " + problem.replace("\n", "\n    "))
    return failures


@dataclass(frozen=True)
class RunSummary:
    """What the end of a run shows: the matrices, one line of shares, and where the report is."""

    directory: Path
    matrices: list[tuple[str, str]]  # (group, plain-text table)
    line: str
    report: Path | None


def finish_run(directory: Path, reports_root: Path, report: bool = True) -> RunSummary | None:
    """Write summary.json and (unless told not to) the HTML report of a run; None when it has no records."""
    if not (directory / results.RESULTS_FILE).exists():
        return None
    records = results.load_records(directory)
    results.write_summary(directory)
    summary = results.summarize(records)
    matrices = [(g, matrix_table(records, g)) for g in _groups(records) if g in MATRIX_GROUPS]
    line = (
        f"{summary['sessions']} sessions ({summary['passed']} passed, {summary['failed']} failed); "
        f"relay needed in {_pct(summary['relay_needed_share'])}, relay won in "
        f"{_pct(summary['relay_won_share'])}; results in {directory}"
    )
    page = None
    if report:
        from netsim.results.report import build_report

        page = build_report(directory, reports_root)
    return RunSummary(directory, matrices, line, page)


def _groups(records: Iterable[Mapping[str, Any]]) -> list[str]:
    return list(dict.fromkeys(str(r.get("group")) for r in records))


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"
