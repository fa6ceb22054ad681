"""run.json (records.RunInfo): what a reader of a run needs beyond its sessions: the commit under test,
when the run started and finished, its wall time, and for a merged run the runs (shards) it was made of and
the warnings the merge gave.

A run's start is its first session's start (`started_at`), close to the run's own start: sessions begin
as soon as the first lab is up. A run written before run.json existed gets what its records tell: the
span of their start times, a lower bound of its wall time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from netsim import runfiles
from netsim.records import MergedInput, ResultRecord, RunInfo
from netsim.results import reader
from netsim.versions import netsim_commit

RUN_FILE: Final = "run.json"
STAMP: Final = "%Y-%m-%dT%H:%M:%SZ"


def _parse(text: object) -> datetime | None:
    try:
        return datetime.strptime(str(text), STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None


def _starts(records: Sequence[ResultRecord]) -> list[str]:
    return sorted(str(r.get("started_at")) for r in records if _parse(r.get("started_at")))


def wall_s(first: str | None, last: str | None) -> float | None:
    """Seconds from one UTC stamp to another (None when either is missing)."""
    a, b = _parse(first), _parse(last)
    return None if a is None or b is None else round((b - a).total_seconds(), 1)


def finished_info(records: Sequence[ResultRecord], now: datetime | None = None) -> RunInfo:
    """The run.json of a run that ends now."""
    starts = _starts(records)
    first = starts[0] if starts else None
    last = (now or datetime.now(UTC)).astimezone(UTC).strftime(STAMP)
    return {"commit": netsim_commit(), "started": first, "finished": last, "wall_s": wall_s(first, last)}


def read(run_dir: Path) -> RunInfo | None:
    """run_dir's run.json, or None when it has none or it is not a RunInfo (it only informs; the reader
    warns why)."""
    return reader.read_info(run_dir, RUN_FILE)


def write(run_dir: Path, info: RunInfo) -> Path:
    return runfiles.write_file(run_dir / RUN_FILE, json.dumps(info, indent=2) + "\n")


def input_info(path: Path, records: Sequence[ResultRecord]) -> MergedInput:
    """One run that went into a merge: its name, sessions, commit, start, finish and wall time."""
    own = read(path)
    starts = _starts(records)
    first = (own.get("started") if own else None) or (starts[0] if starts else None)
    last = own.get("finished") if own else None
    commit = own.get("commit") if own else None
    measured = own.get("wall_s") if own and last else None
    return {
        "run": path.name,
        "sessions": len(records),
        "commit": commit if isinstance(commit, str) else None,
        "started": first,
        "finished": last,
        "wall_s": measured if measured is not None else wall_s(first, starts[-1] if starts else None),
        "wall_is_lower_bound": last is None,
    }


def merged_info(inputs: Sequence[MergedInput], warnings: Sequence[str], overridden: Sequence[str]) -> RunInfo:
    """run.json of a merged run: its inputs ran side by side (CI shards), so its wall time spans them all;
    unknown when an input's finish is."""
    starts = sorted(str(i["started"]) for i in inputs if i.get("started"))
    ends = sorted(str(i["finished"]) for i in inputs if i.get("finished"))
    commits = list(dict.fromkeys(str(i["commit"]) for i in inputs if i.get("commit")))
    first = starts[0] if starts else None
    last = ends[-1] if ends and len(ends) == len(inputs) else None
    return {
        "commit": commits[0] if len(commits) == 1 else (commits or None),
        "started": first,
        "finished": last,
        "wall_s": wall_s(first, last),
        "merged_from": list(inputs),
        "warnings": list(warnings),
        "overridden": list(overridden),
    }
