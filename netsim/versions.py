"""Versions of the software under test, recorded with every session (`ResultRecord.versions`)."""

from __future__ import annotations

import importlib.metadata
import platform
import re
import shutil
import subprocess
import sys

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
