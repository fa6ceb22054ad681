"""Result records: results.jsonl (one JSON object per session), summary.json and the terminal matrix table.

The record schema is documented in docs/DESIGN.md. Everything here is pure logic (no root, no lab) and
tolerant of partial records, because a crashed session may still leave a record worth reporting.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import json
import logging
import os
import platform
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.json"

# Roughly from most to least permissive; anything else sorts after these, alphabetically.
NAT_ORDER = (
    "open",
    "full-cone",
    "restricted-cone",
    "port-restricted-cone",
    "symmetric",
    "udp-blocked",
)
VERDICTS = ("direct-host", "direct", "relay", "failed")

Record = dict[str, Any]


def new_run_id() -> str:
    """UTC timestamp plus a random suffix, e.g. 20261129-043500-ab12 (sorts by time, unique enough)."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


def run_dir(reports_root: Path | str, run_id: str) -> Path:
    """reports_root/run_id, created if missing."""
    path = Path(reports_root) / run_id
    path.mkdir(parents=True, exist_ok=True)
    return path


def append_record(run_dir: Path | str, record: Mapping[str, Any]) -> None:
    """Append one record as a single line to run_dir/results.jsonl.

    Several pytest-xdist workers append to the same file: O_APPEND makes each write land at the end, and the
    exclusive flock keeps a large line (which may need several write calls) from interleaving with others.
    """
    line = (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()
    path = Path(run_dir) / RESULTS_FILE
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def load_records(run_dir: Path | str) -> list[Record]:
    """All records of run_dir/results.jsonl in file order; malformed lines are skipped with a warning."""
    path = Path(run_dir) / RESULTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"results file not found: {path}")
    records: list[Record] = []
    with path.open("rb") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_SH)  # never read a line another worker is half-way writing
        data = fh.read()
    for lineno, raw in enumerate(data.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except ValueError as exc:
            log.warning("%s:%d: skipping malformed line: %s", path, lineno, exc)
            continue
        if isinstance(obj, dict):
            records.append(obj)
        else:
            log.warning("%s:%d: skipping non-object line", path, lineno)
    return records


def nat_sort_key(kind: str) -> tuple[int, str]:
    """Known NAT kinds in NAT_ORDER, then any others alphabetically."""
    try:
        return (NAT_ORDER.index(kind), "")
    except ValueError:
        return (len(NAT_ORDER), kind)


def nat_kinds(records: Iterable[Mapping[str, Any]]) -> list[str]:
    kinds = {str(r[k]) for r in records for k in ("nat_a", "nat_b") if r.get(k)}
    return sorted(kinds, key=nat_sort_key)


def _share(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def _shares(records: list[Mapping[str, Any]]) -> dict[str, Any]:
    known = [r for r in records if r.get("needs_relay") is not None]
    return {
        "sessions": len(records),
        "relay_needed_share": _share(sum(r.get("needs_relay") is True for r in known), len(known)),
        "relay_won_share": _share(sum(r.get("verdict") == "relay" for r in records), len(records)),
    }


def summarize(records: Iterable[Mapping[str, Any]], run_id: str | None = None) -> dict[str, Any]:
    """summary.json as in DESIGN.md; shares are null when nothing is known to divide by."""
    recs = list(records)
    if run_id is None:
        run_id = next((str(r["run_id"]) for r in recs if r.get("run_id")), None)
    passed = sum(r.get("passed") is True for r in recs)
    per_nat: dict[str, dict[str, Any]] = {}
    for kind in nat_kinds(recs):
        # A session counts for each of its NAT kinds, once when both sides share the kind.
        mine = [r for r in recs if kind in (r.get("nat_a"), r.get("nat_b"))]
        per_nat[kind] = _shares(mine)
    overall = _shares(recs)
    return {
        "run_id": run_id,
        "sessions": len(recs),
        "passed": passed,
        "failed": len(recs) - passed,
        "relay_needed_share": overall["relay_needed_share"],
        "relay_won_share": overall["relay_won_share"],
        "per_nat": per_nat,
    }


def write_summary(run_dir: Path | str) -> Path:
    """Write run_dir/summary.json from results.jsonl (atomically) and return its path."""
    directory = Path(run_dir)
    summary = summarize(load_records(directory), run_id=None)
    if summary["run_id"] is None:
        summary["run_id"] = directory.name
    path = directory / SUMMARY_FILE
    tmp = path.with_name(f".{SUMMARY_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def _dist_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def coturn_version() -> str | None:
    """Version printed by `turnserver --version`, or None when coturn is absent or says nothing useful."""
    exe = shutil.which("turnserver")
    if exe is None:
        return None
    try:
        cmd = [exe, "--version"]
        out = subprocess.run(
            cmd, capture_output=True, text=True, timeout=10, check=False, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\d+\.\d+(?:\.\d+)*", out.stdout + out.stderr)
    return match.group(0) if match else None


def versions() -> dict[str, str | None]:
    return {
        "aiortc": _dist_version("aiortc"),
        "aioice": _dist_version("aioice"),
        "coturn": coturn_version(),
        "kernel": platform.release(),
        "python": platform.python_version() or sys.version.split()[0],
    }


# --- outcome labels (shared with the HTML report) ---


def pair_types(record: Mapping[str, Any]) -> str | None:
    """Winning pair as seen by peer a, e.g. 'srflx/prflx' (local/remote), or None when unknown."""
    peer = record.get("a")
    if not isinstance(peer, Mapping):
        return None
    local, remote = peer.get("local_type"), peer.get("remote_type")
    if not local or not remote:
        return None
    return f"{local}/{remote}"


def coarse_outcome(record: Mapping[str, Any]) -> str:
    """One word per verdict: direct-host, direct, relay, FAILED (or the unknown verdict as-is)."""
    verdict = record.get("verdict")
    if verdict is None or verdict == "failed":
        return "FAILED"
    return str(verdict)


def outcome_label(record: Mapping[str, Any]) -> str:
    """Cell text for one session: 'direct srflx/prflx', 'relay(a)', 'FAILED'."""
    coarse = coarse_outcome(record)
    if coarse == "FAILED":
        return coarse
    if coarse == "relay":
        side = record.get("relay_side")
        return f"relay({side})" if side else "relay"
    pair = pair_types(record)
    return f"{coarse} {pair}" if pair else coarse


def distribution(labels: list[str]) -> list[tuple[str, int]]:
    """Label counts, most frequent first (ties in first-seen order)."""
    return Counter(labels).most_common()


def cell_label(records: list[Mapping[str, Any]]) -> str:
    """One matrix cell: the label when every repeat agrees, else a distribution like 'direct 3/relay 2'.

    The distribution uses coarse verdicts when those differ, full labels when only
    the pair or relay side does.
    """
    if not records:
        return ""
    full = [outcome_label(r) for r in records]
    if len(set(full)) == 1:
        return full[0]
    coarse = [coarse_outcome(r) for r in records]
    labels = full if len(set(coarse)) == 1 else coarse
    return "/".join(f"{label} {n}" for label, n in distribution(labels))


def group_cells(
    records: Iterable[Mapping[str, Any]], group: str | None
) -> dict[tuple[str, str], list[Mapping[str, Any]]]:
    """(nat_a, nat_b) -> records of that cell, for one group (or all records when group is None)."""
    cells: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for r in records:
        if group is not None and r.get("group") != group:
            continue
        if not r.get("nat_a") or not r.get("nat_b"):
            continue
        cells.setdefault((str(r["nat_a"]), str(r["nat_b"])), []).append(r)
    return cells


def matrix_table(records: Iterable[Mapping[str, Any]], group: str) -> str:
    """Plain-text NAT x NAT table of outcomes (rows nat_a, columns nat_b) for the pytest terminal summary."""
    cells = group_cells(records, group)
    if not cells:
        return f"{group}: no sessions"
    rows = sorted({a for a, _ in cells}, key=nat_sort_key)
    cols = sorted({b for _, b in cells}, key=nat_sort_key)
    corner = "nat_a \\ nat_b"
    table = [[corner, *cols]]
    for a in rows:
        table.append([a, *(cell_label(cells[(a, b)]) if (a, b) in cells else "-" for b in cols)])
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = [f"{group}:"]
    for i, row in enumerate(table):
        lines.append("  ".join(text.ljust(w) for text, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
