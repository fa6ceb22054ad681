"""A preloaded process that forks peers into network namespaces.

Importing aiortc costs about 0.5 s per fresh interpreter. The fork server (`python -m netsim.peers.launcher`)
pays it once, then forks one child per peer: the child enters the host's namespace with setns(2) for the
rest of its life, runs `run_peer`, writes the PEER record to a JSON file and exits. A peer is running in
its namespace a few milliseconds after the request.

Protocol, JSON lines. The client writes
`{"op": "spawn", "id", "netns", "cfg", "env", "result", "log", "t_req"}` to the server's stdin; the server
answers `{"op": "spawned", "id", "pid"}` (or `{"op": "error", "id", ...}`) and later
`{"op": "exit", "pid", "status"}` when it reaps the child. EOF on stdin ends the server, which first kills
the children still running (by pid).

The server stays single-threaded and has no event loop, so fork() is safe: each child starts its own loop.
docs/peers.md describes the launcher and its client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netsim.lab import netns
from netsim.peers.protocol import PeerConfig, failed_record, write_json_atomically
from netsim.vocab import AIORTC

if TYPE_CHECKING:
    from netsim.peers.adapter import Adapter

READY_TIMEOUT_S = 30.0
CHILD_ERROR = "launcher child"  # the key of what a child that could not run its peer writes instead


# --- the fork server ---------------------------------------------------------------------------------


def preload() -> None:
    """Import everything a peer uses at run time, so that the children never import."""
    import aiortc.mediastreams  # noqa: F401
    from aiortc import RTCCertificate

    import netsim.peers.agent  # noqa: F401
    import netsim.peers.echo  # noqa: F401
    import netsim.peers.negotiation  # noqa: F401
    import netsim.peers.trace  # noqa: F401
    import netsim.services.signaling_client  # noqa: F401  (imported lazily by the agent)

    # The first DTLS certificate imports cryptography's OpenSSL backend (~3 ms): pay that here, once.
    RTCCertificate.generateCertificate()

    with contextlib.suppress(Exception):  # the encodings a peer may hit, also lazily imported
        "x".encode("idna")


def _child(req: dict[str, Any]) -> None:
    """Runs in the forked child; never returns."""
    status = 0
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)  # the server's SIGCHLD pipe is not ours
        netns.enter(req["netns"])
        t_ready = time.monotonic()
        log = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        os.environ.update(req.get("env") or {})
        from netsim.peers.agent import run_peer

        cfg = PeerConfig.from_json(req["cfg"])
        result = asyncio.run(run_peer(cfg))
        result["launch"] = {
            "ready_ms": round((t_ready - req["t_req"]) * 1000, 3),
            "pid": os.getpid(),
            "netns_inode": os.stat("/proc/thread-self/ns/net").st_ino,
        }
        write_json_atomically(req["result"], result)
    except BaseException as exc:  # the child must never fall back into the server loop
        status = 1
        with contextlib.suppress(BaseException):
            print(f"peer child failed: {exc!r}", file=sys.stderr, flush=True)
            # Not a record (there may be no config to make one from): ForkedPeer.wait makes it one.
            write_json_atomically(req["result"], {CHILD_ERROR: repr(exc)})
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(status)


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _reap(children: set[int]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        _emit({"op": "exit", "pid": pid, "status": os.waitstatus_to_exitcode(status)})


def _spawn(req: dict[str, Any], children: set[int]) -> None:
    if threading.active_count() != 1:
        raise RuntimeError("fork server is not single-threaded")
    pid = os.fork()
    if pid == 0:
        _child(req)
    children.add(pid)
    _emit({"op": "spawned", "id": req["id"], "pid": pid})


def serve() -> int:
    # Ctrl-C reaches the whole process group: the client decides when we stop (EOF on stdin).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    preload()
    children: set[int] = set()
    # A peer's exit wakes the loop at once (SIGCHLD through a self-pipe) instead of at the next poll.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    _emit({"op": "ready", "pid": os.getpid()})
    buf = b""
    stdin = sys.stdin.fileno()
    try:
        while True:
            readable, _, _ = select.select([stdin, wake_r], [], [], 1.0)
            if wake_r in readable:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 4096)
            _reap(children)
            if stdin not in readable:
                continue
            chunk = os.read(stdin, 65536)
            if not chunk:
                return 0
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                req = json.loads(line)
                try:
                    _spawn(req, children)
                except Exception as exc:
                    _emit({"op": "error", "id": req.get("id"), "error": repr(exc)})
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for _ in list(children):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(-1, 0)


# --- the client --------------------------------------------------------------------------------------


class LauncherError(RuntimeError):
    pass


class ForkedPeer:
    """A peer forked by the launcher, running one session (adapter.PeerSession)."""

    stack = AIORTC

    def __init__(self, launcher: Launcher, cfg: PeerConfig, result: Path, pid: int) -> None:
        self.launcher = launcher
        self.cfg = cfg
        self.result = result
        self.pid = pid

    def wait(self, timeout_s: float) -> object:
        """The record as written; a peer still running after `timeout_s` is killed (by pid) and reported as
        failed."""
        exited = self.launcher._wait_exit(self.pid, timeout_s)
        if not exited:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.launcher._wait_exit(self.pid, 5.0)
        try:
            record: object = json.loads(self.result.read_text())
        except (OSError, ValueError):
            why = "killed after the wait timeout" if not exited else "exited without a result"
            return failed_record(self.cfg, AIORTC, f"peer process {why}")
        if isinstance(record, dict) and CHILD_ERROR in record:
            return failed_record(self.cfg, AIORTC, f"launcher child: {record[CHILD_ERROR]}")
        return record


class Launcher:
    """Client side of the fork server: `with Launcher() as launcher: launcher.spawn(...)`."""

    def __init__(self) -> None:
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "netsim.peers.launcher"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,
            start_new_session=False,
        )
        self._cond = threading.Condition()
        self._spawned: dict[int, dict[str, Any]] = {}
        self._exits: dict[int, int] = {}
        self._ready = False
        self._closed = False
        self._next_id = 0
        self._reader = threading.Thread(target=self._read, name="launcher-reader", daemon=True)
        self._reader.start()
        self.started_at = t0
        self.ready_s: float | None = None
        self._spawning = threading.Lock()  # one request on the pipe at a time (sessions run in threads)
        self._adapters: dict[str, Adapter] = {}

    def adapter(self, stack: str) -> Adapter:
        """The adapter of a peer stack (netsim.peers.stacks), created on first use, closed with us."""
        with self._spawning:
            if stack not in self._adapters:
                from netsim.peers.stacks import make_adapter

                self._adapters[stack] = make_adapter(stack, self)
            return self._adapters[stack]

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> float:
        """Block until the server has imported aiortc; returns seconds since it was started."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._ready or self._closed, timeout_s) or not self._ready:
                raise LauncherError("launcher did not become ready")
        if self.ready_s is None:
            self.ready_s = time.monotonic() - self.started_at
        return self.ready_s

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            msg = json.loads(raw)
            with self._cond:
                if msg["op"] == "ready":
                    self._ready = True
                elif msg["op"] in ("spawned", "error"):
                    self._spawned[msg["id"]] = msg
                elif msg["op"] == "exit":
                    self._exits[msg["pid"]] = msg["status"]
                self._cond.notify_all()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def spawn(
        self,
        netns_name: str,
        cfg: PeerConfig,
        result: Path,
        log: Path,
        env: dict[str, str] | None = None,
    ) -> ForkedPeer:
        """Fork a peer into `netns_name` running one session of `cfg`; its record goes to `result`."""
        self.wait_ready()
        with self._cond:
            self._next_id += 1
            req_id = self._next_id
        result.unlink(missing_ok=True)
        req = {
            "op": "spawn",
            "id": req_id,
            "netns": netns_name,
            "cfg": json.dumps(cfg.to_json()),
            "env": env or {},
            "result": str(result),
            "log": str(log),
            "t_req": time.monotonic(),
        }
        assert self.proc.stdin is not None
        with self._spawning:
            self.proc.stdin.write((json.dumps(req) + "\n").encode())
            self.proc.stdin.flush()
        with self._cond:
            if not self._cond.wait_for(lambda: req_id in self._spawned or self._closed, 10.0):
                raise LauncherError("launcher did not answer a spawn request")
            msg = self._spawned.pop(req_id, None)
        if msg is None or msg["op"] != "spawned":
            raise LauncherError(f"spawn failed: {msg}")
        return ForkedPeer(self, cfg, result, int(msg["pid"]))

    def _wait_exit(self, pid: int, timeout_s: float) -> bool:
        with self._cond:
            self._cond.wait_for(lambda: pid in self._exits or self._closed, timeout_s)
            return pid in self._exits

    def close(self) -> None:
        """Close the other stacks' adapters; EOF to the server: it kills its remaining children by pid and
        exits."""
        for adapter in self._adapters.values():
            adapter.close()
        self._adapters.clear()
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=5)

    def __enter__(self) -> Launcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":
    sys.exit(serve())
