"""Merge run directories (shards of one suite run, or runs on several machines) into one run directory OUT.

OUT gets every record of the inputs in the order given (results.jsonl), summary.json and the HTML report.
Records take OUT's name as their run id, repeats are renumbered per scenario (two machines that each ran
repeats 0-4 of a scenario give repeats 0-9), and capture files move to pcap/<input run>/.

Runs are refused, unless forced, when they differ in the versions under test, in the record schema, or in
the expectations they were checked against: their outcomes would not mean the same thing.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from netsim import runfiles
from netsim.records import ResultRecord
from netsim.results import store
from netsim.results.report import build_report

PCAP_DIR = "pcap"


class MergeError(ValueError):
    """Runs that cannot be merged (or OUT cannot be written); the message names the run and the field."""


@dataclass(frozen=True)
class Run:
    path: Path
    records: list[ResultRecord]


@dataclass(frozen=True)
class Merged:
    out: Path
    sessions: int
    runs: int
    report: Path | None
    overridden: list[str]  # incompatibilities merged anyway (--force)


def load_runs(paths: Sequence[Path | str]) -> list[Run]:
    """The runs to merge, each a directory with a results.jsonl; MergeError names the first bad one."""
    if not paths:
        raise MergeError("give at least one run directory to merge")
    seen: set[Path] = set()
    runs = []
    for given in paths:
        path = Path(given)
        if not (path / store.RESULTS_FILE).is_file():
            raise MergeError(f"{path}: not a run directory (no {store.RESULTS_FILE})")
        if path.resolve() in seen:
            raise MergeError(f"{path}: given twice")
        seen.add(path.resolve())
        runs.append(Run(path, store.load_records(path)))
    return runs


# --- compatibility ---


def _canon(value: object) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _per_run(runs: Sequence[Run], key: str) -> dict[str, list[Path]]:
    """Distinct values (canonical JSON) of a record key -> the runs that have them."""
    found: dict[str, list[Path]] = {}
    for run in runs:
        for value in dict.fromkeys(_canon(r.get(key)) for r in run.records):
            found.setdefault(value, []).append(run.path)
    return found


def _differ(runs: Sequence[Run], key: str, what: str) -> str | None:
    found = _per_run(runs, key)
    if len(found) <= 1:
        return None
    sides = "; ".join(f"{value} in {', '.join(map(str, paths))}" for value, paths in found.items())
    return f"{what} differ ({key}: {sides})"


def _expectations_differ(runs: Sequence[Run]) -> str | None:
    checked = {run.path: any(r.get("expected") is not None for r in run.records) for run in runs}
    if len(set(checked.values())) > 1:
        unchecked = ", ".join(str(p) for p, c in checked.items() if not c)
        return (
            f"expectations differ (expected: {unchecked} was not checked against expectations, others were)"
        )
    per_scenario: dict[str, dict[str, Path]] = {}
    for run in runs:
        for r in run.records:
            scenario = r.get("scenario")
            if scenario is not None:
                per_scenario.setdefault(str(scenario), {}).setdefault(_canon(r.get("expected")), run.path)
    for scenario, found in per_scenario.items():
        if len(found) > 1:
            sides = "; ".join(f"{value} in {path}" for value, path in found.items())
            return f"expectations differ (expected of {scenario}: {sides})"
    return None


def incompatibilities(runs: Sequence[Run]) -> list[str]:
    """Why these runs' outcomes would not mean the same thing (empty when they can be merged)."""
    found = [
        _differ(runs, "versions", "versions under test"),
        _differ(runs, "schema_version", "record schemas"),
        _expectations_differ(runs),
    ]
    return [text for text in found if text]


# --- writing OUT ---


def _check_out(out: Path, runs: Sequence[Run]) -> None:
    if any(out.resolve() == run.path.resolve() for run in runs):
        raise MergeError(f"-o {out}: is one of the runs being merged")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise MergeError(f"-o {out}: exists and is not an empty directory")


def _move_pcap(record: ResultRecord, run: Run, tmp: Path) -> None:
    """Copy the record's capture into tmp/pcap/<run>/ and point the record at it (when the file exists)."""
    pcap = record.get("pcap")
    if not pcap or Path(str(pcap)).is_absolute():
        return
    source = run.path / str(pcap)
    if not source.is_file():
        return
    rel = Path(PCAP_DIR) / run.path.resolve().name / source.name
    (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, tmp / rel)
    record["pcap"] = str(rel)


def _write(runs: Sequence[Run], tmp: Path, run_id: str) -> int:
    repeats: Counter[str] = Counter()
    sessions = 0
    for run in runs:
        for original in run.records:
            record = cast(ResultRecord, dict(original))
            record["run_id"] = run_id
            scenario = record.get("scenario")
            if scenario is not None:
                record["repeat"] = repeats[str(scenario)]
                repeats[str(scenario)] += 1
            _move_pcap(record, run, tmp)
            runfiles.append_record(tmp, record)
            sessions += 1
    if sessions == 0:
        raise MergeError("the runs hold no records")
    store.write_summary(tmp)
    return sessions


def merge_runs(
    paths: Sequence[Path | str], out: Path | str, force: bool = False, report: bool = True
) -> Merged:
    """Merge the runs into the new run directory `out`; MergeError when they differ and force is not set.

    OUT is written under a temporary name and renamed into place, so a refused or failed merge leaves
    nothing behind.
    """
    out = Path(out)
    runs = load_runs(paths)
    _check_out(out, runs)
    problems = incompatibilities(runs)
    if problems and not force:
        raise MergeError("; ".join(problems) + " (--force merges anyway)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.merge-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        sessions = _write(runs, tmp, out.name)
        if out.exists():
            out.rmdir()  # checked empty above
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    page = build_report(out, point_latest=False) if report else None
    return Merged(out, sessions, len(runs), page, problems)
