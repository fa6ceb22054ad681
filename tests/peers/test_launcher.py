"""The fork server: everything preloaded, peers forked into a namespace within milliseconds, always reaped.

Tests marked root fork peers into a scratch namespace.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netsim.lab import netns
from netsim.peers.launcher import Launcher
from netsim.peers.protocol import PeerConfig
from tests.peers.configs import peer_config

# A peer that offers (with media) and runs into its deadline, in an interpreter the launcher preloaded: the
# modules it imports on the way are the ones a forked child would import, slowly, for itself.
_AFTER_PRELOAD = """
import asyncio, json, sys
from netsim.peers import launcher
launcher.preload()
from tests.peers.configs import peer_config
before = set(sys.modules)
from netsim.peers.agent import run_peer

class Signaling:
    def __init__(self):
        self.msgs = [{"type": "presence", "status": "online"}]
    async def send(self, payload):
        pass
    async def recv(self):
        if self.msgs:
            return self.msgs.pop(0)
        await asyncio.Event().wait()
    async def close(self):
        pass

async def factory(cfg):
    return Signaling()

cfg = peer_config(offer=True, media=True, hide_host=True, deadline_s=0.5)
rec = asyncio.run(run_peer(cfg, factory))
imported = sorted(set(sys.modules) - before)
print(json.dumps({"imported": imported, "offers": rec["negotiation"]["offers_sent"]}))
"""


def test_preload_leaves_a_peer_nothing_to_import() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _AFTER_PRELOAD], capture_output=True, text=True, timeout=60, check=True
    )
    result = json.loads(out.stdout.splitlines()[-1])
    assert result == {"imported": [], "offers": 1}, result


READY_TARGET_MS = 50.0


@pytest.fixture
def namespace(scratch_netns: str) -> str:
    return scratch_netns


@pytest.fixture
def launcher() -> Iterator[Launcher]:
    with Launcher() as launcher:
        launcher.wait_ready()
        yield launcher


def _cfg(deadline_s: float, url: str = "ws://127.0.0.1:9") -> PeerConfig:
    # Nothing listens there (the namespace has only a down loopback): the peer fails at its deadline.
    return peer_config(signaling_url=url, deadline_s=deadline_s)


@pytest.mark.root
def test_peer_runs_in_its_namespace_and_is_ready_fast(
    namespace: str, launcher: Launcher, tmp_path: Path
) -> None:
    ready = []
    for i in range(5):
        proc = launcher.spawn(namespace, _cfg(0.3), tmp_path / f"r{i}.json", tmp_path / f"l{i}.log")
        rec = proc.wait(10)
        assert rec["state"] == "failed" and rec["reason"].startswith("error: "), rec
        assert rec["launch"]["netns_inode"] == os.stat(netns.path(namespace)).st_ino
        assert rec["launch"]["netns_inode"] != os.stat("/proc/self/ns/net").st_ino
        ready.append(rec["launch"]["ready_ms"])
    assert sorted(ready)[len(ready) // 2] <= READY_TARGET_MS, ready


def test_a_child_that_cannot_enter_its_namespace_reports_why(launcher: Launcher, tmp_path: Path) -> None:
    proc = launcher.spawn("ns-netsim-no-such-namespace", _cfg(0.3), tmp_path / "r.json", tmp_path / "l.log")
    rec = proc.wait(10)
    error = "FileNotFoundError(2, 'No such file or directory')"
    assert (rec["state"], rec["reason"]) == ("failed", f"launcher child: {error}")


def _stuck_cfg() -> PeerConfig:
    """Towards silent_server, which accepts TCP and never answers: the peer would wait 30 s."""
    return _cfg(30.0, "ws://127.0.0.1:8765")


@pytest.fixture
def silent_server(namespace: str) -> Iterator[None]:
    netns.run(namespace, ["ip", "link", "set", "lo", "up"], check=True)
    sock = netns.socket_in(namespace, kind=socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 8765))
    sock.listen(8)
    with sock:
        yield


@pytest.mark.root
@pytest.mark.usefixtures("silent_server")
def test_wait_kills_a_peer_past_its_timeout(namespace: str, launcher: Launcher, tmp_path: Path) -> None:
    proc = launcher.spawn(namespace, _stuck_cfg(), tmp_path / "r.json", tmp_path / "l.log")
    t0 = time.monotonic()
    rec = proc.wait(0.5)
    assert time.monotonic() - t0 < 5
    assert (rec["state"], rec["reason"]) == ("failed", "peer process killed after the wait timeout")
    assert not Path(f"/proc/{proc.pid}").exists()


@pytest.mark.root
@pytest.mark.usefixtures("silent_server")
def test_close_kills_running_children(namespace: str, tmp_path: Path) -> None:
    launcher = Launcher()
    proc = launcher.spawn(namespace, _stuck_cfg(), tmp_path / "r.json", tmp_path / "l.log")
    assert Path(f"/proc/{proc.pid}").exists()
    launcher.close()
    assert launcher.proc.returncode == 0
    assert not Path(f"/proc/{proc.pid}").exists()
