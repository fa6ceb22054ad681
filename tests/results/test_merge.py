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
        ({"versions": {**VERSIONS, "aiortc": "1.15.0"}}, "versions.aiortc differs: 1.16.0 in "),
        ({"versions": {**VERSIONS, "chromium": "150.0"}}, None),  # a key the other run lacks: no difference
        ({"schema_version": 1}, "schema_version differs: 2 in "),
        ({"expected": None}, "expectations differs: checked in "),
        (
            {"expected": {"needs_relay": True, "connect": True, "verdict": None}},
            "expected.needs_relay of matrix-turn/open__open differs: false in ",
        ),
        # Where an expectation came from is no part of it (a scenario file's path differs between checkouts).
        (
            {"expected": {"needs_relay": False, "connect": True, "verdict": None, "source": "/x: expect"}},
            None,
        ),
    ],
)
def test_what_decides_outcomes_is_compared_key_by_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, changes: dict[str, Any], message: str | None
) -> None:
    monkeypatch.chdir(tmp_path)  # runs named as a user names them: reports/m2, not a 60-character path
    a = _run(Path("m1"), ("open",))
    b = _run(Path("m2"), ("open",), **changes)
    if message is None:
        assert merge_runs([a, b], tmp_path / "out", report=False).overridden == []
        return
    with pytest.raises(MergeError) as info:
        merge_runs([a, b], tmp_path / "out")
    text = str(info.value)
    assert text.startswith(message) and text.endswith(" in m2; --force merges anyway")
    assert not (tmp_path / "out").exists()
    merged = merge_runs([a, b], tmp_path / "out", force=True, report=False)
    assert merged.sessions == 4 and len(merged.overridden) == 1


def _chromium(record: dict[str, Any], lab: str, pin: str, extra: tuple[str, ...] = ()) -> None:
    """A Chromium x Chromium session as a lab launches it: per-lab profile paths and certificate pin."""
    record["versions"] = {**VERSIONS, "chromium": "156.0.8078.129"}
    for side in ("a", "b"):
        record[side]["peer"] = "chromium"
        flags = ["--headless", "--disable-gpu", f"--ignore-certificate-errors-spki-list={pin}", *extra]
        flags.append(f"--user-data-dir=/run/netsim/{lab}/browsers/chromium-{side}{lab[-4:]}/data")
        record[side]["browser"] = {"version": "156.0.8078.129", "flags": flags, "mdns": False}


def _chromium_run(path: Path, labs: list[str], extra: tuple[str, ...] = ()) -> Path:
    rng = random.Random(3)
    records = []
    for i, lab in enumerate(labs):
        r = make_record(rng, "matrix-turn-chromium", "open", "open", repeat=i, scenario="mtc/open__open")
        r.update({"run_id": path.name, "schema_version": 2})
        _chromium(r, lab, pin=f"pin{lab}==", extra=extra)
        records.append(r)
    write_results(path, records)
    return path


def test_chromium_sessions_of_different_labs_merge(tmp_path: Path) -> None:
    """Issue 17: each lab's profile directory and certificate pin are launch settings with placeholders,
    not versions: two shards that both hold Chromium sessions (and a run alone) merge without --force."""
    a = _chromium_run(tmp_path / "s1", ["nk1a2b", "nk3c4d"])
    b = _chromium_run(tmp_path / "s2", ["nk5e6f"])
    assert merge_runs([a], tmp_path / "alone", report=False).overridden == []
    merged = merge_runs([a, b], tmp_path / "out", report=False)
    assert merged.overridden == [] and merged.warnings == [] and merged.sessions == 3
    # Records of the time before flags left `versions` kept them there, per lab: still no difference.
    for run, lab in ((a, "nkaaaa"), (b, "nkbbbb")):
        records = store.load_records(run)
        for r in records:
            r["versions"]["chromium_flags"] = [f"--user-data-dir=/run/netsim/{lab}/data", "--headless"]
        write_results(run, records)
    assert merge_runs([a, b], tmp_path / "old", report=False).overridden == []


