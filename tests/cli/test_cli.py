"""The command line end to end: `netsim classify` and `netsim pair` print what the issues promise (root)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from netsim.lab import nat

pytestmark = pytest.mark.root


def _netsim(
    *argv: str, tmp_path: Path, timeout: float = 120, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NETSIM_RUNTIME_DIR": str(tmp_path / "run")}
    if cwd is not None:  # run from elsewhere: this checkout's netsim all the same
        env["PYTHONPATH"] = os.pathsep.join(
            [str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH", "")]
        )
    return subprocess.run(
        [sys.executable, "-m", "netsim", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=cwd,
    )


def test_classify_json_for_a_preset(tmp_path: Path) -> None:
    out = _netsim("classify", "symmetric", "--json", tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["mapping"] == "address-and-port-dependent"
    assert result["filtering"] == "address-and-port-dependent"
    assert result["udp"] is True and result["hole_punch"] is False
    assert isinstance(result["hairpin"], bool)
    assert "lifetime_s" not in result


def test_classify_a_researchers_rules_file(tmp_path: Path) -> None:
    rules = tmp_path / "my-full-cone.nft"
    shutil.copy(nat.RULES_DIR / "full-cone.nft", rules)
    out = _netsim("classify", "--rules", str(rules), "--json", tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert (result["mapping"], result["filtering"]) == ("endpoint-independent", "endpoint-independent")


def test_classify_rejects_an_unknown_type(tmp_path: Path) -> None:
    out = _netsim("classify", "cone-shaped", tmp_path=tmp_path)
    assert out.returncode == 2 and "invalid choice: 'cone-shaped'" in out.stderr


def test_pair_json(tmp_path: Path) -> None:
    out = _netsim("pair", "--nat-a", "full-cone", "--nat-b", "symmetric", "--json", tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["verdict"] in ("direct", "relay") and result["needs_relay"] is False
    assert result["connect_s"] is not None and result["connect_s"] < 10
    assert {"gathering_s", "ice_completed_s", "channel_open_s", "first_echo_s"} <= set(result["timings"])
    for side in ("a", "b"):
        peer = result[side]
        assert {"local_type", "remote_type", "local", "remote", "role", "turn_transport"} <= set(peer)
    assert {result["a"]["role"], result["b"]["role"]} == {"controlling", "controlled"}


SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def test_up_a_scenario_file_and_down(tmp_path: Path) -> None:
    up = _netsim("up", str(SCENARIOS / "double-nat-cone-cgn.toml"), "--json", tmp_path=tmp_path)
    assert up.returncode == 0, up.stderr
    info = json.loads(up.stdout)
    try:
        assert info["nodes"]["cgn"]["addresses"] == ["198.18.101.1", "100.64.1.1"]
        assert info["nodes"]["nat-a"]["addresses"][0].startswith("100.64.1.")
    finally:
        down = _netsim("down", info["lab"], tmp_path=tmp_path)
    assert down.returncode == 0, down.stderr


def test_run_a_scenario_file_writes_results_and_report(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    expected = str(SCENARIOS / "expected.toml")
    argv = ["run", str(SCENARIOS / "same-lan.toml"), "--reports", str(reports), "--expected", expected]
    out = _netsim(*argv, tmp_path=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "lan/same-lan" in out.stdout and "direct-host" in out.stdout
    (run_dir,) = [p for p in reports.iterdir() if p.name != "latest"]
    record = json.loads((run_dir / "results.jsonl").read_text().splitlines()[0])
    assert record["scenario"] == "lan/same-lan" and record["passed"] is True
    assert json.loads((run_dir / "summary.json").read_text())["sessions"] == 1
    assert "same-lan" in (run_dir / "index.html").read_text()


def test_shipped_expectations_hold_from_any_directory(tmp_path: Path) -> None:
    """Issue 17: a shipped scenario or matrix run from another directory keeps its shipped expectation
    (it turned `unchecked`, exit 0, hiding regressions)."""
    reports = tmp_path / "reports"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for argv in (["matrix", "--kinds", "open", "--turn", "none"], ["run", str(SCENARIOS / "same-lan.toml")]):
        out = _netsim(*argv, "--reports", str(reports), "--no-report", tmp_path=tmp_path, cwd=elsewhere)
        assert out.returncode == 0, out.stdout + out.stderr
    records = [json.loads(line) for p in sorted(reports.iterdir()) for line in (p / "results.jsonl").open()]
    assert [(r["scenario"], r["outcome"]) for r in records] == [
        ("matrix-noturn/open__open", "passed"),
        ("lan/same-lan", "passed"),
    ]
    assert records[0]["expected"]["source"] == "matrix[open][open]"


def test_pair_with_impairments_and_a_bad_one(tmp_path: Path) -> None:
    out = _netsim(
        "pair",
        "--nat-a",
        "full-cone",
        "--nat-b",
        "open",
        "--loss-a",
        "2",
        "--rate-b",
        "500",
        "--json",
        tmp_path=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["verdict"] in ("direct", "relay")
    bad = _netsim("pair", "--nat-a", "full-cone", "--nat-b", "open", "--loss-a", "150", tmp_path=tmp_path)
    assert bad.returncode == 2 and "loss_pct" in bad.stderr and "150" in bad.stderr


def test_population_runs_the_drawn_pairings(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    argv = ["population", "--size", "3", "--mix", "full-cone=1,open=1", "--seed", "7", "--no-report"]
    out = _netsim(
        *argv, "--reports", str(reports), "--expected", str(SCENARIOS / "expected.toml"), tmp_path=tmp_path
    )
    assert out.returncode == 0, out.stdout + out.stderr
    run_dir = next(reports.iterdir())
    records = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert len(records) == 3 and all(r["group"] == "population" for r in records)
    assert {r["nat_a"] for r in records} | {r["nat_b"] for r in records} <= {"full-cone", "open"}
    assert all(r["passed"] for r in records)


def test_up_exec_down_and_a_kept_lab_survives_cleanup(tmp_path: Path) -> None:
    from netsim.lab import netns

    up = _netsim("up", "--nat-a", "full-cone", "--nat-b", "symmetric", "--json", tmp_path=tmp_path)
    assert up.returncode == 0, up.stderr
    info = json.loads(up.stdout)
    lab_id = info["lab"]
    try:
        assert info["nodes"]["a"]["addresses"] == ["10.1.0.2"]
        assert info["nodes"]["server"]["netns"] == f"{lab_id}-server"
        assert (
            info["coturn"]["ips"] == ["198.18.0.2", "198.18.0.3"]
            and info["coturn"]["relay_ip"] == "198.18.0.4"
        )
        ex = _netsim("exec", lab_id, "a", "--", "ip", "-o", "-4", "addr", "show", "eth0", tmp_path=tmp_path)
        assert ex.returncode == 0 and "10.1.0.2/24" in ex.stdout
        assert _netsim("exec", lab_id, "a", "--", "sh", "-c", "exit 7", tmp_path=tmp_path).returncode == 7
        assert _netsim("cleanup", tmp_path=tmp_path).returncode == 0
        assert netns.exists(f"{lab_id}-a")  # kept: only labs whose owner died are cleaned up
    finally:
        down = _netsim("down", lab_id, tmp_path=tmp_path)
    assert down.returncode == 0, down.stderr
    assert not netns.exists(f"{lab_id}-a")
    assert not any(p.name.startswith("ns") for p in (tmp_path / "run").iterdir())


def test_lab_errors_name_the_value(tmp_path: Path) -> None:
    bad = _netsim("up", "--nat-a", "cone-ish", tmp_path=tmp_path)
    assert bad.returncode == 2 and "--nat-a: unknown NAT type 'cone-ish'" in bad.stderr
    missing = _netsim("down", "nsnope", tmp_path=tmp_path)
    assert (
        missing.returncode == 2
        and missing.stderr.startswith("netsim: error: ")
        and "nsnope" in missing.stderr
    )
    nonode = _netsim("exec", "nsnope", "a", "--", "true", tmp_path=tmp_path)
    assert nonode.returncode == 2 and "nsnope" in nonode.stderr


SYMSYM = (
    '[[site]]\nname = "nat-a"\nnat = "symmetric"\nhosts = ["a"]\n'
    '[[site]]\nname = "nat-b"\nnat = "symmetric"\nhosts = ["b"]\n'
    '[session]\ngroup = "mine"\nturn = "none"\n'
)


def test_own_scenarios_fail_honestly_and_rerun_from_their_record(tmp_path: Path) -> None:
    """A session without an expectation is unchecked (exit 0); one whose [expect] is violated fails (exit 1)
    everywhere: terminal, records, summary, report; rerun reproduces it from its record; compare and export
    read the run."""
    reports = tmp_path / "reports"
    unchecked, expect = tmp_path / "unchecked.toml", tmp_path / "expect.toml"
    unchecked.write_text('name = "unchecked"\n' + SYMSYM)
    expect.write_text('name = "expect"\n' + SYMSYM + "[expect]\nconnect = true\n")
    alone = _netsim("run", str(unchecked), "--reports", str(reports), tmp_path=tmp_path)
    assert alone.returncode == 0, alone.stdout + alone.stderr
    assert "unchecked" in alone.stdout and " ok" not in alone.stdout
    both = _netsim(
        "run", str(unchecked), str(expect), "-j", "2", "--reports", str(reports), tmp_path=tmp_path
    )
    assert both.returncode == 1, both.stdout + both.stderr
    assert "VIOLATED" in both.stdout and "0 passed, 1 violated, 1 unchecked, 0 inconclusive" in both.stdout
    first, second = sorted(p for p in reports.iterdir() if p.name != "latest")
    records = {r["scenario"]: r for r in map(json.loads, (second / "results.jsonl").read_text().splitlines())}
    assert records["mine/unchecked"]["outcome"] == "unchecked" and records["mine/unchecked"]["passed"] is None
    assert records["mine/expect"]["outcome"] == "violated" and records["mine/expect"]["verdict"] == "failed"
    assert records["mine/expect"]["experiment"]["scenario_text"] == expect.read_text()
    summary = json.loads((second / "summary.json").read_text())
    assert (summary["passed"], summary["violated"], summary["unchecked"], summary["inconclusive"]) == (
        0,
        1,
        1,
        0,
    )
    (violation,) = summary["violations"]  # what did not hold, and why
    assert violation["scenario"] == "mine/expect" and "connects" in violation["mismatch"]
    html = (second / "index.html").read_text()
    assert 'id="n-unchecked">1<' in html and 'id="n-failed">1<' in html
    rerun = _netsim(
        "rerun", str(second), "mine/expect", "--reports", str(reports), "--no-report", tmp_path=tmp_path
    )
    assert rerun.returncode == 1 and "VIOLATED" in rerun.stdout, rerun.stdout + rerun.stderr
    third = max(p for p in reports.iterdir() if p.name != "latest")
    again = json.loads((third / "results.jsonl").read_text())
    assert again["experiment"] == records["mine/expect"]["experiment"]
    assert again["expected"]["connect"] is True and again["outcome"] == "violated"
    same = _netsim("compare", str(second), str(third), "--fail-on-change", tmp_path=tmp_path)
    assert same.returncode == 1 and "mine/unchecked  presence" in same.stdout  # only in the second run
    assert _netsim("compare", str(first), str(second), tmp_path=tmp_path).returncode == 0
    csv_out = _netsim("export", str(second), "--csv", tmp_path=tmp_path)
    assert csv_out.returncode == 0 and len(csv_out.stdout.splitlines()) == 3
