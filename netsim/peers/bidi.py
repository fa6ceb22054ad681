"""A WebDriver BiDi client (W3C WebDriver BiDi), enough to drive Firefox's built-in agent without
geckodriver: open a session, find and navigate the top-level browsing context, evaluate script (awaiting
promises) and close the browser.

Firefox listens on 127.0.0.1 inside the network namespace it was started in. The client socket is made
there too: a short-lived helper thread enters the namespace (setns(2) moves only the calling thread, which
then ends), connects, and hands the connected socket to `websockets`; nothing is bridged to the root
namespace and no thread of the caller ever changes namespace.

Why `websockets`: netsim already depends on it (signaling); a BiDi client on top is one small class.
Every failure is a `BidiError` with a one-line message naming the command.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import socket
import threading
from typing import Any

from netsim.lab import netns

COMMAND_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 5.0
SESSION_TIMEOUT_S = 30.0
CLOSE_TIMEOUT_S = 2.0
# Results are whole peer records (JSON strings of some 10-100 kB); leave room, but not unbounded.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class BidiError(RuntimeError):
    """A command failed, timed out, or the connection is gone; the message is one line."""


def one_line(text: object, limit: int = 300) -> str:
    """The first line of a message, cut to `limit` characters (stack traces stay out of records)."""
    lines = str(text).strip().splitlines()
    first = lines[0] if lines else ""
    return first if len(first) <= limit else first[: limit - 3] + "..."


def connect_socket(netns_name: str | None, host: str, port: int, timeout_s: float) -> socket.socket:
    """A TCP socket connected to host:port from inside namespace `netns_name` (None: this one).

    The connect runs on a fresh thread that enters the namespace and ends right after, so the caller's
    threads (and any pooled thread) stay where they are; the socket keeps its namespace for life."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            if netns_name is not None:
                netns.enter(netns_name)
            out["sock"] = socket.create_connection((host, port), timeout=timeout_s)
        except Exception as exc:  # handed to the caller
            out["error"] = exc

    thread = threading.Thread(target=run, name="bidi-connect", daemon=True)
    thread.start()
    thread.join(timeout_s + 1.0)
    if "sock" in out:
        sock: socket.socket = out["sock"]
        sock.settimeout(None)  # asyncio takes it over
        return sock
    where = f" in {netns_name}" if netns_name else ""
    raise BidiError(f"connect to {host}:{port}{where}: {one_line(out.get('error', 'timed out'))}")


def deserialize(value: dict[str, Any]) -> Any:
    """A BiDi RemoteValue as plain Python: primitives, arrays and objects with string keys; other kinds
    (nodes, functions, ...) as their type name."""
    kind = value.get("type")
    if kind in ("undefined", "null"):
        return None
    if kind == "number":
        special = {"NaN": math.nan, "-0": -0.0, "Infinity": math.inf, "-Infinity": -math.inf}
        raw = value.get("value")
        return special[raw] if isinstance(raw, str) else raw
    if kind in ("string", "boolean"):
        return value.get("value")
    if kind == "bigint":
        return int(value["value"])
    if kind in ("array", "set"):
        return [deserialize(v) for v in value.get("value") or []]
    if kind in ("object", "map"):
        out = {}
        for key, item in value.get("value") or []:
            out[key if isinstance(key, str) else str(deserialize(key))] = deserialize(item)
        return out
    return f"<{kind}>"


