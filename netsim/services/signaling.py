"""WebSocket signaling server: presence plus forwarding of offers, answers and ICE candidates.

FastAPI app served by uvicorn, in the lab on the `server` host or standalone (`netsim signaling`).
Protocol reference: docs/signaling.md.

Design notes:
- Everything that touches the registry is synchronous (no await between lookup and enqueue), so a peer that
  disconnects mid-forward can never be half-removed: the single event loop is the lock.
- Each connection owns an unbounded outbound queue drained by its own writer task, so a slow client never
  stalls the sender; a client whose backlog grows past SEND_BACKLOG_CHARS is dropped instead.
- A connection only removes the registry entry if the entry is still itself, so a replaced connection's
  cleanup cannot evict its successor (the KeyError / lockout bug of naive managers).
- Whatever one client sends can only hurt that client: frames are refused at the sender unless they can be
  forwarded as they are (bounded nesting, valid UTF-8 text), and a write that fails anyway closes only the
  connection it was for (1011), never leaving it registered-but-deaf.
- Transport limits uvicorn lacks (signaling_server.py): every HTTP request, WebSocket handshakes included,
  must be complete within REQUEST_TIMEOUT_S; connections over the limit get a 503 instead of exhausting files.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from netsim.services.signaling_frames import (  # noqa: F401  (MAX_DEPTH: part of this module's interface)
    MAX_DEPTH,
    BadMessage,
    _dump,
    _parse,
    _utf8_len_over,
    validate_forward,
)

log = logging.getLogger("netsim.services.signaling")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
MAX_FRAME = 64 * 1024  # larger frames get a `too-large` error, the connection stays up
HARD_MAX_FRAME = 1024 * 1024  # transport cap: larger frames make uvicorn close with 1009
DEFAULT_RATE = 50.0  # messages per second per connection (sustained)
DEFAULT_BURST = 100  # token bucket size: a trickle-ICE burst fits comfortably
DEFAULT_MAX_STRIKES = 50  # consecutive rejected frames before the connection is closed
SEND_BACKLOG_CHARS = 4 * 1024 * 1024  # queued outbound text beyond which a client counts as stuck
REQUEST_TIMEOUT_S = 10.0  # an HTTP request (or WebSocket handshake) must be complete within this
DEFAULT_MAX_CONNECTIONS = 4096  # open TCP connections in any state; more get HTTP 503
# Open connections from one source address: a flood from one address cannot take the others' places (a
# household or a carrier NAT shares an address, so this is generous; a lab pair uses four at most).
DEFAULT_MAX_PER_SOURCE = 256
OVER_LIMIT_SLACK = 256  # connections beyond the limit that still get a 503 reply (the rest: closed at once)
OVER_LIMIT_TIMEOUT_S = 2.0  # how long a refused connection may take to send its request
FD_TARGET = 65536  # soft RLIMIT_NOFILE the server raises itself to (never above the hard limit)
FD_RESERVE = 64  # files kept for everything but client connections (listening socket, logs, imports)
SECRET_ENV = "NETSIM_SIGNALING_SECRET"

CLOSE_REPLACED = 4000  # a newer connection took over this user id: do not reconnect automatically
CLOSE_POLICY = 1008  # sustained abuse
CLOSE_TOO_SLOW = 1013  # client does not read its messages; reconnecting is fine
CLOSE_SEND_FAILED = 1011  # a frame for this client could not be sent (a server fault, not the client's)

USER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
FORWARD_TYPES = frozenset({"offer", "answer", "candidate", "bye"})
STATUSES = frozenset({"online", "busy"})
TOKEN_IN_TEXT = re.compile(r"(token=)[^&\s\"']*")
# JSON strings (skipped whole, escapes included) or a bracket: enough to measure nesting without parsing.


# --- tokens ---------------------------------------------------------------------------------------------


def make_token(secret: str, user: str) -> str:
    """Token for `user`: hex HMAC-SHA256 of the user id under the server secret."""
    return hmac.new(secret.encode(), user.encode(), hashlib.sha256).hexdigest()


def verify_token(secret: str, user: str, token: str | None) -> bool:
    """Constant-time check of a token; False for a missing token or an invalid user id."""
    if not token or not USER_RE.fullmatch(user):
        return False
    return hmac.compare_digest(make_token(secret, user).encode(), token.encode())


# --- connections and registry ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Close:
    code: int
    reason: str


@dataclass(frozen=True)
class Limits:
    rate_per_s: float | None  # None: no rate limit
    burst: int
    max_strikes: int


class Conn:
    """One authenticated WebSocket: status, outbound queue, token bucket and strike count."""

    def __init__(self, user: str, ws: WebSocket, limits: Limits) -> None:
        self.user = user
        self.ws = ws
        self.status = "online"
        self.closing = False
        self.queue: asyncio.Queue[str | _Close] = asyncio.Queue()
        self._limits = limits
        self._tokens = float(limits.burst)
        self._stamp = time.monotonic()
        self.strikes = 0
        self.backlog = 0  # characters queued, not yet handed to the transport
        self.overflowed = False

    def deliver(self, text: str) -> bool:
        """Queue a frame; False if the connection is going away (or just got dropped for lagging)."""
        if self.closing:
            return False
        if self.backlog + len(text) > SEND_BACKLOG_CHARS:
            self.overflowed = True
            self.shutdown(
                CLOSE_TOO_SLOW, "outbound backlog overflow: client does not read", drop_pending=True
            )
            return False
        self.backlog += len(text)
        self.queue.put_nowait(text)
        return True

    def shutdown(self, code: int, reason: str, drop_pending: bool = False) -> None:
        """Ask the writer to close after what is queued (or right away if drop_pending)."""
        if self.closing:
            return
        self.closing = True
        while drop_pending and not self.queue.empty():
            self.queue.get_nowait()
            self.backlog = 0
        self.queue.put_nowait(_Close(code, reason))

    def take_token(self) -> bool:
        rate = self._limits.rate_per_s
        if rate is None:
            return True
        now = time.monotonic()
        self._tokens = min(float(self._limits.burst), self._tokens + (now - self._stamp) * rate)
        self._stamp = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


class Hub:
    """Registry of connected users, presence fan-out and message routing."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.conns: dict[str, Conn] = {}

    def presence(self) -> dict[str, str]:
        return {user: conn.status for user, conn in self.conns.items()}

    def broadcast(self, user: str, status: str) -> None:
        frame = _dump({"type": "presence", "user": user, "status": status})
        for conn in list(self.conns.values()):
            if conn.user != user:
                self.deliver(conn, frame)

    def deliver(self, conn: Conn, text: str) -> bool:
        """Queue a frame for `conn`; a client that stopped reading is unregistered (on the next tick,
        so that fan-out loops never recurse)."""
        if conn.deliver(text):
            return True
        if conn.overflowed and self.conns.get(conn.user) is conn:
            asyncio.get_running_loop().call_soon(self.leave, conn)
        return False

    def join(self, conn: Conn) -> None:
        """Register (replacing any previous connection of the user), greet, announce."""
        old = self.conns.get(conn.user)
        self.conns[conn.user] = conn
        if old is not None:
            old.shutdown(CLOSE_REPLACED, "replaced by a newer connection for this user")
        self.deliver(conn, _dump({"type": "welcome", "user": conn.user, "presence": self.presence()}))
        if old is None or old.status != conn.status:
            self.broadcast(conn.user, conn.status)

    def leave(self, conn: Conn) -> None:
        """Unregister if still registered as this connection (idempotent), announce offline."""
        conn.closing = True
        if self.conns.get(conn.user) is conn:
            del self.conns[conn.user]
            self.broadcast(conn.user, "offline")

    def kick(self, conn: Conn, code: int, reason: str) -> None:
        conn.shutdown(code, reason)
        self.leave(conn)

    def error(self, conn: Conn, code: str, message: str, strike: bool = True) -> None:
        self.deliver(conn, _dump({"type": "error", "code": code, "message": message}))
        if strike:
            conn.strikes += 1
            if conn.strikes >= self.limits.max_strikes:
                self.kick(conn, CLOSE_POLICY, f"too many rejected messages ({conn.strikes} in a row)")

    def handle(self, conn: Conn, text: str | None, data: bytes | None) -> None:
        """Process one received frame from `conn` (never raises for bad input)."""
        if conn.closing:
            return
        if not conn.take_token():
            self.error(conn, "rate-limited", f"over {self.limits.rate_per_s:g} messages/s; slow down")
            return
        size_over = _utf8_len_over(text, MAX_FRAME) if text is not None else len(data or b"") > MAX_FRAME
        if size_over:
            self.error(conn, "too-large", f"frames are limited to {MAX_FRAME} bytes")
            return
        try:
            if text is None:
                raise BadMessage("binary frames are not accepted; send JSON text")
            self._dispatch(conn, _parse(text))
        except BadMessage as exc:
            log.debug("bad-message from %s: %s", conn.user, exc)
            self.error(conn, "bad-message", str(exc))
            return
        conn.strikes = 0

    def _dispatch(self, conn: Conn, obj: dict[str, Any]) -> None:
        kind = obj.get("type")
        if kind == "status":
            self._set_status(conn, obj)
        elif kind in FORWARD_TYPES:
            self._forward(conn, obj)
        else:
            raise BadMessage(f"unknown type {kind!r}; expected status, offer, answer, candidate or bye")

    def _set_status(self, conn: Conn, obj: dict[str, Any]) -> None:
        status = obj.get("status")
        if status not in STATUSES:
            raise BadMessage("'status' must be 'online' or 'busy'")
        if status != conn.status:
            conn.status = status
            self.broadcast(conn.user, status)

    def _forward(self, conn: Conn, obj: dict[str, Any]) -> None:
        target = validate_forward(obj)
        if target == conn.user:
            raise BadMessage("'target' is yourself: messages are only forwarded to other users")
        out = {key: value for key, value in obj.items() if key != "target"}
        out["sender"] = conn.user  # authenticated identity, whatever the payload claimed
        dest = self.conns.get(target)
        if dest is None or not self.deliver(dest, _dump(out)):
            self.error(conn, "user-offline", f"{target!r} is not connected", strike=False)


