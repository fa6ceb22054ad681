"""The one reader of run directories: results.jsonl and run.json, for every command that reads them.

Run directories may come from someone else (a CI shard of another pull request), so what they hold is data
to check, never to trust. A line is skipped, with one warning naming the file, the line and the field, when
it is longer than MAX_LINE_BYTES, nested deeper than MAX_DEPTH, not a JSON object, holds a value of the
wrong type for its field (netsim.results.schema against the typed records), or a topology larger than
MAX_SITES sites or MAX_HOSTS hosts. A skipped line never stops the reader; the report lists them.

Warnings go to the `netsim.results` logger; the CLI shows them as `netsim: warning: ...` lines.
"""

from __future__ import annotations

import fcntl
import json
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Final, cast

from netsim import runfiles
from netsim.errors import InputError, printable
from netsim.records import ResultRecord, RunInfo
from netsim.results.schema import problem

log = logging.getLogger("netsim.results.reader")

MAX_LINE_BYTES: Final = 1 << 20  # a real record is a few kB to tens of kB (a coturn log tail, rules text)
MAX_DEPTH: Final = 24  # a real record nests 7 deep
MAX_SITES: Final = 16  # sites and carriers of one session's topology
MAX_HOSTS: Final = 32
_STRING: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')  # a JSON string (unrolled: fast on long lines)
_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in b"[]{}")


@dataclass(frozen=True)
class Skipped:
    """A line the reader left out, and why (the field and what was wrong with it)."""

    file: Path
    line: int
    why: str

    def text(self, short: bool = False) -> str:
        """'FILE:LINE: skipped: WHY' (short: the file's name only), safe for a terminal."""
        return printable(f"{self.file.name if short else self.file}:{self.line}: skipped: {self.why}")


@dataclass
class RunData:
    """A run directory as read: its records in file order and the lines left out."""

    path: Path
    records: list[ResultRecord] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def results_file(run_dir: Path | str) -> Path:
    """run_dir/results.jsonl, a file inside run_dir (FileNotFoundError naming it; InputError when it is a
    symlink out of the run)."""
    given = Path(run_dir) / runfiles.RESULTS_FILE
    if not given.is_file():
        raise FileNotFoundError(f"results file not found: {given}")
    try:
        return runfiles.inside(run_dir, runfiles.RESULTS_FILE)
    except runfiles.PathError as e:
        raise InputError(f"{given}: {e}") from None


def read_run(run_dir: Path | str) -> RunData:
    """Every record of run_dir/results.jsonl that passes the checks; the others in `skipped`, each
    warned about once."""
    path = results_file(run_dir)
    data = RunData(Path(run_dir))
    with path.open("rb") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_SH)  # never read a line another worker is half-way writing
        for lineno, raw in _lines(fh):
            obj, why = parse_line(raw)
            if why is not None:
                skip = Skipped(path, lineno, why)
                log.warning("%s", skip.text())
                data.skipped.append(skip)
            elif obj is not None:
                data.records.append(obj)
    return data


def _lines(fh: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """(line number, line) with no line held in memory beyond MAX_LINE_BYTES (a longer one: b'' + its
    length in a marker the parser refuses)."""
    lineno = 0
    while chunk := fh.readline(MAX_LINE_BYTES + 1):
        lineno += 1
        if len(chunk) > MAX_LINE_BYTES and not chunk.endswith(b"\n"):
            while (rest := fh.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                pass
            yield lineno, b"\0too long"
            continue
        yield lineno, chunk


def parse_line(raw: bytes) -> tuple[ResultRecord | None, str | None]:
    """(record, None), (None, why it is skipped), or (None, None) for a blank line."""
    if raw == b"\0too long":
        return None, f"line longer than {MAX_LINE_BYTES} bytes"
    if not raw.strip():
        return None, None
    obj, why = parse_json(raw)
    if why is not None:
        return None, why
    if not isinstance(obj, dict):
        return None, "not a JSON object"
    why = problem(obj, ResultRecord, "") or topology_problem(obj)
    return (None, why) if why else (cast(ResultRecord, obj), None)


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def parse_json(raw: bytes) -> tuple[Any, str | None]:
    """The JSON value of a line, or why not: too deep, not JSON (NaN and Infinity included)."""
    depth = 0
    for bracket in _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS):
        depth += 1 if bracket in b"[{" else -1
        if depth > MAX_DEPTH:
            return None, f"nested deeper than {MAX_DEPTH} levels"
    try:
        return json.loads(raw, parse_constant=_refuse_constant), None
    except (ValueError, RecursionError) as e:
        return None, f"not JSON ({' '.join(str(e).split())[:80]})"


def topology_problem(record: Mapping[str, Any]) -> str | None:
    """A topology too large for a session (types already checked): sites and carriers, hosts."""
    experiment = record.get("experiment")
    topology = experiment.get("topology") if isinstance(experiment, dict) else None
    if not isinstance(topology, dict):
        return None
    sites = topology.get("site") or []
    nodes = len(sites) + len(topology.get("carrier") or [])
    hosts = sum(len(s.get("hosts") or []) for s in sites if isinstance(s, dict))
    if nodes > MAX_SITES:
        return f"experiment.topology: {nodes} sites and carriers (at most {MAX_SITES})"
    if hosts > MAX_HOSTS:
        return f"experiment.topology: {hosts} hosts (at most {MAX_HOSTS})"
    return None


def read_info(run_dir: Path | str, file_name: str) -> RunInfo | None:
    """run_dir's run.json (`file_name`), or None when it has none, or it is not inside the run, too large,
    or not a RunInfo (a warning names why; it only informs)."""
    try:
        path = runfiles.inside(Path(run_dir), file_name)
        if not path.is_file():
            return None
        with path.open("rb") as fh:
            raw = fh.read(MAX_LINE_BYTES + 1)
    except (runfiles.PathError, OSError) as e:
        log.warning("%s", printable(f"{run_dir}/{file_name}: ignored: {e}"))
        return None
    obj, why = (None, f"larger than {MAX_LINE_BYTES} bytes") if len(raw) > MAX_LINE_BYTES else parse_json(raw)
    if why is None:
        why = "not a JSON object" if not isinstance(obj, dict) else problem(obj, RunInfo, "")
    if why is not None:
        log.warning("%s", printable(f"{path}: ignored: {why}"))
        return None
    return cast(RunInfo, obj)
