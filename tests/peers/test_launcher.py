"""The fork server: peers forked into a namespace within milliseconds, always reaped (root)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netsim.lab import netns
from netsim.peers.launcher import Launcher
from netsim.peers.agent import PeerConfig

pytestmark = pytest.mark.root

READY_TARGET_MS = 50.0


@pytest.fixture
def namespace(scratch_netns: str) -> str:
    return scratch_netns


@pytest.fixture
def launcher() -> Iterator[Launcher]:
    with Launcher() as launcher:
        launcher.wait_ready()
        yield launcher


def _cfg(deadline_s: float) -> dict[str, object]:
    # Nothing listens there (the namespace has only a down loopback): the peer fails at its deadline.
    return PeerConfig("a", "b", False, "ws://127.0.0.1:9", deadline_s=deadline_s).to_dict()


def test_peer_runs_in_its_namespace_and_is_ready_fast(
    namespace: str, launcher: Launcher, tmp_path: Path
) -> None:
    ready = []
    for i in range(5):
        proc = launcher.spawn(namespace, _cfg(0.3), tmp_path / f"r{i}.json", tmp_path / f"l{i}.log")
        rec = proc.wait(10)
        assert rec["state"] == "failed" and rec["reason"], rec
        assert rec["launch"]["netns_inode"] == os.stat(netns.path(namespace)).st_ino
        assert rec["launch"]["netns_inode"] != os.stat("/proc/self/ns/net").st_ino
        ready.append(rec["launch"]["ready_ms"])
    assert sorted(ready)[len(ready) // 2] <= READY_TARGET_MS, ready


def _stuck_cfg() -> dict[str, object]:
    """Towards silent_server, which accepts TCP and never answers: the peer would wait 30 s."""
    cfg = _cfg(30.0)
    cfg["signaling_url"] = "ws://127.0.0.1:8765"
    return cfg


@pytest.fixture
def silent_server(namespace: str) -> Iterator[None]:
    netns.run(namespace, ["ip", "link", "set", "lo", "up"], check=True)
    sock = netns.socket_in(namespace, kind=socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 8765))
    sock.listen(8)
    with sock:
        yield


@pytest.mark.usefixtures("silent_server")
def test_wait_kills_a_peer_past_its_timeout(namespace: str, launcher: Launcher, tmp_path: Path) -> None:
    proc = launcher.spawn(namespace, _stuck_cfg(), tmp_path / "r.json", tmp_path / "l.log")
    t0 = time.monotonic()
    rec = proc.wait(0.5)
    assert time.monotonic() - t0 < 5
    assert rec["state"] == "failed" and "killed" in rec["reason"]
    assert not Path(f"/proc/{proc.pid}").exists()


@pytest.mark.usefixtures("silent_server")
def test_close_kills_running_children(namespace: str, tmp_path: Path) -> None:
    launcher = Launcher()
    proc = launcher.spawn(namespace, _stuck_cfg(), tmp_path / "r.json", tmp_path / "l.log")
    assert Path(f"/proc/{proc.pid}").exists()
    launcher.close()
    assert launcher.proc.returncode == 0
    assert not Path(f"/proc/{proc.pid}").exists()
