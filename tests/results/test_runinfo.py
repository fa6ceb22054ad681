"""netsim.results.runinfo: run.json (commit, start, finish, wall time) and a merged run's inputs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from netsim import versions
from netsim.results import runinfo


def test_a_finished_run_spans_its_first_session_to_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_SHA", "0123abc")
    records = [{"started_at": "2026-11-29T04:35:09Z"}, {"started_at": "2026-11-29T04:35:00Z"}, {}]
    info = runinfo.finished_info(records, now=datetime(2026, 11, 29, 4, 39, 16, tzinfo=UTC))  # type: ignore[arg-type]
    assert info == {
        "commit": "0123abc",
        "started": "2026-11-29T04:35:00Z",
        "finished": "2026-11-29T04:39:16Z",
        "wall_s": 256.0,
    }


def test_the_commit_is_the_checkout_s_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_SHA", raising=False)
    commit = versions.netsim_commit()
    assert commit is None or len(commit.removesuffix("-dirty")) == 40


def test_a_run_without_run_json_gives_a_lower_bound(tmp_path: Path) -> None:
    records = [{"started_at": "2026-11-29T04:35:00Z"}, {"started_at": "2026-11-29T04:36:40Z"}]
    info = runinfo.input_info(tmp_path, records)  # type: ignore[arg-type]
    assert (info["wall_s"], info["wall_is_lower_bound"], info["sessions"]) == (100.0, True, 2)
    runinfo.write(
        tmp_path, {"commit": "x", "started": None, "finished": "2026-11-29T04:40:00Z", "wall_s": 300.0}
    )
    info = runinfo.input_info(tmp_path, records)  # type: ignore[arg-type]
    assert (info["wall_s"], info["wall_is_lower_bound"], info["started"]) == (
        300.0,
        False,
        "2026-11-29T04:35:00Z",
    )
    (tmp_path / "run.json").write_text("{broken")
    assert runinfo.read(tmp_path) is None
