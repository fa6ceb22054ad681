"""Running the signaling server: uvicorn configured for it, the transport limits uvicorn lacks (every HTTP
request, WebSocket handshakes included, complete within REQUEST_TIMEOUT_S; a connection limit answered with
503), log filters that keep tokens and tracebacks out of the logs, the open-file limit, and serving it in this
thread (`serve`, `netsim signaling`) or in a background thread (`run_in_thread`, the lab).

The app itself (presence, forwarding, validation) is netsim.services.signaling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from uvicorn.config import WS_PROTOCOLS
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from netsim.services.signaling import (
    DEFAULT_BURST,
    DEFAULT_HOST,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_PER_SOURCE,
    DEFAULT_MAX_STRIKES,
    DEFAULT_PORT,
    DEFAULT_RATE,
    FD_RESERVE,
    FD_TARGET,
    HARD_MAX_FRAME,
    OVER_LIMIT_SLACK,
    OVER_LIMIT_TIMEOUT_S,
    REQUEST_TIMEOUT_S,
    TOKEN_IN_TEXT,
    create_app,
)

log = logging.getLogger("netsim.services.signaling")


# --- running it ------------------------------------------------------------------------------------------


class _RedactTokens(logging.Filter):
    """uvicorn logs the request path with its query string: keep tokens out of the logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "token=" in text:
            record.msg, record.args = TOKEN_IN_TEXT.sub(r"\1***", text), ()
        return True


class _OneLineInvalidUtf8(logging.Filter):
    """uvicorn logs a client's invalid UTF-8 (which it closes with 1007) as an error with a traceback: the
    client's fault, so one warning line."""

    MESSAGE = "Invalid UTF-8 sequence received from client."

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == self.MESSAGE and record.exc_info:
            exc = record.exc_info[1]
            record.msg = "closed a WebSocket with 1007: invalid UTF-8 in a text frame (%s)"
            record.args = (exc,)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _install_log_filters() -> None:
    for name, kind in (("uvicorn.error", _RedactTokens), ("uvicorn.access", _RedactTokens)):
        logger = logging.getLogger(name)
        if not any(isinstance(f, kind) for f in logger.filters):
            logger.addFilter(kind())
    error_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _OneLineInvalidUtf8) for f in error_log.filters):
        error_log.addFilter(_OneLineInvalidUtf8())


class _Tally:
    """Counts an event, logged at most every `every_s`: one line per burst of an attack, not per socket."""

    def __init__(self, what: str, every_s: float = 10.0) -> None:
        self.what = what
        self.every_s = every_s
        self.count = 0
        self.last = -every_s

    def add(self) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self.last >= self.every_s:
            log.warning("%s (%d since the last report)", self.what, self.count)
            self.count, self.last = 0, now


