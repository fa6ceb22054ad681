"""`netsim doctor`: the real checks on this machine, and what it says when a tool or chromium is missing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from netsim.cli.doctor import Check, render
from netsim.lab import impair

ITEMS = (
    "root",
    "delay/jitter",
    "nft",
    "conntrack",
    "tcpdump",
    "coturn",
    "turnutils_natdiscovery",
    "chromium",
    "firefox",
)


def _doctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "netsim", "doctor", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)


def test_render_says_what_is_missing_and_how_to_get_it() -> None:
    text = render(
        [Check("nft", True, "1.0.6 (/usr/sbin/nft)"), Check("tcpdump", False, "not on PATH", "apt x")]
    )
    assert text.splitlines() == [
        "ok      nft      1.0.6 (/usr/sbin/nft)",
        "MISSING tcpdump  not on PATH  -> apt x",
        "missing: tcpdump",
    ]
    assert render([Check("nft", True, "here")]).endswith("everything netsim needs is here")


@pytest.mark.root
def test_doctor_on_this_machine() -> None:
    done = _doctor("--json")
    checks = {c["name"]: c for c in json.loads(done.stdout)}
    assert set(ITEMS) <= set(checks), checks
    assert done.returncode == (0 if all(c["ok"] for c in checks.values()) else 1), done.stdout
    delay = checks["delay/jitter"]
    backend = impair.delay_backend_here()
    assert delay["found"].startswith("netem" if backend == impair.NETEM else "delay line"), delay
    if backend == impair.NFQUEUE:  # what the delay line needs is listed with it
        assert checks["netfilterqueue"]["ok"] == checks["iptables-nft"]["ok"] == delay["ok"]
    text = _doctor()
    assert text.returncode == done.returncode
    assert all(any(line.split()[1:2] == [name] for line in text.stdout.splitlines()) for name in ITEMS)


@pytest.mark.root
def test_a_missing_tool_and_browser_exit_1_with_how_to_install(tmp_path: Path) -> None:
    """PATH without conntrack and NETSIM_CHROMIUM and NETSIM_FIREFOX naming nothing: all MISSING, each with
    its fix."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for directory in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        if not os.path.isdir(directory):
            continue
        for name in os.listdir(directory):
            link = bin_dir / name
            if name != "conntrack" and not link.exists() and not link.is_symlink():
                link.symlink_to(os.path.join(directory, name))
    env = {
        **os.environ,
        "PATH": str(bin_dir),
        "NETSIM_CHROMIUM": str(tmp_path / "no-chromium"),
        "NETSIM_FIREFOX": str(tmp_path / "no-firefox"),
    }
    done = _doctor(env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = {line.split()[1]: line for line in done.stdout.splitlines() if line.startswith("MISSING")}
    assert set(lines) == {"conntrack", "chromium", "firefox"}, done.stdout
    assert "apt-get install conntrack" in lines["conntrack"]
    assert "NETSIM_CHROMIUM" in lines["chromium"] and "apt-get install chromium" in lines["chromium"]
    assert "NETSIM_FIREFOX" in lines["firefox"] and "apt-get install firefox-esr" in lines["firefox"]
    assert done.stdout.splitlines()[-1] == "missing: conntrack, chromium, firefox"
