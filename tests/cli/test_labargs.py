"""`pair` and `up` site options: IP modes, IPv6 firewalls, rules files for --nat-a (root for the labs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from netsim.lab import nat, netns


def _netsim(*argv: str, tmp_path: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NETSIM_RUNTIME_DIR": str(tmp_path / "run")}
    return subprocess.run(
        [sys.executable, "-m", "netsim", *argv], capture_output=True, text=True, env=env, timeout=timeout
    )


@pytest.mark.parametrize("command", ["pair", "up"])
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ipv6-a", "triple"], "--ipv6-a: unknown IP mode 'triple' (choose from none, dual, only, clat)"),
        (["--ipv6-b", "only"], "--ipv6-b: 'only' needs lab names with DNS64"),
        (["--ipv6-a", "clat", "--nat-a", "open"], "--nat-a: a clat side's NAT64 carrier needs a NAT44"),
        (["--fw6-a", "apdf"], "--fw6-a: an IPv6 firewall on an IPv4-only site (add --ipv6-a dual)"),
        (["--ipv6-a", "dual", "--fw6-a", "wall"], "--fw6-a: unknown IPv6 firewall 'wall'"),
        (["--nat-b", "cone"], "--nat-b: unknown NAT type 'cone' and no such rules file"),
    ],
)
def test_bad_site_options_are_one_line_exit_2_and_build_nothing(
    command: str, argv: list[str], message: str, tmp_path: Path
) -> None:
    out = _netsim(command, *argv, tmp_path=tmp_path)
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith(f"netsim: error: {message}") and out.stderr.count("\n") == 1, out.stderr
    run = tmp_path / "run"  # the command's runtime directory: a lab it began would be registered there
    assert not run.exists() or not any(run.iterdir())


@pytest.mark.root
def test_up_takes_a_rules_file_for_a_nat_and_a_dual_stack_side(tmp_path: Path) -> None:
    rules = tmp_path / "marked.nft"
    rules.write_text(
        nat.preset_text("symmetric").replace("table inet netsim {", "table inet netsim {\n# marked", 1)
    )
    out = _netsim(
        "up", "--nat-a", str(rules), "--ipv6-a", "dual", "--fw6-a", "eif", "--json", tmp_path=tmp_path
    )
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    try:
        nodes = info["nodes"]
        assert nodes["a"]["addresses6"] == ["2001:db8:1::2"] and "addresses6" not in nodes["b"]
        listed = netns.run(
            nodes["nat-a"]["netns"], ["nft", "list", "ruleset"], capture_output=True, text=True
        )
        assert "fully-random" in listed.stdout  # the file's symmetric mapping
        assert "table ip6 netsim6" in listed.stdout and "set outbound" in listed.stdout  # eif
    finally:
        down = _netsim("down", info["lab"], tmp_path=tmp_path)
        assert down.returncode == 0, down.stderr


@pytest.mark.root
def test_classify_fw6_reports_the_ipv6_firewall_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    out = _netsim("classify", "--fw6", "eif", "--json", tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    six = json.loads(out.stdout)["ipv6"]
    assert (six["mapping"], six["filtering"], six["translated"]) == ("endpoint-independent",) * 2 + (False,)
    bad = _netsim("classify", "--fw6", "wall", tmp_path=tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("netsim: error: --fw6: unknown IPv6 firewall 'wall'")
