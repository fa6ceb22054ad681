"""Merge run directories (shards of one suite run, or runs on several machines) into one run directory OUT.

OUT gets every record of the inputs in the order given (results.jsonl), summary.json and the HTML report.
Records take OUT's name as their run id, repeats are renumbered per scenario (two machines that each ran
repeats 0-4 of a scenario give repeats 0-9), and capture files move to pcap/<input run>/.

Runs are refused, unless forced, when they differ in what decides outcomes (netsim.results.compat: the
versions under test key by key, the record schema, the expectations, each scenario's launch settings):
their outcomes would not mean the same thing. A kernel or commit difference is a warning, kept in OUT's
run.json with the runs it was made of (netsim.results.runinfo).
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from netsim import runfiles
from netsim.errors import InputError
from netsim.records import ResultRecord
from netsim.results import compat, runinfo, store
from netsim.results.report import build_report

PCAP_DIR = "pcap"


class MergeError(InputError):
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
    warnings: list[str]  # differences kept in the merged run's run.json (e.g. the kernel)


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


def incompatibilities(runs: Sequence[Run]) -> list[str]:
    """Why these runs' outcomes would not mean the same thing, one line each (empty: they merge)."""
    return [d.line() for d in compat.check(runs).refusals]


def warnings(runs: Sequence[Run]) -> list[str]:
    """Differences that do not change what outcomes mean but that a reader should know (the kernel, the
    commit the runs were made from)."""
    found = [d.line() for d in compat.check(runs).warnings]
    infos = {run.path: runinfo.read(run.path) for run in runs}
    known = [(path, str(i["commit"])) for path, i in infos.items() if i and i.get("commit")]
    other = next(((p, c) for p, c in known if c != known[0][1]), None)
    if other is not None:
        found.append(compat.Difference("commit", known[0][1], known[0][0], other[1], other[0]).line())
    return found


def refusal(problems: Sequence[str]) -> str:
    """The one line a refused merge prints: the first difference, how many more, and --force."""
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{problems[0]}{more}; --force merges anyway"


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
        raise MergeError(refusal(problems))
    noted = warnings(runs)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.merge-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        sessions = _write(runs, tmp, out.name)
        inputs = [runinfo.input_info(run.path, run.records) for run in runs]
        runinfo.write(tmp, runinfo.merged_info(inputs, noted, problems))
        if out.exists():
            out.rmdir()  # checked empty above
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    page = build_report(out, point_latest=False) if report else None
    return Merged(out, sessions, len(runs), page, problems, noted)