# --- the app ---------------------------------------------------------------------------------------------


async def _writer(hub: Hub, conn: Conn) -> None:
    """Drain the outbound queue. A failed send ends this connection: unregistered, and closed with 1011
    unless the peer is gone already (then the session's receive loop sees the disconnect)."""
    try:
        while True:
            item = await conn.queue.get()
            if isinstance(item, _Close):
                await conn.ws.close(item.code, item.reason)
                return
            conn.backlog -= len(item)
            await conn.ws.send_text(item)
    except Exception as exc:  # ClientDisconnected, WebSocketDisconnect, RuntimeError after close, OSError
        gone = isinstance(exc, OSError | RuntimeError | WebSocketDisconnect)  # the peer left first
        (log.debug if gone else log.warning)("send to %s failed, closing it: %r", conn.user, exc)
        hub.leave(conn)
        with contextlib.suppress(Exception):  # the transport may be gone already
            await conn.ws.close(CLOSE_SEND_FAILED, "a message for you could not be sent")


async def _refuse(ws: WebSocket, reason: str) -> None:
    """Refuse the handshake: a close before accept becomes HTTP 403 (the reason stays in our log).

    (A denial response with a body would be nicer, but uvicorn's sansio protocol then logs a spurious
    "returned without completing handshake" error for every refused client.)
    """
    client = ws.client.host if ws.client else "?"
    log.info("refused %s from %s: %s", ws.path_params.get("user_id"), client, reason)
    await ws.close(CLOSE_POLICY, reason)


