"""netsim.results.store: record files, summary.json, matrix table (no root)."""

from __future__ import annotations

import json
import multiprocessing
import platform
import re
from pathlib import Path
from typing import Any

import pytest
from report_fixtures import sample_records, write_results

from netsim.results import store as results


def rec(nat_a: str, nat_b: str, verdict: str, needs_relay: bool | None = False, **kw: Any) -> dict[str, Any]:
    r: dict[str, Any] = {"group": "matrix-turn", "nat_a": nat_a, "nat_b": nat_b, "verdict": verdict}
    r.update(needs_relay=needs_relay, passed=kw.pop("passed", True), **kw)
    return r


def test_new_run_id_format() -> None:
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{4}", results.new_run_id())


def test_run_dir_is_created(tmp_path: Path) -> None:
    d = results.run_dir(tmp_path / "reports", "20261129-043500-ab12")
    assert d == tmp_path / "reports" / "20261129-043500-ab12" and d.is_dir()


def _writer(directory: str, worker: int, count: int) -> None:
    for i in range(count):
        # ~200 kB per line: more than one pipe/page worth, so unlocked writes could interleave.
        results.append_record(Path(directory), {"worker": worker, "i": i, "pad": str(worker) * 200_000})


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


def test_load_records_roundtrip_and_skips_garbage(tmp_path: Path) -> None:
    results.append_record(tmp_path, {"scenario": "x", "n": 1})
    with (tmp_path / "results.jsonl").open("a") as fh:
        fh.write("\n{not json\n[1, 2]\n")
    results.append_record(tmp_path, {"scenario": "y", "n": 2})
    assert results.load_records(tmp_path) == [{"scenario": "x", "n": 1}, {"scenario": "y", "n": 2}]


def test_load_records_missing_file_names_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "results.jsonl"))):
        results.load_records(tmp_path)


def test_summarize_shares_and_per_nat_counting() -> None:
    records = [
        rec("full-cone", "symmetric", "direct", needs_relay=False),
        rec("symmetric", "symmetric", "relay", needs_relay=True, relay_side="both"),
        rec("symmetric", "udp-blocked", "failed", needs_relay=None, passed=False),
        rec("open", "open", "direct-host", needs_relay=False, run_id="R1"),
    ]
    s = results.summarize(records)
    assert s["run_id"] == "R1"
    assert (s["sessions"], s["passed"], s["failed"]) == (4, 3, 1)
    assert s["relay_needed_share"] == 0.3333  # 1 of 3: null needs_relay is left out of the denominator
    assert s["relay_won_share"] == 0.25
    # symmetric/symmetric counts once for "symmetric": 3 sessions, not 4.
    assert s["per_nat"]["symmetric"] == {"sessions": 3, "relay_needed_share": 0.5, "relay_won_share": 0.3333}
    assert s["per_nat"]["open"]["sessions"] == 1
    assert s["per_nat"]["udp-blocked"] == {"sessions": 1, "relay_needed_share": None, "relay_won_share": 0.0}
    assert list(s["per_nat"]) == ["open", "full-cone", "symmetric", "udp-blocked"]


def test_summarize_empty_and_partial_records() -> None:
    assert results.summarize([], run_id="R") == {
        "run_id": "R",
        "sessions": 0,
        "passed": 0,
        "failed": 0,
        "relay_needed_share": None,
        "relay_won_share": None,
        "per_nat": {},
    }
    s = results.summarize([{}, {"verdict": "relay"}])
    assert (s["sessions"], s["failed"], s["relay_won_share"], s["per_nat"]) == (2, 2, 0.5, {})


def test_write_summary_matches_summarize(tmp_path: Path) -> None:
    records = sample_records()
    write_results(tmp_path, records)
    path = results.write_summary(tmp_path)
    assert json.loads(path.read_text()) == results.summarize(records)


def test_write_summary_falls_back_to_dir_name(tmp_path: Path) -> None:
    d = tmp_path / "20261129-000000-beef"
    write_results(d, [])
    assert json.loads(results.write_summary(d).read_text())["run_id"] == "20261129-000000-beef"


def test_versions_keys() -> None:
    v = results.versions()
    assert set(v) == {"aiortc", "aioice", "coturn", "kernel", "python"}
    assert v["python"] == platform.python_version() and v["kernel"] == platform.release()


def test_coturn_version_parsing_and_absence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert results.coturn_version() is None
    fake = tmp_path / "turnserver"
    fake.write_text("#!/bin/sh\necho \"Coturn-4.6.1 'Gorst'\"\n")
    fake.chmod(0o755)
    assert results.coturn_version() == "4.6.1"


def test_nat_order_known_then_alphabetical() -> None:
    kinds = ["zeta", "symmetric", "udp-blocked", "cgn", "open", "restricted-cone", "full-cone"]
    assert sorted(kinds, key=results.nat_sort_key) == [
        "open",
        "full-cone",
        "restricted-cone",
        "symmetric",
        "udp-blocked",
        "cgn",
        "zeta",
    ]


def test_outcome_and_cell_labels() -> None:
    direct = rec("a", "b", "direct", a={"local_type": "srflx", "remote_type": "prflx"})
    relay_b = rec("a", "b", "relay", relay_side="b")
    failed = rec("a", "b", "failed", a={"state": "failed"})
    assert results.outcome_label(direct) == "direct srflx/prflx"
    assert results.outcome_label(relay_b) == "relay(b)"
    assert results.outcome_label(failed) == "FAILED"
    assert results.outcome_label({}) == "FAILED"
    assert results.cell_label([direct, direct]) == "direct srflx/prflx"
    assert results.cell_label([direct, relay_b, direct, failed]) == "direct 2/relay 1/FAILED 1"
    # Same verdict, different pairs: the distribution keeps the pairs.
    other = rec("a", "b", "direct", a={"local_type": "srflx", "remote_type": "srflx"})
    assert results.cell_label([direct, other, other]) == "direct srflx/srflx 2/direct srflx/prflx 1"


def test_matrix_table_layout() -> None:
    table = results.matrix_table(sample_records(), "matrix-turn")
    lines = table.splitlines()
    assert lines[0] == "matrix-turn:"
    header = lines[1].split()
    assert header[:3] == ["nat_a", "\\", "nat_b"]
    assert header[3:] == [
        "open",
        "full-cone",
        "restricted-cone",
        "port-restricted-cone",
        "symmetric",
        "udp-blocked",
    ]
    rows = {line.split()[0]: line for line in lines[3:]}
    assert list(rows) == [*header[3:], "cgn-symmetric"]  # unknown kinds last
    assert "direct 3/relay 2" in rows["full-cone"]
    assert rows["open"].split()[-1] == "relay(b)"
    assert rows["udp-blocked"].split()[-1] == "FAILED"
    assert rows["cgn-symmetric"].split()[1:] == ["-", "relay(a)", "-", "-", "-", "-"]
    # columns line up: every cell starts where its header starts
    col = lines[1].index("udp-blocked")
    assert all(line[col:].split()[0] in {"relay(b)", "FAILED", "-"} for line in lines[3:])


def test_matrix_table_empty_group() -> None:
    assert results.matrix_table(sample_records(), "nope") == "nope: no sessions"
