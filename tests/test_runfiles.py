"""The run directory's writer (netsim.runfiles): run ids, directories, whole lines from many writers."""

from __future__ import annotations

import json
import multiprocessing
import re
from pathlib import Path
from typing import Any

import pytest

from netsim import runfiles


def test_new_run_id_format() -> None:
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{4}", runfiles.new_run_id())


def test_run_dir_is_created(tmp_path: Path) -> None:
    d = runfiles.run_dir(tmp_path / "reports", "20261129-043500-ab12")
    assert d == tmp_path / "reports" / "20261129-043500-ab12" and d.is_dir()


def _writer(directory: str, worker: int, count: int) -> None:
    for i in range(count):
        # ~200 kB per line: more than one pipe/page worth, so unlocked writes could interleave.
        runfiles.append_record(Path(directory), {"worker": worker, "i": i, "pad": str(worker) * 200_000})


def test_append_record_concurrent_writers_keep_lines_whole(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, 15)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    lines = (tmp_path / "results.jsonl").read_bytes().split(b"\n")
    assert lines[-1] == b""  # every record ends with a newline
    loaded = [json.loads(line) for line in lines[:-1]]  # raises if any line was torn
    assert len(loaded) == 60
    for w in range(4):
        mine = [r["i"] for r in loaded if r["worker"] == w]
        assert mine == list(range(15))  # each worker's own records stay in order
        assert all(r["pad"] == str(w) * 200_000 for r in loaded if r["worker"] == w)


def test_a_write_that_fails_part_way_leaves_whole_lines_only(tmp_path: Path, monkeypatch: Any) -> None:
    """A full disk mid-record: the partial line is cut off again and the error goes on."""
    import errno
    import os as real_os

    runfiles.append_record(tmp_path, {"scenario": "kept"})
    writes = []

    def short_then_full(fd: int, data: Any) -> int:
        writes.append(len(data))
        if len(writes) == 1:
            return real_os.write(fd, bytes(data[:10]))  # a short write...
        raise OSError(errno.ENOSPC, "No space left on device")  # ...then the disk is full

    monkeypatch.setattr(runfiles.os, "write", short_then_full)
    with pytest.raises(OSError, match="No space left"):
        runfiles.append_record(tmp_path, {"scenario": "lost", "pad": "x" * 100})
    monkeypatch.undo()
    assert (tmp_path / "results.jsonl").read_text() == '{"scenario":"kept"}\n'


@pytest.mark.parametrize(
    "name",
    [
        "",
        "../x.pcap",
        "pcap/../../x",
        "/etc/passwd",
        "\\\\host\\x.pcap",
        "C:x.pcap",
        " x.pcap",
        "x\n.pcap",
        "pcap/\x1b[2J.pcap",
        "pcap/out/x.pcap",
    ],
)
def test_a_name_from_a_record_stays_inside_its_run(tmp_path: Path, name: str) -> None:
    (tmp_path / "run" / "pcap").mkdir(parents=True)
    (tmp_path / "run" / "pcap" / "out").symlink_to(tmp_path)  # a symlink leading out of the run
    with pytest.raises(runfiles.PathError):
        runfiles.inside(tmp_path / "run", name)


def test_a_name_inside_the_run_resolves(tmp_path: Path) -> None:
    (tmp_path / "pcap").mkdir()
    (tmp_path / "pcap" / "in").symlink_to(tmp_path / "pcap")  # a symlink that stays inside is fine
    assert runfiles.inside(tmp_path, "pcap/in/a b:c.pcap") == tmp_path.resolve() / "pcap" / "a b:c.pcap"
