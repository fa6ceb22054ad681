"""The report's head, for the maintainer of a CI run: what was tested (every stack's version, the commit),
how the run went (shards and their durations, wall time, what a merge warned about), and failures first:
expectations that did not hold apart from sessions that failed as expected and failures nobody checked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from netsim.records import ResultRecord, Summary
from netsim.results import runinfo, store, tables
from netsim.results.compat import LAUNCH_KEYS
from netsim.results.sessions import mapping, session_id
from netsim.vocab import INCONCLUSIVE, PASSED, UNCHECKED, VIOLATED

VERSION_ORDER: Final = ("aiortc", "aioice", "coturn", "python", "kernel")  # then each browser, by name


def versions(records: Sequence[ResultRecord]) -> dict[str, str]:
    """Every version key the sessions carry (a browser's only where a side ran it), its distinct values."""
    found: dict[str, list[str]] = {key: [] for key in VERSION_ORDER}
    for r in records:
        for key, value in mapping(r.get("versions")).items():
            if key not in LAUNCH_KEYS and value:
                found.setdefault(key, []).append(str(value))
    extra = sorted(k for k in found if k not in VERSION_ORDER)
    return {k: ", ".join(dict.fromkeys(found[k])) or "unknown" for k in (*VERSION_ORDER, *extra)}


def duration(seconds: object) -> str:
    """'4 min 16 s', '38.2 s', or '–'."""
    if not isinstance(seconds, int | float):
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def _date(run_dir: Path, records: Sequence[ResultRecord]) -> str:
    stamps = sorted(str(r["started_at"]) for r in records if r.get("started_at"))
    if stamps:
        return stamps[0] if stamps[0] == stamps[-1] else f"{stamps[0]} – {stamps[-1]}"
    results_file = run_dir / store.RESULTS_FILE
    if results_file.exists():
        mtime = results_file.stat().st_mtime
        return datetime.fromtimestamp(mtime, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") + " (file time)"
    return "unknown"


def _shards(info: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "run": m.get("run"),
            "sessions": m.get("sessions"),
            "commit": m.get("commit") or "–",
            "started": m.get("started") or "–",
            "wall": duration(m.get("wall_s")) + (" or more" if m.get("wall_is_lower_bound") else ""),
        }
        for m in info.get("merged_from") or []
    ]


def run_meta(run_dir: Path, records: Sequence[ResultRecord], summary: Summary) -> dict[str, Any]:
    """The report's head: run id, date, commit, wall time, versions, shards, warnings, scenario counts."""
    info: Mapping[str, Any] = runinfo.read(run_dir) or {}
    # A scenario failed if any of its sessions did, passed if all were checked and passed.
    per_scenario: dict[str, set[str]] = {}
    for r in records:
        per_scenario.setdefault(str(r.get("scenario") or "?"), set()).add(tables.outcome(r))
    scenarios = Counter(
        "failed" if VIOLATED in seen else PASSED if seen == {PASSED} else UNCHECKED
        for seen in per_scenario.values()
    )
    commit = info.get("commit")
    return {
        "run_id": summary["run_id"] or run_dir.name,
        "date": _date(run_dir, records),
        "generated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": ", ".join(commit) if isinstance(commit, list) else (commit or "unknown"),
        "wall": duration(info.get("wall_s")),
        "versions": versions(records),
        "shards": _shards(info),
        "warnings": [*info.get("warnings", []), *(f"merged anyway: {o}" for o in info.get("overridden", []))],
        "scenarios_passed": scenarios["passed"],
        "scenarios_failed": scenarios["failed"],
        "scenarios_unchecked": scenarios["unchecked"],
    }


def _item(index: int, r: ResultRecord) -> dict[str, Any]:
    return {
        "id": session_id(index),
        "n": index + 1,
        "scenario": r.get("scenario") or "?",
        "repeat": r.get("repeat", 0),
        "mismatch": r.get("mismatch"),
        "reason": r.get("reason"),
        "verdict": tables.coarse_outcome(r),
    }


def failures(records: Sequence[ResultRecord]) -> dict[str, list[dict[str, Any]]]:
    """Sessions for the top of the report: expectations that did not hold (`violated`), sessions that did
    not connect and were expected not to (`expected`), and sessions that did not connect with nothing to
    check them against (`unchecked`)."""
    out: dict[str, list[dict[str, Any]]] = {"violated": [], "expected": [], "unchecked": []}
    for i, r in enumerate(records):
        outcome, failed = tables.outcome(r), tables.coarse_outcome(r) == tables.FAILED_LABEL
        if outcome == VIOLATED:
            out["violated"].append(_item(i, r))
        elif outcome == INCONCLUSIVE:  # no answer to show: counted apart (summary.inconclusive)
            continue
        elif failed and outcome == PASSED:
            out["expected"].append(_item(i, r))
        elif failed:
            out["unchecked"].append(_item(i, r))
    return out
