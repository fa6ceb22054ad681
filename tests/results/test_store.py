"""netsim.results.store and .versions: run ids and directories, results.jsonl, summary.json (no root)."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import re
from pathlib import Path
from typing import Any

import pytest

from netsim import runfiles, versions
from netsim.results import store as results
from tests.results.report_fixtures import sample_records, write_results


def rec(nat_a: str, nat_b: str, verdict: str, needs_relay: bool | None = False, **kw: Any) -> dict[str, Any]:
    r: dict[str, Any] = {"group": "matrix-turn", "nat_a": nat_a, "nat_b": nat_b, "verdict": verdict}
    passed = kw.pop("passed", True)
    outcome = kw.pop("outcome", "passed" if passed else "violated")
    r.update(needs_relay=needs_relay, passed=passed, outcome=outcome, **kw)
    return r


def test_load_records_roundtrip_and_skips_garbage(tmp_path: Path) -> None:
    runfiles.append_record(tmp_path, {"scenario": "x", "n": 1})
    with (tmp_path / "results.jsonl").open("a") as fh:
        fh.write("\n{not json\n[1, 2]\n")
    runfiles.append_record(tmp_path, {"scenario": "y", "n": 2})
    assert results.load_records(tmp_path) == [{"scenario": "x", "n": 1}, {"scenario": "y", "n": 2}]


def test_load_records_missing_file_names_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "results.jsonl"))):
        results.load_records(tmp_path)


def test_summarize_shares_and_per_nat_counting() -> None:
    records = [
        rec("full-cone", "symmetric", "direct", needs_relay=False),
        rec("symmetric", "symmetric", "relay", needs_relay=True, relay_side="both"),
        rec("symmetric", "udp-blocked", "failed", needs_relay=None, passed=False, scenario="f/x", repeat=2)
        | {"mismatch": "connects  True  False", "reason": "TURN allocation timed out"},
        rec("open", "open", "direct-host", needs_relay=False, run_id="R1", outcome="unchecked", passed=None),
    ]
    assert results.summarize(records) == {
        "run_id": "R1",  # the first record's that has one
        "sessions": 4,
        "passed": 2,
        "violated": 1,
        "unchecked": 1,
        "inconclusive": 0,
        "relay_needed_share": 0.3333,  # 1 of 3: null needs_relay is left out of the denominator ...
        "relay_needed_unknown": 1,  # ... and counted here
        "relay_won_share": 0.25,
        "per_nat": {  # in display order; symmetric/symmetric counts once for "symmetric": 3 sessions, not 4
            "open": {
                "sessions": 1,
                "relay_needed_share": 0.0,
                "relay_needed_unknown": 0,
                "relay_won_share": 0.0,
            },
            "full-cone": {
                "sessions": 1,
                "relay_needed_share": 0.0,
                "relay_needed_unknown": 0,
                "relay_won_share": 0.0,
            },
            "symmetric": {
                "sessions": 3,
                "relay_needed_share": 0.5,
                "relay_needed_unknown": 1,
                "relay_won_share": 0.3333,
            },
            "udp-blocked": {
                "sessions": 1,
                "relay_needed_share": None,
                "relay_needed_unknown": 1,
                "relay_won_share": 0.0,
            },
        },
        "violations": [  # the sessions counted in `failed`, with what did not hold and why
            {
                "scenario": "f/x",
                "repeat": 2,
                "mismatch": "connects  True  False",
                "reason": "TURN allocation timed out",
            }
        ],
    }
    assert results.summarize(records, run_id="given")["run_id"] == "given"


def test_summarize_empty_and_partial_records() -> None:
    assert results.summarize([], run_id="R") == {
        "run_id": "R",
        "sessions": 0,
        "passed": 0,
        "violated": 0,
        "unchecked": 0,
        "inconclusive": 0,
        "relay_needed_share": None,
        "relay_needed_unknown": 0,
        "relay_won_share": None,
        "per_nat": {},
        "violations": [],
    }
    # Schema 1 records (no outcome): without an expectation a session is unchecked, whatever `passed` says.
    old = [{}, {"verdict": "relay", "passed": True}, {"expected": {"connect": True}, "passed": False}]
    assert results.summarize(old) == {
        "run_id": None,
        "sessions": 3,
        "passed": 0,
        "violated": 1,
        "unchecked": 2,
        "inconclusive": 0,
        "relay_needed_share": None,
        "relay_needed_unknown": 3,
        "relay_won_share": 0.3333,
        "per_nat": {},
        "violations": [{"scenario": None, "repeat": None, "mismatch": None, "reason": None}],
    }


def test_inconclusive_sessions_are_counted_apart_and_left_out_of_shares() -> None:
    """An inconclusive session answers nothing: counted as such, in no share; schema 2's `failed` outcome
    reads as violated."""
    records = [
        rec("symmetric", "symmetric", "relay", needs_relay=True),
        rec("symmetric", "full-cone", "failed", needs_relay=True, outcome="inconclusive", passed=None),
        rec("full-cone", "full-cone", "direct", needs_relay=False, outcome="failed", passed=False),
    ]
    summary = results.summarize(records)
    assert (summary["passed"], summary["violated"], summary["inconclusive"]) == (1, 1, 1)
    assert summary["relay_needed_share"] == 0.5  # 1 of the 2 conclusive sessions
    assert summary["relay_won_share"] == 0.5
    assert summary["per_nat"]["symmetric"]["sessions"] == 1


def test_write_summary_matches_summarize(tmp_path: Path) -> None:
    records = sample_records()
    write_results(tmp_path, records)
    path = results.write_summary(tmp_path)
    assert json.loads(path.read_text()) == results.summarize(records)


def test_write_summary_falls_back_to_dir_name(tmp_path: Path) -> None:
    d = tmp_path / "20261129-000000-beef"
    write_results(d, [])
    path = results.write_summary(d)
    assert path == d / "summary.json"
    assert json.loads(path.read_text()) == {
        "run_id": "20261129-000000-beef",
        "sessions": 0,
        "passed": 0,
        "violated": 0,
        "unchecked": 0,
        "inconclusive": 0,
        "relay_needed_share": None,
        "relay_needed_unknown": 0,
        "relay_won_share": None,
        "per_nat": {},
        "violations": [],
    }
    assert sorted(p.name for p in d.iterdir()) == ["results.jsonl", "summary.json"]  # no temporary file left


def test_versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "turnserver"
    fake.write_text("#!/bin/sh\necho \"Coturn-4.6.1 'Gorst'\"\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert versions.versions() == {
        "aiortc": importlib.metadata.version("aiortc"),
        "aioice": importlib.metadata.version("aioice"),
        "coturn": "4.6.1",
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def test_coturn_version_absent_or_silent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert versions.coturn_version() is None
    fake = tmp_path / "turnserver"
    fake.write_text("#!/bin/sh\necho 'no version here'\n")
    fake.chmod(0o755)
    assert versions.coturn_version() is None
    assert versions.dist_version("no-such-distribution-netsim") is None
