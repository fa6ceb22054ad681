"""Fixtures of the lab tests: a lab built by a child process, to be signalled or killed."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from netsim.lab import netns, registry

_CHILD = """
import json, pathlib, sys, time
from netsim.lab.lab import Lab
from netsim.lab.topology import standard_topology
with Lab(standard_topology("full-cone", "open"), runtime_dir=pathlib.Path(sys.argv[1])) as lab:
    print(json.dumps({"lab": lab.id, "namespaces": list(lab.namespaces.values())}), flush=True)
    time.sleep(60)
"""

ChildLab = tuple[subprocess.Popen[str], str, list[str]]


@pytest.fixture
def child_lab() -> Iterator[Callable[[Path], ChildLab]]:
    """Start a child that builds a lab in `runtime_dir` and sleeps in it: (process, lab id, namespaces).

    At the end of the test a child still running is killed and its lab removed.
    """
    children: list[tuple[subprocess.Popen[str], Path]] = []

    def start(runtime_dir: Path) -> ChildLab:
        proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(runtime_dir)], stdout=subprocess.PIPE, text=True
        )
        children.append((proc, runtime_dir))
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert all(netns.exists(n) for n in info["namespaces"])
        return proc, info["lab"], info["namespaces"]

    yield start
    for proc, runtime_dir in children:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            registry.cleanup(runtime_dir=runtime_dir)
        assert proc.stdout is not None
        proc.stdout.close()
