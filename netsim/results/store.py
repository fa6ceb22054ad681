"""A run on disk: run ids and directories, results.jsonl (one `ResultRecord` per line) and summary.json.

Record fields are defined in netsim/records/. Everything here is pure logic (no root, no lab) and
tolerant of partial records, because a crashed session may still leave a record worth reporting.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from netsim import runfiles
from netsim.errors import InputError
from netsim.records import SCHEMA_VERSION, ResultRecord, Shares, Summary, Violation
from netsim.results import reader
from netsim.results.tables import counted, nat_kinds, outcome
from netsim.vocab import RELAY, VIOLATED

RESULTS_FILE = runfiles.RESULTS_FILE
SUMMARY_FILE = runfiles.SUMMARY_FILE


def load_records(run_dir: Path | str) -> list[ResultRecord]:
    """The records of run_dir/results.jsonl in file order, through the one reader (netsim.results.reader):
    lines that fail its checks are skipped with a warning naming the file, the line and the field.

    Missing keys stay missing (older and partial records): read their fields with `.get()`.
    """
    return reader.read_run(run_dir).records


class SchemaError(InputError):
    """Records this netsim cannot read (written by a newer one, or without what a command needs)."""


def schema_version(record: ResultRecord) -> int:
    """The record's schema; records before schema 2 carry no version and count as 1."""
    value = record.get("schema_version", 1)
    return value if isinstance(value, int) else 0


def load_run(run_dir: Path | str, need: int = 1) -> list[ResultRecord]:
    """A run's records, refused (SchemaError naming the run) when empty, newer than this netsim, or
    older than schema `need` (what the calling command needs)."""
    records = load_records(run_dir)
    if not records:
        raise SchemaError(f"{run_dir}: results.jsonl has no records")
    versions = {schema_version(r) for r in records}
    newest, oldest = max(versions), min(versions)
    if newest > SCHEMA_VERSION:
        raise SchemaError(f"{run_dir}: records of schema {newest}; this netsim reads up to {SCHEMA_VERSION}")
    if oldest < need:
        raise SchemaError(f"{run_dir}: records of schema {oldest}; this command needs schema {need} or later")
    return records


def _share(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def _shares(records: Sequence[ResultRecord]) -> Shares:
    known = [r for r in records if r.get("needs_relay") is not None]
    return {
        "sessions": len(records),
        "relay_needed_share": _share(sum(r.get("needs_relay") is True for r in known), len(known)),
        "relay_needed_unknown": len(records) - len(known),
        "relay_won_share": _share(sum(r.get("verdict") == RELAY for r in records), len(records)),
    }


def summarize(records: Iterable[ResultRecord], run_id: str | None = None) -> Summary:
    """summary.json (records.Summary); run_id defaults to the first record's."""
    recs = list(records)
    if run_id is None:
        run_id = next((str(r["run_id"]) for r in recs if r.get("run_id")), None)
    outcomes = Counter(outcome(r) for r in recs)
    judged = [r for r in recs if counted(r)]  # inconclusive sessions answer nothing: out of every share
    per_nat: dict[str, Shares] = {}
    for kind in nat_kinds(judged):
        # A session counts for each of its NAT kinds, once when both sides share the kind.
        per_nat[kind] = _shares([r for r in judged if kind in (r.get("nat_a"), r.get("nat_b"))])
    overall = _shares(judged)
    return {
        "run_id": run_id,
        "sessions": len(recs),
        "passed": outcomes["passed"],
        "violated": outcomes["violated"],
        "unchecked": outcomes["unchecked"],
        "inconclusive": outcomes["inconclusive"],
        "relay_needed_share": overall["relay_needed_share"],
        "relay_needed_unknown": overall["relay_needed_unknown"],
        "relay_won_share": overall["relay_won_share"],
        "per_nat": per_nat,
        "violations": [_violation(r) for r in recs if outcome(r) == VIOLATED],
    }


def _violation(record: ResultRecord) -> Violation:
    repeat = record.get("repeat")
    return {
        "scenario": record.get("scenario"),
        "repeat": repeat if isinstance(repeat, int) else None,
        "mismatch": record.get("mismatch"),
        "reason": record.get("reason"),
    }


def write_summary(run_dir: Path | str, partial: bool = False) -> Path:
    """Write run_dir/summary.json from results.jsonl (atomically) and return its path.

    The run id is the records' own, else the directory's name.
    """
    directory = Path(run_dir)
    summary = summarize(load_records(directory))
    if summary["run_id"] is None:
        summary["run_id"] = directory.name
    if partial:
        summary["partial"] = True
    # A full disk (WriteError naming the file) leaves no temporary file behind.
    return runfiles.write_file(directory / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