async def _session(hub: Hub, ws: WebSocket, user: str) -> None:
    await ws.accept()
    conn = Conn(user, ws, hub.limits)
    hub.join(conn)
    writer = asyncio.create_task(_writer(hub, conn), name=f"signaling-writer-{user}")
    try:
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                break
            hub.handle(conn, msg.get("text"), msg.get("bytes"))
    finally:
        # A disconnect arrives either from the client (nothing left worth sending) or right after our
        # writer sent a close frame (writer already done), so the writer can simply be cancelled.
        hub.leave(conn)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer


def create_app(
    secret: str,
    rate_per_s: float | None = DEFAULT_RATE,
    burst: int = DEFAULT_BURST,
    max_strikes: int = DEFAULT_MAX_STRIKES,
) -> FastAPI:
    """The signaling app. rate_per_s=None (or <= 0) disables rate limiting."""
    if not secret:
        raise ValueError("the signaling secret must not be empty")
    limits = Limits(rate_per_s if rate_per_s and rate_per_s > 0 else None, max(1, burst), max(1, max_strikes))
    hub = Hub(limits)
    app = FastAPI(title="netsim signaling", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.hub = hub

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "clients": len(hub.conns)}

    @app.get("/presence")
    async def presence() -> dict[str, str]:
        return hub.presence()

    @app.websocket("/ws/{user_id}")
    async def websocket(ws: WebSocket, user_id: str, token: str | None = None) -> None:
        if not USER_RE.fullmatch(user_id):
            await _refuse(ws, "invalid user id (1-64 of A-Z a-z 0-9 . _ @ -, starting alphanumeric)")
        elif not verify_token(secret, user_id, token):
            await _refuse(ws, "missing or invalid token")
        else:
            await _session(hub, ws, user_id)

    return app
