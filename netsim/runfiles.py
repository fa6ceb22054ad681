"""A run directory's files and the one writer of results.jsonl, below every stage that writes records.

The suite and the crowd append records while they run; the results stage (netsim.results.store) reads them
back, summarizes and reports. Keeping the writer here lets the suite write a run without importing the
results stage above it (docs/DESIGN.md: data flows one way).
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import time
from pathlib import Path

from netsim.records import ResultRecord

RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.json"


def new_run_id() -> str:
    """UTC timestamp plus a random suffix, e.g. 20261129-043500-ab12 (sorts by time, unique enough)."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


def run_dir(reports_root: Path | str, run_id: str) -> Path:
    """reports_root/run_id, created if missing."""
    path = Path(reports_root) / run_id
    path.mkdir(parents=True, exist_ok=True)
    return path


def append_record(run_dir: Path | str, record: ResultRecord) -> None:
    """Append one record as a single line to run_dir/results.jsonl.


    Several pytest-xdist workers append to the same file: O_APPEND makes each write land at the end, and the
    exclusive flock keeps a large line (which may need several write calls) from interleaving with others.
    A write that fails part-way (a full disk) is cut off again before the error goes on: the file keeps
    only whole lines.
    """
    line = (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()
    path = Path(run_dir) / RESULTS_FILE
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            end = os.fstat(fd).st_size
            view = memoryview(line)
            try:
                while view:
                    view = view[os.write(fd, view) :]
            except OSError:
                os.ftruncate(fd, end)  # no truncated line: the record is either whole or absent
                raise
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
