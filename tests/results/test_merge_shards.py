"""Two real shard runs of the scenario suite, both with Chromium sessions, merge without --force (root).

Issue 17: every record's versions carried that lab's Chromium flags (profile directory, certificate pin),
so no two Chromium sessions had equal versions and the workflow's merge was refused on every push.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from netsim.results import store

pytestmark = [pytest.mark.root, pytest.mark.chromium]

ROOT = Path(__file__).resolve().parents[2]
PICK = "matrix-turn-chromium/open__open or matrix-turn-chromium/full-cone__open"


def _shard(reports: Path, index: int) -> None:
    argv = [sys.executable, "-m", "pytest", "-p", "netsim.suite.shard", "-p", "no:cacheprovider", "-q"]
    argv += ["scenarios/", "-k", PICK, "--shard", f"{index}/2", "--reports", str(reports)]
    argv += ["--run-id", f"shard-{index}", "--no-report"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]


@pytest.mark.skipif(os.geteuid() != 0, reason="builds labs: needs root")
def test_two_chromium_shards_merge_without_force(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    for index in (1, 2):
        _shard(reports, index)
    shards = [store.load_records(reports / f"shard-{i}") for i in (1, 2)]
    assert [len(s) for s in shards] == [1, 1]
    flags = [r[side]["browser"]["flags"] for s in shards for r in s for side in ("a", "b")]
    assert len({tuple(f) for f in flags}) == 4  # every browser had its own profile directory ...
    for shard in shards:
        (record,) = shard
        assert (
            record["versions"]["chromium"] and "chromium_flags" not in record["versions"]
        )  # ... not a version
    out = reports / "merged"
    argv = [sys.executable, "-m", "netsim", "merge", str(reports / "shard-1"), str(reports / "shard-2")]
    done = subprocess.run([*argv, "-o", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 sessions from 2 runs" in done.stdout and "merged anyway" not in done.stdout
    info = json.loads((out / "run.json").read_text())
    assert [m["run"] for m in info["merged_from"]] == ["shard-1", "shard-2"]
    assert all(m["wall_s"] is not None and m["wall_s"] >= 0 for m in info["merged_from"])
    assert (out / "index.html").is_file()
