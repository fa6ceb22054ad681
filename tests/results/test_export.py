"""CSV export: one flat row per session (no root)."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

from netsim.results.export import COLUMNS, write_csv
from tests.results.report_fixtures import sample_records, write_results


def test_rows_are_flat_and_complete() -> None:
    record = {
        "run_id": "R",
        "scenario": "mine/x",
        "group": "mine",
        "repeat": 0,
        "nat_a": "symmetric",
        "nat_b": "full-cone",
        "turn": "none",
        "verdict": "failed",
        "needs_relay": True,
        "expected": {"connect": True},
        "outcome": "failed",
        "timings": {"first_echo_s": None, "rtt_ms": 1.5},
        "a": {"local_type": "relay", "turn_transport": "udp"},
        "b": None,
        "experiment": {"options": {"peer_a": "aiortc", "peer_b": "chromium"}},
        "reason": 'a: "quoted", with comma',
        "call": {
            "outcome": "recovered",
            "recovery_s": 3.25,
            "keepalive": {"a": {"interval_s": 2.5, "requests": 9}, "b": {"interval_s": None}},
        },
    }
    out = io.StringIO()
    assert write_csv([record, {}], out) == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(rows[0]) == list(COLUMNS)
    assert {k: v for k, v in rows[0].items() if v} == {
        "run_id": "R",
        "scenario": "mine/x",
        "group": "mine",
        "repeat": "0",
        "nat_a": "symmetric",
        "nat_b": "full-cone",
        "peer_a": "aiortc",
        "peer_b": "chromium",
        "turn": "none",
        "verdict": "failed",
        "needs_relay": "true",
        "outcome": "violated",  # schema 2's word for it
        "rtt_ms": "1.5",
        "a_local_type": "relay",
        "a_turn_transport": "udp",
        "reason": 'a: "quoted", with comma',
        "call_outcome": "recovered",
        "recovery_s": "3.25",
        "keepalive_a_s": "2.5",
    }
    assert {k: v for k, v in rows[1].items() if v} == {"outcome": "unchecked"}


def test_a_reader_that_leaves_early_is_no_error(tmp_path: Path) -> None:
    """`netsim export RUN --csv | head -1` printed a traceback and "internal error"."""
    run = tmp_path / "run"
    write_results(run, sample_records() * 40)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    cmd = f"{sys.executable} -m netsim export {run} --csv | head -1"
    out = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, env=env, timeout=60)
    assert out.stdout.startswith("run_id,scenario,") and out.stdout.count("\n") == 1
    assert out.stderr == ""