class _GuardedHttp(HttpToolsProtocol):
    """uvicorn's HTTP protocol plus what it lacks: a deadline for each request (its keep-alive timer runs only
    between requests, so an unfinished request held a connection forever) and a connection limit that also
    covers WebSocket handshakes (its limit_concurrency does not) with a clear 503.

    The deadline runs from the connection's start or the previous response to the response (or WebSocket
    upgrade) of the next request; a WebSocket is authenticated in its handshake, so a connection that
    never authenticates is closed by it too. Subclasses made by _http_protocol set the class attributes."""

    max_connections = DEFAULT_MAX_CONNECTIONS
    max_per_source = DEFAULT_MAX_PER_SOURCE
    request_timeout_s = REQUEST_TIMEOUT_S
    refusing = 0  # connections over the limit waiting for their 503 (per server class)
    per_source: dict[str, int] = {}  # open served connections by source address (per server class)
    _source: str | None = None  # counted in per_source while this connection is served
    timeouts = _Tally("closed connections with no complete request in time")
    refusals = _Tally("refused connections over the connection limit")
    _deadline: asyncio.TimerHandle | None = None
    _state = "serving"  # or "refusing" (over the limit: 503 once the request is in) or "dropped"
    _why: str | None = None  # what a refusal says, when it is not the overall limit
    _head = b""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        cls = type(self)
        peer = transport.get_extra_info("peername")
        source = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        from_source = cls.per_source.get(source, 0)
        if len(self.connections) < self.max_connections and from_source < self.max_per_source:
            cls.per_source[source] = from_source + 1
            self._source = source
            super().connection_made(transport)
            self._arm(self.request_timeout_s)
            return
        self.transport = transport
        if from_source >= self.max_per_source:
            self._why = f"connection limit per address reached ({from_source} open from {source})"
        cls.refusals.add()
        if cls.refusing >= OVER_LIMIT_SLACK:  # a flood: no reply, keep the files for the ones we serve
            self._state = "dropped"
            transport.abort()
            return
        cls.refusing += 1
        self._state = "refusing"
        self._arm(OVER_LIMIT_TIMEOUT_S)

    def data_received(self, data: bytes) -> None:
        if self._state == "refusing":
            self._head = (self._head + data)[-8192:]
            if b"\r\n\r\n" in self._head:  # reply once the request is read, so closing sends no RST
                self._refuse()
        elif self._state == "serving":
            if self._deadline is None:
                self._arm(self.request_timeout_s)
            super().data_received(data)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm(self.request_timeout_s)  # the next request, if any, gets a fresh deadline

    def handle_websocket_upgrade(self) -> None:
        self._disarm()  # the request is complete: the app authenticates (or refuses) it right away
        super().handle_websocket_upgrade()
        # The WebSocket protocol now owns the connection (its connection_lost, not ours, is called at the
        # end): it keeps the address's count until then.
        ws = self.transport.get_protocol()
        if ws is not self and self._source is not None:
            lost = ws.connection_lost

            def released(exc: Exception | None) -> None:
                self._release()
                lost(exc)

            ws.connection_lost = released  # type: ignore[method-assign]

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._release()
        if self._state == "refusing":
            type(self).refusing -= 1
        if self._state == "serving":
            super().connection_lost(exc)
        self._state = "lost"

    def _release(self) -> None:
        """This connection no longer counts for its source address."""
        if self._source is not None:
            cls = type(self)
            left = cls.per_source.get(self._source, 1) - 1
            if left > 0:
                cls.per_source[self._source] = left
            else:
                cls.per_source.pop(self._source, None)
            self._source = None

    def _refuse(self) -> None:
        why = self._why or f"connection limit reached ({self.max_connections} open)"
        body = f"signaling: {why}; try again later\n"
        head = "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
        head += f"retry-after: 1\r\nconnection: close\r\ncontent-length: {len(body)}\r\n\r\n"
        self.transport.write((head + body).encode())
        self.transport.close()
        self._disarm()

    def _arm(self, delay: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(delay, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            if self._state == "serving":
                type(self).timeouts.add()
            self.transport.abort()  # an unread request must not keep the socket in a closing state


def _http_protocol(
    limit: int, timeout_s: float, source_limit: int = DEFAULT_MAX_PER_SOURCE
) -> type[_GuardedHttp]:
    """A protocol class per server: the limits and counters belong to one server."""

    class SignalingHttp(_GuardedHttp):
        max_connections = limit
        max_per_source = source_limit
        request_timeout_s = timeout_s
        refusing = 0
        per_source: dict[str, int] = {}
        timeouts = _Tally(f"closed connections with no complete request within {timeout_s:g} s")
        refusals = _Tally(f"refused connections over the limit of {limit}")

    return SignalingHttp


def raise_fd_limit(target: int = FD_TARGET) -> int:
    """Raise the soft RLIMIT_NOFILE towards `target` (never above the hard limit); return the soft limit.

    Each client holds a file: at the usual 1024 a few hundred idle sockets locked everybody out."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = target if hard == resource.RLIM_INFINITY else min(target, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, want, exc)
    return soft


def connection_limit(requested: int, soft_fd_limit: int) -> int:
    """The connection limit actually used: `requested`, lowered to what the open-file limit can carry
    (client sockets plus the over-limit slack plus FD_RESERVE)."""
    if soft_fd_limit == resource.RLIM_INFINITY:
        return requested
    return max(1, min(requested, soft_fd_limit - FD_RESERVE - OVER_LIMIT_SLACK))


def bind_socket(host: str, port: int) -> socket.socket:
    """Listening TCP socket (port 0 picks a free one); bound here so callers learn the real port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=2048)
    sock.set_inheritable(False)
    return sock


def make_config(
    app: FastAPI,
    log_level: str = "info",
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    request_timeout_s: float = REQUEST_TIMEOUT_S,
    tls: tuple[str, str] | None = None,
    max_per_source: int = DEFAULT_MAX_PER_SOURCE,
) -> uvicorn.Config:
    """uvicorn settings of the signaling server; also raises this process's open-file limit.

    tls: (certificate file, key file) to serve wss:// and https://."""
    limit = connection_limit(max_connections, raise_fd_limit())
    config = uvicorn.Config(
        app,
        http=_http_protocol(limit, request_timeout_s, max_per_source),
        # sansio: the maintained protocol (uvicorn >= 0.35); older uvicorns pick their own default.
        ws="websockets-sansio" if "websockets-sansio" in WS_PROTOCOLS else "auto",
        ws_max_size=HARD_MAX_FRAME,
        ws_per_message_deflate=False,  # signaling frames are small; compression costs latency and memory
        lifespan="off",
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=5,
        ssl_certfile=tls[0] if tls else None,
        ssl_keyfile=tls[1] if tls else None,
    )
    _install_log_filters()
    return config


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None] | None) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self._on_ready is not None:
            self._on_ready()

    async def main_loop(self) -> None:
        # uvicorn notices should_exit every 100 ms; a lab stops its server after every session, so look
        # every 10 ms (uvicorn's once-a-tick housekeeping still runs every 100 ms).
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            for _ in range(10):
                if self.should_exit:
                    return
                await asyncio.sleep(0.01)


