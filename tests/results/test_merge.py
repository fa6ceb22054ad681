"""netsim.results.merge: shards and runs into one run directory, refused when they would not compare."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from netsim.cli import main
from netsim.results import store
from netsim.results.merge import MergeError, merge_runs
from tests.results.report_fixtures import VERSIONS, make_record, write_results


def _run(path: Path, kinds: tuple[str, ...], repeats: int = 2, **changes: Any) -> Path:
    rng = random.Random(len(kinds))
    records = []
    for a in kinds:
        for i in range(repeats):
            r = make_record(rng, "matrix-turn", a, "open", repeat=i, scenario=f"matrix-turn/{a}__open")
            r.update({"run_id": path.name, "schema_version": 2, **changes})
            records.append(r)
    write_results(path, records)
    return path


def test_shards_merge_into_one_run_with_summary_and_report(tmp_path: Path) -> None:
    a = _run(tmp_path / "shard1", ("open", "full-cone"))
    b = _run(tmp_path / "shard2", ("symmetric",))
    merged = merge_runs([a, b], tmp_path / "all")
    records = store.load_records(tmp_path / "all")
    assert merged.sessions == len(records) == 6 and merged.runs == 2 and merged.overridden == []
    assert [r["scenario"] for r in records] == [
        r["scenario"] for r in store.load_records(a) + store.load_records(b)
    ]
    assert {r["run_id"] for r in records} == {"all"}
    summary = json.loads((tmp_path / "all" / "summary.json").read_text())
    assert summary["run_id"] == "all" and summary["sessions"] == 6
    assert merged.report == tmp_path / "all" / "index.html" and merged.report.is_file()
    assert not (tmp_path / "latest").exists()  # merging never moves reports/latest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all", "shard1", "shard2"]  # no temporary left


def test_repeats_of_the_same_scenario_are_renumbered(tmp_path: Path) -> None:
    a = _run(tmp_path / "m1", ("open",), repeats=3)
    b = _run(tmp_path / "m2", ("open",), repeats=2)
    merge_runs([a, b], tmp_path / "out", report=False)
    assert [r["repeat"] for r in store.load_records(tmp_path / "out")] == [0, 1, 2, 3, 4]
    assert not (tmp_path / "out" / "index.html").exists()


def test_captures_move_under_their_run(tmp_path: Path) -> None:
    a = _run(tmp_path / "m1", ("open",), repeats=1, pcap="pcap/x-r0.pcap")
    (a / "pcap").mkdir()
    (a / "pcap" / "x-r0.pcap").write_bytes(b"pcap")
    b = _run(tmp_path / "m2", ("open",), repeats=1, pcap="pcap/x-r0.pcap")  # same name, no file
    merge_runs([a, b], tmp_path / "out", report=False)
    first, second = store.load_records(tmp_path / "out")
    assert (
        first["pcap"] == "pcap/m1/x-r0.pcap"
        and (tmp_path / "out" / "pcap/m1/x-r0.pcap").read_bytes() == b"pcap"
    )
    assert second["pcap"] == "pcap/x-r0.pcap"  # nothing to copy: left as recorded


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"versions": {**VERSIONS, "aiortc": "1.15.0"}}, "versions under test differ (versions: "),
        ({"schema_version": 1}, "record schemas differ (schema_version: 2 in "),
        ({"expected": None}, "expectations differ (expected: "),
        (
            {"expected": {"needs_relay": True, "connect": True, "verdict": None}},
            "expectations differ (expected of matrix-turn/open__open: ",
        ),
    ],
)
def test_incompatible_runs_are_refused_unless_forced(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    a = _run(tmp_path / "m1", ("open",))
    b = _run(tmp_path / "m2", ("open",), **changes)
    with pytest.raises(MergeError) as info:
        merge_runs([a, b], tmp_path / "out")
    assert message in str(info.value) and str(b) in str(info.value) and "--force" in str(info.value)
    assert not (tmp_path / "out").exists()
    merged = merge_runs([a, b], tmp_path / "out", force=True, report=False)
    assert merged.sessions == 4 and len(merged.overridden) == 1


def test_bad_inputs(tmp_path: Path) -> None:
    a = _run(tmp_path / "m1", ("open",))
    (tmp_path / "empty").mkdir()
    with pytest.raises(MergeError, match=r"empty: not a run directory \(no results.jsonl\)"):
        merge_runs([a, tmp_path / "empty"], tmp_path / "out")
    with pytest.raises(MergeError, match="m1: given twice"):
        merge_runs([a, a / ".." / "m1"], tmp_path / "out")
    with pytest.raises(MergeError, match="is one of the runs being merged"):
        merge_runs([a], a)
    with pytest.raises(MergeError, match="exists and is not an empty directory"):
        merge_runs([a], a.parent)
    (tmp_path / "blank").mkdir()
    write_results(tmp_path / "blank", [])
    with pytest.raises(MergeError, match="the runs hold no records"):
        merge_runs([tmp_path / "blank"], tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blank", "empty", "m1"]


def test_cli_merge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _run(tmp_path / "m1", ("open",))
    b = _run(tmp_path / "m2", ("open",), schema_version=1)
    assert main(["merge", str(a), str(b), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("netsim: error: record schemas differ") and err.count("\n") == 1
    assert main(["merge", str(a), str(b), "-o", str(tmp_path / "out"), "--force"]) == 0
    out = capsys.readouterr().out
    assert "merged anyway: record schemas differ" in out and "4 sessions from 2 runs" in out
    assert "HTML report:" in out
