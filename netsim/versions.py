"""Versions of the software under test, recorded with every session (`ResultRecord.versions`)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

from netsim.records import Versions


def dist_version(name: str) -> str | None:
    """Installed version of a Python distribution, or None when it is not installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def coturn_version() -> str | None:
    """Version printed by `turnserver --version`, or None when coturn is absent or says nothing useful."""
    exe = shutil.which("turnserver")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "--version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\d+\.\d+(?:\.\d+)*", out.stdout + out.stderr)
    return match.group(0) if match else None


def versions() -> Versions:
    """aiortc, aioice, coturn, kernel and Python versions (coturn's costs a subprocess: cache the result)."""
    return {
        "aiortc": dist_version("aiortc"),
        "aioice": dist_version("aioice"),
        "coturn": coturn_version(),
        "kernel": platform.release(),
        "python": platform.python_version() or sys.version.split()[0],
    }


def netsim_commit() -> str | None:
    """The commit of the netsim under test: $GITHUB_SHA in CI, else `git rev-parse HEAD` of the checkout
    netsim runs from, with "-dirty" when its tracked files differ from it; None outside a git checkout."""
    env = os.environ.get("GITHUB_SHA")
    if env:
        return env
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists() or shutil.which("git") is None:
        return None
    git = ["git", "-c", f"safe.directory={root}", "-C", str(root)]
    try:
        head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run([*git, "diff", "--quiet", "HEAD", "--"], capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("-dirty" if dirty.returncode == 1 else "")