class BidiSession:
    """One WebSocket connection with a BiDi session on it. Commands may run concurrently: replies are
    matched to their command by id; events are dropped (none is subscribed to)."""

    def __init__(self, ws: Any, url: str) -> None:
        self.ws = ws
        self.url = url
        self.capabilities: dict[str, Any] = {}
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._closed: str | None = None
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def connect(
        cls,
        url: str,
        netns_name: str | None = None,
        timeout_s: float = CONNECT_TIMEOUT_S,
        session_timeout_s: float = SESSION_TIMEOUT_S,
    ) -> BidiSession:
        """Connect to `url` (ws://127.0.0.1:PORT as Firefox prints it) from namespace `netns_name` within
        timeout_s and start a session (session.new) within session_timeout_s."""
        from urllib.parse import urlsplit

        from websockets.asyncio.client import connect

        parts = urlsplit(url)
        if parts.scheme != "ws" or not parts.hostname or not parts.port:
            raise BidiError(f"BiDi URL: expected ws://host:port, got {url!r}")
        loop = asyncio.get_running_loop()
        sock = await loop.run_in_executor(
            None, connect_socket, netns_name, parts.hostname, parts.port, timeout_s
        )
        endpoint = f"ws://{parts.hostname}:{parts.port}/session"
        try:
            ws = await connect(
                endpoint,
                sock=sock,
                proxy=None,  # the socket is already connected where it must be
                open_timeout=timeout_s,
                ping_interval=None,  # a loaded machine may starve the browser's replies
                # A send racing the browser's death waits (shielded) for the close this long, not 10 s.
                close_timeout=CLOSE_TIMEOUT_S,
                max_size=MAX_MESSAGE_BYTES,
                compression=None,
            )
        except Exception as exc:
            sock.close()
            raise BidiError(f"WebSocket handshake with {endpoint}: {one_line(exc)}") from exc
        session = cls(ws, endpoint)
        try:
            # A browser still starting up (a loaded machine) answers late: allow the session its own time.
            result = await session.command("session.new", {"capabilities": {}}, session_timeout_s)
        except BidiError:
            await session.close()
            raise
        session.capabilities = result.get("capabilities") or {}
        return session

    async def _read(self) -> None:
        why = "connection closed"
        try:
            async for raw in self.ws:
                msg = json.loads(raw)
                cmd_id = msg.get("id") if isinstance(msg, dict) else None
                fut = self._pending.pop(cmd_id, None) if isinstance(cmd_id, int) else None
                if fut is not None and not fut.done():
                    fut.set_result(msg)
        except Exception as exc:
            why = f"connection lost: {one_line(exc)}"
        finally:
            self._closed = self._closed or why
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(BidiError(self._closed))
            self._pending.clear()

    @property
    def lost(self) -> bool:
        """Whether the connection has ended (the browser went away or was closed)."""
        return self._closed is not None

    async def command(
        self, method: str, params: dict[str, Any], timeout_s: float | None = COMMAND_TIMEOUT_S
    ) -> dict[str, Any]:
        """Send a command and return its result; BidiError on an error reply, a timeout or a lost
        connection (timeout_s None: wait as long as the connection lives)."""
        if self._closed is not None:
            raise BidiError(f"{method}: {self._closed}")
        cmd_id = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[cmd_id] = fut
        try:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for swallows a cancellation that arrives as
            # the reply (or the lost connection's error) does, and the caller's task then never ends.
            async with asyncio.timeout(timeout_s):
                await self.ws.send(json.dumps({"id": cmd_id, "method": method, "params": params}))
                reply = await fut
        except TimeoutError:
            raise BidiError(f"{method}: no reply within {timeout_s:g} s") from None
        except BidiError as exc:
            raise BidiError(f"{method}: {exc}") from None
        except Exception as exc:
            raise BidiError(f"{method}: {one_line(exc)}") from None
        finally:
            self._pending.pop(cmd_id, None)
        if reply.get("type") == "error":
            raise BidiError(f"{method}: {reply.get('error')}: {one_line(reply.get('message'))}")
        result: dict[str, Any] = reply.get("result") or {}
        return result

    async def top_context(self) -> str:
        """The first top-level browsing context (the window Firefox opened at start)."""
        tree = await self.command("browsingContext.getTree", {"maxDepth": 0})
        contexts = tree.get("contexts") or []
        if not contexts:
            raise BidiError("browsingContext.getTree: no browsing context")
        return str(contexts[0]["context"])

    async def navigate(self, context: str, url: str, timeout_s: float = COMMAND_TIMEOUT_S) -> None:
        """Load `url` in `context` and wait until the document and its scripts have loaded."""
        await self.command(
            "browsingContext.navigate", {"context": context, "url": url, "wait": "complete"}, timeout_s
        )

    async def evaluate(
        self, context: str, expression: str, timeout_s: float | None = COMMAND_TIMEOUT_S
    ) -> Any:
        """Evaluate `expression` in the context's page, awaiting a promise; its value as plain Python.
        A thrown exception or rejected promise is a BidiError with the page's message."""
        reply = await self.command(
            "script.evaluate",
            {"expression": expression, "target": {"context": context}, "awaitPromise": True},
            timeout_s,
        )
        if reply.get("type") == "exception":
            details = reply.get("exceptionDetails") or {}
            raise BidiError(f"script.evaluate: page threw: {one_line(details.get('text'))}")
        return deserialize(reply.get("result") or {})

    async def close_browser(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """browser.close: Firefox ends the session and exits (the caller waits for its pid)."""
        with contextlib.suppress(BidiError):
            await self.command("browser.close", {}, timeout_s)
        await self.close()

    async def close(self) -> None:
        """Close the connection (the browser keeps running)."""
        self._closed = self._closed or "connection closed"
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), CLOSE_TIMEOUT_S)
        self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self._reader
