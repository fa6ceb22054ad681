"""`netsim matrix --mix` with IP-mode shares, then `netsim estimate` on its run, end to end (root)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

MIX = """
name = "sym-half-dual"
source = "test"
[kinds."symmetric"]
weight = 1
assumption = "test"
ip = { none = 1, dual = 1, assumption = "test" }
"""


def _netsim(*argv: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NETSIM_RUNTIME_DIR": str(tmp_path / "run")}
    return subprocess.run(
        [sys.executable, "-m", "netsim", *argv], capture_output=True, text=True, env=env, timeout=600
    )


def test_half_dual_symmetric_needs_a_relay_in_three_calls_of_four(tmp_path: Path) -> None:
    """symmetric x symmetric needs a relay over IPv4; with IPv6 on both sides it connects directly, so
    with half of the endpoints dual-stack 3 calls in 4 need a relay, against every call on IPv4 alone."""
    mix = tmp_path / "mix.toml"
    mix.write_text(MIX)
    reports = tmp_path / "reports"
    argv = ("matrix", "--mix", str(mix), "-j", "2", "--no-report", "--reports", str(reports))
    out = _netsim(*argv, tmp_path=tmp_path)
    assert out.returncode in (0, 1), out.stdout + out.stderr  # 1: a violated expectation, still a run
    assert "mix cells: 4 (x 1 repeats = 4 sessions)" in out.stdout
    run = next(reports.iterdir())
    est = _netsim("estimate", "--matrix", str(run), "--mix", str(mix), "--json", tmp_path=tmp_path)
    assert est.returncode == 0, est.stderr
    got = json.loads(est.stdout)
    assert got["ipv4_only"]["share"] == 1.0 and got["needs_relay"]["share"] == 0.75
    modes = {(c["ip_a"], c["ip_b"]): c["needs_relay"] for c in got["cells"]}
    assert modes == {("none", "none"): 1, ("none", "dual"): 1, ("dual", "none"): 1, ("dual", "dual"): 0}
