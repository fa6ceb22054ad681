"""The end of a run: summary.json, the matrices and the one line of shares the terminal shows, and the HTML
report; the same for pytest (scenarios/conftest.py) and the CLI."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netsim import runfiles
from netsim.results import runinfo
from netsim.results import store as results
from netsim.results.sessions import relay_needed_text
from netsim.results.tables import matrix_table
from netsim.vocab import MATRIX_GROUPS


@dataclass(frozen=True)
class RunSummary:
    """What the end of a run shows: the matrices, one line of shares, and where the report is."""

    directory: Path
    matrices: list[tuple[str, str]]  # (group, plain-text table)
    line: str
    report: Path | None


def finish_run(
    directory: Path, reports_root: Path, report: bool = True, partial: bool = False
) -> RunSummary | None:
    """Write summary.json and (unless told not to) the HTML report of a run; None when it has no records.
    `partial`: the run was interrupted or stopped, summary.json says so."""
    if not (directory / runfiles.RESULTS_FILE).exists():
        return None
    records = results.load_records(directory)
    results.write_summary(directory, partial)
    runinfo.write(directory, runinfo.finished_info(records))
    summary = results.summarize(records)
    matrices = [(g, matrix_table(records, g)) for g in _groups(records) if g.startswith(MATRIX_GROUPS)]
    needed = relay_needed_text(summary["relay_needed_share"], summary["relay_needed_unknown"])
    line = (
        f"{summary['sessions']} sessions ({summary['passed']} passed, {summary['violated']} violated, "
        f"{summary['unchecked']} unchecked, {summary['inconclusive']} inconclusive); "
        f"relay needed in {needed}, relay won in {_pct(summary['relay_won_share'])}; results in {directory}"
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