def serve(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    secret: str = "",
    rate_per_s: float | None = DEFAULT_RATE,
    burst: int = DEFAULT_BURST,
    max_strikes: int = DEFAULT_MAX_STRIKES,
    log_level: str = "info",
    on_ready: Callable[[str], None] | None = None,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    tls: tuple[str, str] | None = None,
    max_per_source: int = DEFAULT_MAX_PER_SOURCE,
    static_dir: Path | None = None,
) -> None:
    """Run the server until SIGINT/SIGTERM (blocking). on_ready gets the ws:// (wss:// with tls) base URL
    once serving; `static_dir` is served at /app/ (serve_static)."""
    app = create_app(secret, rate_per_s, burst, max_strikes)
    if static_dir is not None:
        serve_static(app, static_dir)
    config = make_config(
        app, log_level, max_connections, tls=tls, max_per_source=max_per_source
    )  # before binding: it checks the TLS files
    config.load()
    sock = bind_socket(host, port)
    url = _base_url(sock, "wss" if tls else "ws")
    server = _Server(config, (lambda: on_ready(url)) if on_ready else None)
    server.run(sockets=[sock])


def _base_url(sock: socket.socket, scheme: str) -> str:
    host, port = sock.getsockname()[:2]
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


@contextlib.contextmanager
def run_in_thread(
    app: FastAPI,
    host: str = "127.0.0.1",
    port: int = 0,
    log_level: str = "warning",
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    request_timeout_s: float = REQUEST_TIMEOUT_S,
    max_per_source: int = DEFAULT_MAX_PER_SOURCE,
    also: tuple[str, ...] = (),
) -> Iterator[str]:
    """Serve `app` from a background thread (tests, the lab); yields the http:// base URL (of `host`),
    stops cleanly on exit. `also`: more addresses it listens on, same port (a dual-stack lab's IPv6 one).
    Raises this process's soft open-file limit (raise_fd_limit)."""
    config = make_config(app, log_level, max_connections, request_timeout_s, max_per_source=max_per_source)
    sock = bind_socket(host, port)
    url = _base_url(sock, "http")
    socks = [sock, *(bind_socket(extra, sock.getsockname()[1]) for extra in also)]
    ready = threading.Event()
    server = _Server(config, ready.set)
    thread = threading.Thread(target=server.run, kwargs={"sockets": socks}, name="signaling", daemon=True)
    thread.start()
    try:
        if not ready.wait(15):
            raise RuntimeError("signaling server did not start")
        yield url
    finally:
        server.should_exit = True
        thread.join(15)
        for s in socks:
            s.close()


STATIC_PATH = "/app"


def serve_static(app: FastAPI, directory: Path) -> None:
    """Serve a directory's files over plain HTTP at /app/ (a peer page and its modules, for any browser:
    same origin as the WebSocket). The caller names the directory; the services know nothing of peers."""
    from starlette.staticfiles import StaticFiles

    if not any(getattr(r, "path", None) == STATIC_PATH for r in app.routes):
        app.mount(STATIC_PATH, StaticFiles(directory=directory), name="static")
