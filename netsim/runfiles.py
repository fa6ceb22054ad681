"""A run directory's files and the one writer of results.jsonl, below every stage that writes records.

The suite and the crowd append records while they run; the results stage (netsim.results.store) reads them
back, summarizes and reports. Keeping the writer here lets the suite write a run without importing the
results stage above it (docs/DESIGN.md: data flows one way).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import tempfile
import time
from pathlib import Path, PurePosixPath
from typing import Final

from netsim.errors import InputError, printable
from netsim.records import ResultRecord

RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.json"
_DRIVE: Final = re.compile(r"^[A-Za-z]:")


class PathError(InputError):
    """A name taken from a record that is not a file inside its run directory; the message names it."""


class WriteError(InputError):
    """An output that cannot be written (a full disk, a symlink in its place): one line naming the path."""


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


# --- names from records ---


def inside(run_dir: Path | str, name: object) -> Path:
    """The file a record names (a capture, a rules file, ...), resolved strictly inside run_dir.

    Records may come from someone else: their paths are names, never paths of this machine. Refused
    (PathError) before anything is read or written: an empty name, an absolute one, `..`, a backslash or
    a drive (`C:`), control characters or surrounding spaces, and a symlink that leads out of run_dir.
    The only place a name from a record becomes a path (tests/results/test_untrusted.py checks this).
    """
    text = str(name)
    shown = printable(text)
    if not text or text != text.strip() or printable(text) != text:
        raise PathError(f"{shown!r}: not a plain file name")
    if text.startswith("/") or "\\" in text or _DRIVE.match(text):
        raise PathError(f"{shown!r}: not a name inside the run directory")
    if ".." in PurePosixPath(text).parts:
        raise PathError(f"{shown!r}: leads out of the run directory (..)")
    base = Path(run_dir).resolve()
    path = (base / text).resolve()
    if not path.is_relative_to(base):
        raise PathError(f"{shown!r}: leads out of the run directory (a symlink)")
    return path


# --- writes that cannot be redirected ---


def no_symlink(path: Path | str) -> Path:
    """path, refused (WriteError) when it or any directory on the way to it, as given, is a symlink: an
    output the user names (-o FILE, --html FILE, merge's OUT) is never written through a link."""
    path = Path(path)
    for part in (*reversed(path.parents), path):
        if str(part) not in ("", ".", "/") and part.is_symlink():
            raise WriteError(f"{path}: {part} is a symlink; not writing through it")
    return path


def write_file(path: Path | str, data: str | bytes) -> Path:
    """Replace path with data, atomically: a new file of an unpredictable name made exclusively next to it
    (tempfile.mkstemp: O_EXCL, no symlink followed), written whole, then renamed over path. A reader never
    sees half a file and a planted symlink never receives it. A write error (a full disk) removes the new
    file and raises WriteError naming path; a symlink at path is refused (a path the user names is checked
    all the way down with `no_symlink`)."""
    path = Path(path)
    if path.is_symlink():
        raise WriteError(f"{path}: is a symlink; not writing through it")
    payload = data.encode() if isinstance(data, str) else data
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise WriteError(f"{path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o644)  # mkstemp's 0600 would hide a report from the web server
            fh.write(payload)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise WriteError(f"{path}: {exc.strerror or exc}") from None
    return path
