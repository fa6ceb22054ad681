"""One signaling setup for the signaling tests (test_signaling.py, test_signaling_abuse.py): a server in a
thread, raw clients that put exact frames on the wire, and the server's log records."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect

from netsim.services.signaling import make_token
from netsim.services.signaling_server import run_in_thread

SECRET = "test-secret"
LOGGERS = ("uvicorn", "uvicorn.error", "asyncio", "netsim.services.signaling")
T = TypeVar("T")

OPEN: list[ClientConnection] = []  # raw connections of the running scenario


def run(coro: Awaitable[T], timeout: float = 30) -> T:
    """Run a client scenario; connections it left open (a failed assertion) are reset, not leaked."""

    async def bounded() -> T:
        try:
            return await asyncio.wait_for(coro, timeout)
        finally:
            for ws in OPEN:
                ws.transport.abort()
            OPEN.clear()

    return asyncio.run(bounded())


@dataclass
class Server:
    http: str
    app: FastAPI | None = None
    names: Iterator[int] = field(default_factory=lambda: iter(range(1_000_000)))

    @property
    def ws(self) -> str:
        return self.http.replace("http://", "ws://", 1)

    @property
    def port(self) -> int:
        return int(self.http.rsplit(":", 1)[1])

    def presence(self) -> dict[str, str]:
        return dict(httpx.get(f"{self.http}/presence", timeout=10).json())

    def fresh(self, prefix: str) -> str:
        """A user name nobody used on this server."""
        return f"{prefix}{next(self.names)}"


@contextmanager
def serve(app: FastAPI, **kwargs: Any) -> Iterator[Server]:
    """The app served from a thread on a free loopback port (run_in_thread's keyword arguments)."""
    with run_in_thread(app, **kwargs) as url:
        yield Server(url, app)


class Peer:
    """Raw test client: exact frames on the wire, no library smoothing."""

    def __init__(self, ws: ClientConnection, user: str) -> None:
        self.ws = ws
        self.user = user

    @classmethod
    async def join(cls, srv: Server, user: str, secret: str = SECRET) -> Peer:
        # max_queue=None: a client with unread frames must still see the server's close reply promptly
        # (a full websockets queue pauses reading, and close() then waits out its 10 s timeout).
        ws = await connect(f"{srv.ws}/ws/{user}?token={make_token(secret, user)}", proxy=None, max_queue=None)
        OPEN.append(ws)
        peer = cls(ws, user)
        welcome = await peer.recv()
        assert welcome["type"] == "welcome" and welcome["user"] == user
        return peer

    async def send(self, **obj: Any) -> None:
        await self.ws.send(json.dumps(obj))

    async def recv(self, timeout: float = 10) -> dict[str, Any]:
        msg: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        return msg

    async def recv_type(self, kind: str) -> dict[str, Any]:
        """Next frame of type `kind`, skipping presence events (other tests' clients come and go)."""
        while (msg := await self.recv())["type"] == "presence":
            pass
        assert msg["type"] == kind, msg
        return msg

    async def sentinel_from(self, other: Peer, tag: str) -> None:
        """`other` sends a marker; it must be the very next frame this peer reads."""
        await other.send(type="bye", target=self.user, tag=tag)
        assert await self.recv() == {"type": "bye", "tag": tag, "sender": other.user}

    async def close(self) -> None:
        await self.ws.close()


class ServerLogs(logging.Handler):
    """Every record the server logs (each once: uvicorn.error also propagates to uvicorn)."""

    def __init__(self, level: int = logging.DEBUG) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not any(r is record for r in self.records):
            self.records.append(record)

    def lines(self, level: int = logging.DEBUG) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= level]

    def tracebacks(self) -> list[str]:
        return [r.getMessage() for r in self.records if r.exc_info or r.exc_text]


@contextmanager
def server_logs(level: int = logging.DEBUG) -> Iterator[ServerLogs]:
    """The server's records while the block runs (the app's own logger down to `level`)."""
    handler = ServerLogs(level)
    app_log = logging.getLogger("netsim.services.signaling")
    before = app_log.level
    app_log.setLevel(min(level, before or logging.WARNING))
    for name in LOGGERS:
        logging.getLogger(name).addHandler(handler)
    try:
        yield handler
    finally:
        for name in LOGGERS:
            logging.getLogger(name).removeHandler(handler)
        app_log.setLevel(before)
