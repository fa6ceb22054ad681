"""The generic adapter for a peer that is an external program (docs/peers.md, "Peer protocol"): any stack
in any language that reads its config from `NETSIM_PEER_CONFIG` and prints its record as the last line of
stdout. One process per session, in the host's namespace (nsenter execs the program, so its pid is the
program's), in a process group of its own so that everything it started ends with it.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shlex
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from netsim.lab import netns
from netsim.peers.adapter import Bound, PeerPlace
from netsim.peers.protocol import NoRecord, PeerConfig

CONFIG_ENV = "NETSIM_PEER_CONFIG"
STOP_GRACE_S = 2.0  # SIGTERM to record: the protocol gives a peer this long
KILL_WAIT_S = 5.0
POLL_S = 0.02


class ProcessAdapter:
    """Peers of one external program: `argv` (or `COMMAND` split like a shell would, without a shell)."""

    def __init__(self, name: str, command: str | Sequence[str]) -> None:
        self.name = name
        self.argv = shlex.split(command) if isinstance(command, str) else list(command)
        if not self.argv:
            raise ValueError(f"peer stack {name!r}: an empty command")
        self.running: list[ProcessSession] = []

    def prepare(self, places: Sequence[PeerPlace]) -> None:
        """Nothing to start ahead: the program starts with its session."""

    def open(self, place: PeerPlace) -> Bound[ProcessSession]:
        return Bound(place, self.start)

    def start(self, place: PeerPlace, cfg: PeerConfig) -> ProcessSession:
        """The program started for one session."""
        session = ProcessSession(self.name, self.argv, place, cfg)
        self.running.append(session)
        return session

    def close(self) -> None:
        for session in self.running:
            if session.record is None:  # not waited for: still running, or never read
                session.wait(0)
        self.running.clear()


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


class ProcessSession:
    """One session of an external peer: its config file, its process (group) and its output."""

    def __init__(self, stack: str, argv: Sequence[str], place: PeerPlace, cfg: PeerConfig) -> None:
        self.stack = stack
        self.cfg = cfg
        self.directory = place.workdir / "peers" / cfg.user
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "config.json"
        config.write_text(json.dumps(cfg.to_json()))
        config.chmod(0o600)  # it holds the signaling token and the TURN credentials
        env = {**os.environ, CONFIG_ENV: str(config)}
        if cfg.ca_file:
            env["SSL_CERT_FILE"] = cfg.ca_file
        self.stdout = self.directory / "stdout"
        self.netns_inode = _inode(netns.path(place.netns))
        self.t_spawn = time.monotonic()
        with self.stdout.open("wb") as out, (self.directory / "stderr").open("wb") as err:
            self.proc = subprocess.Popen(
                netns.command(place.netns, argv),
                cwd=self.directory,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,  # a process group of its own: ended as one, by its pid
            )
        self.spawned_s = time.monotonic() - self.t_spawn
        self.pidfd: int | None = None
        with contextlib.suppress(OSError, AttributeError):
            self.pidfd = os.pidfd_open(self.proc.pid)
        self.record: object | None = None

    @property
    def pid(self) -> int:
        """The program's pid (nsenter execs it), which leads its process group."""
        return self.proc.pid

    def wait(self, timeout_s: float) -> object:
        """The last stdout line as JSON; stopped (SIGTERM, then SIGKILL to the group) if still running."""
        if self.record is None:
            record = self.stop(timeout_s)
            if isinstance(record, dict) and "launch" not in record:
                record["launch"] = self._launch(record)
            self.record = record
        return self.record

    def _launch(self, record: dict[str, Any]) -> dict[str, Any]:
        """How the process started: its pid and namespace, the spawn's cost (`ready_ms`: fork and exec of
        the namespace wrapper), and from the request and from the spawn to the welcome (`marks.signed_in`)."""
        marks = record.get("marks")
        signed_in = marks.get("signed_in") if isinstance(marks, dict) else None
        since: dict[str, float | None] = {"signed_in_ms": None, "spawn_to_signed_in_ms": None}
        if isinstance(signed_in, int | float) and not isinstance(signed_in, bool):
            since["signed_in_ms"] = round((signed_in - self.cfg.t0) * 1000, 3)
            since["spawn_to_signed_in_ms"] = round((signed_in - self.t_spawn) * 1000, 3)
        return {
            "ready_ms": round(self.spawned_s * 1000, 3),
            "pid": self.proc.pid,
            "netns_inode": self.netns_inode,
            **since,
        }

    def stop(self, timeout_s: float) -> object:
        """Wait up to timeout_s (0: not at all), then SIGTERM the group, and SIGKILL it after the grace.
        The leader is reaped only after its group was killed: while it is unreaped its pid (the group's
        id) cannot be reused, so the signals reach only what this peer started."""
        stopped = not self._exited(timeout_s)
        if stopped:
            self._signal(signal.SIGTERM)
            if not self._exited(STOP_GRACE_S):
                self._signal(signal.SIGKILL)
                self._exited(KILL_WAIT_S)
        self._signal(signal.SIGKILL)  # whatever it left in its group
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=KILL_WAIT_S)
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        return self._read(stopped)

    def _exited(self, timeout_s: float) -> bool:
        """Whether the program exited within timeout_s (left unreaped). Its pidfd becomes readable when
        it exits: no polling, which matters with hundreds of sessions in threads of one process."""
        try:
            info = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True  # already reaped
        if info is not None:
            return True
        if self.pidfd is None:  # no pidfd (kernel < 5.3): poll
            deadline = time.monotonic() + max(timeout_s, 0)
            while time.monotonic() < deadline:
                time.sleep(POLL_S)
                if os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                    return True
            return False
        poller = select.poll()  # not select(): a crowd's process may hold fds beyond FD_SETSIZE
        poller.register(self.pidfd, select.POLLIN)
        return bool(poller.poll(max(timeout_s, 0) * 1000))

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def _read(self, stopped: bool) -> object:
        try:
            output = self.stdout.read_bytes()
        except OSError:  # the lab's directory is gone (torn down under a session nobody waited for)
            output = b""
        ended = "stopped" if stopped else f"exited with status {self.proc.returncode}"
        return record_from_stdout(output, ended)


def record_from_stdout(output: bytes, ended: str) -> object:
    """The record a peer printed: its last non-empty stdout line as JSON (unchecked: the session checks it),
    or NoRecord saying what was there instead and how the process ended."""
    lines = [ln for ln in output.splitlines() if ln.strip()]
    if lines:
        with contextlib.suppress(ValueError):
            record: object = json.loads(lines[-1])
            return record
    last = lines[-1].decode(errors="replace") if lines else ""
    why = "no record on stdout" if not lines else f"the last stdout line is not JSON: {last[:60]!r}"
    return NoRecord(f"{why} ({ended})")