def test_a_scenario_must_launch_the_same_way_in_every_run(tmp_path: Path) -> None:
    a = _chromium_run(tmp_path / "s1", ["nk1a2b"])
    b = _chromium_run(tmp_path / "s2", ["nk5e6f"], extra=("--enable-features=Foo",))
    with pytest.raises(MergeError) as info:
        merge_runs([a, b], tmp_path / "out")
    text = str(info.value)
    assert text.startswith("launch of mtc/open__open.a.flags (0 only in one, 1 only in the other) differs: ")
    assert "--enable-features=Foo in " in text and len(text) < 285


def test_a_kernel_difference_is_a_warning_kept_in_the_merged_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    a = _run(Path("m1"), ("open",))
    b = _run(Path("m2"), ("open",), versions={**VERSIONS, "kernel": "6.8.0-1017-azure"})
    merged = merge_runs([a, b], tmp_path / "out", report=False)
    assert merged.overridden == []
    assert merged.warnings == ["versions.kernel differs: 6.18.44 in m1, 6.8.0-1017-azure in m2"]
    info = json.loads((tmp_path / "out" / "run.json").read_text())
    assert info["warnings"] == merged.warnings
    assert [(m["run"], m["sessions"]) for m in info["merged_from"]] == [("m1", 2), ("m2", 2)]


def test_a_refusal_is_one_short_line_whatever_the_values(tmp_path: Path) -> None:
    """The issue's refusal was one line of 225,691 characters."""
    huge = {**VERSIONS, "aiortc": "x" * 200_000 + "\n" + "y" * 25_000}
    a = _run(tmp_path / ("m" * 120), ("open", "full-cone"))
    b = _run(tmp_path / "m2", ("open", "full-cone"), versions=huge, schema_version=1)
    with pytest.raises(MergeError) as info:
        merge_runs([a, b], tmp_path / "out")
    text = str(info.value)
    assert "\n" not in text and len("netsim: error: " + text) < 300
    assert text.startswith("versions.aiortc differs: 1.16.0 in …") and text.endswith(
        "(+1 more); --force merges anyway"
    )


def test_shards_and_their_durations_are_kept(tmp_path: Path) -> None:
    a = _run(tmp_path / "m1", ("open",))
    b = _run(tmp_path / "m2", ("full-cone",))
    for run, (start, end) in ((a, ("04:35:00", "04:39:10")), (b, ("04:35:02", "04:41:00"))):
        info = {"commit": "abc", "started": f"2026-11-29T{start}Z", "finished": f"2026-11-29T{end}Z"}
        (run / "run.json").write_text(json.dumps({**info, "wall_s": 1.0}))
    merge_runs([a, b], tmp_path / "out", report=False)
    info = json.loads((tmp_path / "out" / "run.json").read_text())
    assert info["commit"] == "abc" and info["wall_s"] == 360.0
    assert [m["wall_s"] for m in info["merged_from"]] == [1.0, 1.0]


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
    assert err.startswith("netsim: error: schema_version differs") and err.count("\n") == 1
    assert main(["merge", str(a), str(b), "-o", str(tmp_path / "out"), "--force"]) == 0
    out = capsys.readouterr().out
    assert "merged anyway: schema_version differs" in out and "4 sessions from 2 runs" in out
    assert "HTML report:" in out


def test_runs_are_compared_by_the_values_each_holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run whose sessions hold a version the other's do not is refused, naming that version; two runs
    holding the same versions merge; a commit difference is a warning."""
    monkeypatch.chdir(tmp_path)
    a = _run(Path("m1"), ("open", "full-cone"))
    b = _run(Path("m2"), ("open", "full-cone"))
    mixed = store.load_records(b)
    mixed[-1]["versions"] = {**VERSIONS, "coturn": "4.7.0"}
    write_results(b, mixed)
    with pytest.raises(MergeError, match=r"^versions.coturn differs: 4.6.1 in m1, 4.7.0 in m2; --force"):
        merge_runs([a, b], tmp_path / "out")
    both = store.load_records(a)
    both[0]["versions"] = {**VERSIONS, "coturn": "4.7.0"}
    write_results(a, both)
    for run, commit in ((a, "abc"), (b, "def")):
        (run / "run.json").write_text(json.dumps({"commit": commit, "started": None, "finished": None}))
    merged = merge_runs([a, b], tmp_path / "out", report=False)
    assert merged.overridden == [] and merged.warnings == ["commit differs: abc in m1, def in m2"]
