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

import logging
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from netsim import runfiles
from netsim.errors import InputError, printable
from netsim.records import ResultRecord
from netsim.results import compat, reader, runinfo, store
from netsim.results.report import build_report

PCAP_DIR = "pcap"
log = logging.getLogger(__name__)


class MergeError(InputError):
    """Runs that cannot be merged (or OUT cannot be written); the message names the run and the field."""


@dataclass(frozen=True)
class Run:
    path: Path
    records: list[ResultRecord]
    notes: list[str] = field(default_factory=list)  # lines the reader skipped, captures left out


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
        data = reader.read_run(path)
        runs.append(Run(path, data.records, [s.text() for s in data.skipped]))
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
    runfiles.no_symlink(out)  # OUT, or a directory on the way to it
    if any(out.resolve() == run.path.resolve() for run in runs):
        raise MergeError(f"-o {out}: is one of the runs being merged")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise MergeError(f"-o {out}: exists and is not an empty directory")


def _move_pcap(record: ResultRecord, run: Run, tmp: Path) -> None:
    """Copy the record's capture into tmp/pcap/<run>/ and point the record at it (when the file exists).
    A capture that is not a file inside its run (`..`, an absolute path, a symlink out) is left out, with
    a note: a record never makes merge copy a file of this machine."""
    pcap = record.get("pcap")
    if not pcap:
        return
    try:
        source = runfiles.inside(run.path, pcap)
    except runfiles.PathError as e:
        record["pcap"] = None
        note = printable(f"{run.path}: capture left out: {e}")
        log.warning("%s", note)
        run.notes.append(note)
        return
    if not source.is_file():
        return
    rel = Path(PCAP_DIR) / run.path.resolve().name / source.name
    (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, tmp / rel, follow_symlinks=False)
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

    OUT is written whole (records, summary, run.json, report) under a new temporary name and renamed into
    place, so a refused or failed merge (a full disk: WriteError naming OUT) leaves nothing behind.
    """
    out = Path(out)
    runs = load_runs(paths)
    _check_out(out, runs)
    problems = incompatibilities(runs)
    if problems and not force:
        raise MergeError(refusal(problems))
    noted = warnings(runs)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.merge-", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp's 0700 would hide the merged run from a web server once renamed
    try:
        sessions = _write(runs, tmp, out.name)
        inputs = [runinfo.input_info(run.path, run.records) for run in runs]
        notes = [n for run in runs for n in run.notes]
        runinfo.write(tmp, runinfo.merged_info(inputs, [*noted, *notes], problems))
        page = build_report(tmp, point_latest=False) if report else None
        if out.exists():
            out.rmdir()  # checked empty above
        os.replace(tmp, out)
    except OSError as exc:
        raise runfiles.WriteError(f"{out}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Merged(out, sessions, len(runs), page and out / page.name, problems, noted)
