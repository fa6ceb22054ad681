"""Signaling server under abuse (issue 13): every bad input is refused at its sender, and afterwards two good
clients still exchange an offer and the attacked user is still online and still hears its messages.

Real uvicorn on 127.0.0.1, real `websockets` clients, raw sockets for the half-open requests. Servers with a
short request deadline keep the file fast; one test checks the default deadline on a `netsim signaling`
process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Frame, Opcode

from netsim.cli import main
from netsim.services import signaling, signaling_server
from netsim.services.signaling import (
    CLOSE_SEND_FAILED,
    MAX_DEPTH,
    REQUEST_TIMEOUT_S,
    create_app,
    make_token,
)
from netsim.services.signaling_client import SignalingClient
from netsim.services.signaling_server import run_in_thread
from tests.services import signaling_harness as harness
from tests.services.signaling_harness import Server, ServerLogs, serve, server_logs

pytestmark = pytest.mark.timeout(120)

SECRET = "abuse-secret"
REPO = Path(__file__).resolve().parents[2]
ONE_ADDRESS = 100_000  # per-address limit of servers whose clients all come from 127.0.0.1
T = TypeVar("T")
SHORT_TIMEOUT_S = 1.5  # request deadline of the in-process servers (the default is checked on a process)


def run(coro: Awaitable[T], timeout: float = 60) -> T:
    return harness.run(coro, timeout)


# --- logs: refusals are one line, never a traceback or an error -------------------------------------------


@pytest.fixture(autouse=True)
def logs() -> Iterator[ServerLogs]:
    """Every record of the server; afterwards: no ERROR and no traceback, whatever the clients sent."""
    with server_logs(logging.DEBUG) as handler:
        yield handler
    assert handler.lines(logging.ERROR) == []
    assert handler.tracebacks() == []


# --- servers and clients ------------------------------------------------------------------------------------


def _app() -> FastAPI:
    app = create_app(SECRET, rate_per_s=100_000, burst=100_000, max_strikes=1_000)
    hub = app.state.hub

    @app.post("/test/unsendable/{user}")
    async def unsendable(user: str) -> dict[str, bool]:
        """Queue a frame that cannot be encoded for `user`: the only way left to make a write fail."""
        return {"queued": hub.deliver(hub.conns[user], '{"type":"bye","sender":"\ud800"}')}

    return app


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    # Every client here comes from 127.0.0.1: the per-address limit has a test of its own.
    with serve(_app(), request_timeout_s=SHORT_TIMEOUT_S, max_per_source=ONE_ADDRESS) as srv:
        yield srv


class Peer(harness.Peer):
    @classmethod
    async def join(cls, srv: Server, user: str, secret: str = SECRET) -> Peer:
        peer = await super().join(srv, user, secret)
        assert isinstance(peer, Peer)
        return peer


async def still_works(srv: Server, victim: Peer | None = None) -> None:
    """Two new clients exchange an offer and an answer; the victim is online and still receives."""
    a, b = await Peer.join(srv, srv.fresh("good")), await Peer.join(srv, srv.fresh("good"))
    await a.send(type="offer", target=b.user, sdp="v=0 offer")
    assert await b.recv_type("offer") == {"type": "offer", "sdp": "v=0 offer", "sender": a.user}
    await b.send(type="answer", target=a.user, sdp="v=0 answer")
    assert await a.recv_type("answer") == {"type": "answer", "sdp": "v=0 answer", "sender": b.user}
    if victim is not None:
        assert srv.presence().get(victim.user) == "online"
        await a.send(type="offer", target=victim.user, sdp="still there?")
        assert await victim.recv_type("offer") == {"type": "offer", "sdp": "still there?", "sender": a.user}
    await a.ws.close()
    await b.ws.close()


async def nothing_more(receiver: Peer, sender: Peer) -> None:
    """Delivery is FIFO per sender: if a marker sent now is the next frame, nothing else came before it."""
    await sender.send(type="bye", target=receiver.user, tag="marker")
    assert await receiver.recv_type("bye") == {"type": "bye", "tag": "marker", "sender": sender.user}


# --- 1. invalid text is refused at the sender ---------------------------------------------------------------

SURROGATES = {
    "the audit's frame": '{"type":"bye","target":"%s","reason":"\\ud800"}',
    "in the sdp": '{"type":"offer","target":"%s","sdp":"v=0\\udfff"}',
    "in a candidate": '{"type":"candidate","target":"%s","candidate":"c\\udc00","sdpMid":"0"}',
    "in a key": '{"type":"bye","target":"%s","\\ud800":1}',
    "pair reversed": '{"type":"bye","target":"%s","x":"\\udc00\\ud800"}',
    "nested": '{"type":"bye","target":"%s","x":{"y":["\\uD800"]}}',
}


@pytest.mark.parametrize("template", SURROGATES.values(), ids=SURROGATES.keys())
def test_lone_surrogate_refused_at_sender(server: Server, template: str) -> None:
    async def scenario() -> None:
        victim = await Peer.join(server, server.fresh("victim"))
        attacker = await Peer.join(server, server.fresh("attacker"))
        await attacker.ws.send(template % victim.user)
        error = await attacker.recv_type("error")
        assert error["code"] == "bad-message" and "surrogate" in error["message"]
        await nothing_more(victim, attacker)  # nothing reached the victim, and the attacker still works
        await still_works(server, victim)
        await victim.ws.close()
        await attacker.ws.close()

    run(scenario())


def test_valid_surrogate_pair_is_forwarded(server: Server) -> None:
    async def scenario() -> None:
        a, b = await Peer.join(server, server.fresh("a")), await Peer.join(server, server.fresh("b"))
        await a.ws.send('{"type":"bye","target":"' + b.user + '","reason":"\\ud83d\\ude00"}')
        assert await b.recv_type("bye") == {"type": "bye", "reason": "\U0001f600", "sender": a.user}
        await a.ws.close()
        await b.ws.close()

    run(scenario())


def test_failed_write_closes_that_client_with_a_code(server: Server) -> None:
    async def scenario() -> None:
        victim, watcher = await Peer.join(server, server.fresh("victim")), await Peer.join(server, "watcher")
        async with httpx.AsyncClient() as http:
            reply = await http.post(f"{server.http}/test/unsendable/{victim.user}")
        assert reply.json() == {"queued": True}
        with pytest.raises(ConnectionClosed):
            while True:
                await victim.recv()
        assert victim.ws.close_code == CLOSE_SEND_FAILED  # closed, not left registered-but-deaf
        offline = {"type": "presence", "user": victim.user, "status": "offline"}
        while (msg := await watcher.recv()) != offline:
            assert msg["type"] == "presence"
        again = await Peer.join(server, victim.user)  # and it may come straight back
        await still_works(server, again)
        await again.ws.close()
        await watcher.ws.close()

    run(scenario())


# --- 2. nesting depth ---------------------------------------------------------------------------------------


def _nested(depth: int, target: str) -> str:
    """A forwardable frame whose `x` makes the whole frame `depth` levels deep."""
    inner = "[" * (depth - 1) + "]" * (depth - 1)
    return '{"type":"bye","target":"' + target + '","x":' + inner + "}"


DEEP = {
    "the audit's 2 KB frame": lambda t: "[" * 1000 + "]" * 1000,
    "deep inside an offer": lambda t: _nested(1000, t),
    "objects, 64 KB": lambda t: '{"a":' * 10_000 + "1" + "}" * 10_000,
    "one too deep": lambda t: _nested(MAX_DEPTH + 1, t),
    "unterminated": lambda t: "[" * 50_000,
}


@pytest.mark.parametrize("make", DEEP.values(), ids=DEEP.keys())
def test_deep_nesting_is_bad_message_in_one_line(server: Server, logs: ServerLogs, make: Any) -> None:
    async def scenario() -> None:
        victim = await Peer.join(server, server.fresh("victim"))
        attacker = await Peer.join(server, server.fresh("attacker"))
        logs.records.clear()
        await attacker.ws.send(make(victim.user))
        error = await attacker.recv_type("error")
        assert error["code"] == "bad-message" and f"deeper than {MAX_DEPTH}" in error["message"]
        assert [line for line in logs.lines() if attacker.user in line] == [
            f"bad-message from {attacker.user}: nested deeper than {MAX_DEPTH} levels"
        ]
        await nothing_more(victim, attacker)
        await still_works(server, victim)
        await victim.ws.close()
        await attacker.ws.close()

    run(scenario())


def test_nesting_up_to_the_limit_and_brackets_in_strings_are_forwarded(server: Server) -> None:
    async def scenario() -> None:
        a, b = await Peer.join(server, server.fresh("a")), await Peer.join(server, server.fresh("b"))
        await a.ws.send(_nested(MAX_DEPTH, b.user))
        got = await b.recv_type("bye")
        assert json.dumps(got["x"]).count("[") == MAX_DEPTH - 1
        brackets = "[{" * 5_000 + '\\"[' * 100  # strings are not structure, escaped quotes included
        await a.send(type="bye", target=b.user, x=brackets)
        assert (await b.recv_type("bye"))["x"] == brackets
        await a.ws.close()
        await b.ws.close()

    run(scenario())


# --- 4. invalid UTF-8 at the transport ----------------------------------------------------------------------


@pytest.mark.parametrize("payload", [b'{"type":"bye","target":"x","r":"\xff"}', b"\xed\xa0\x80", b"\xc3"])
def test_invalid_utf8_closes_1007_with_one_line(server: Server, logs: ServerLogs, payload: bytes) -> None:
    async def scenario() -> None:
        victim = await Peer.join(server, server.fresh("victim"))
        attacker = await Peer.join(server, server.fresh("attacker"))
        logs.records.clear()
        attacker.ws.protocol.send_frame(Frame(Opcode.TEXT, payload))  # the client library refuses to
        attacker.ws.send_data()
        with pytest.raises(ConnectionClosed):
            await attacker.recv()
        assert attacker.ws.close_code == 1007
        lines = [r for r in logs.records if r.name == "uvicorn.error"]
        assert [(r.levelname, r.getMessage().split(" (")[0]) for r in lines] == [
            ("WARNING", "closed a WebSocket with 1007: invalid UTF-8 in a text frame")
        ]
        await still_works(server, victim)
        await victim.ws.close()

    run(scenario())


# --- 5. messages to yourself --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "offer", "sdp": "v=0"},
        {"type": "answer", "sdp": "v=0"},
        {"type": "candidate", "candidate": "candidate:1 1 udp 1 10.0.0.1 9 typ host", "sdpMid": "0"},
        {"type": "bye"},
    ],
    ids=lambda f: f["type"],
)
def test_message_to_self_is_bad_message(server: Server, frame: dict[str, Any]) -> None:
    async def scenario() -> None:
        me, other = (
            await Peer.join(server, server.fresh("me")),
            await Peer.join(server, server.fresh("other")),
        )
        await me.send(**frame, target=me.user)
        error = await me.recv_type("error")
        assert error["code"] == "bad-message" and "yourself" in error["message"]
        await nothing_more(me, other)  # the frame did not come back
        await still_works(server, me)
        await me.ws.close()
        await other.ws.close()

    run(scenario())


# --- 3. half-open requests, idle connections, the connection limit ----------------------------------------


def _half_open_count() -> int:
    """1,100 (the audit locked out a 1,024-file server with that many) unless the hard limit is lower."""
    soft = signaling_server.raise_fd_limit()
    return min(1100, (soft - 300) // 2)  # both ends of each socket live in this process


PARTIAL = [
    b"",  # connected, never says anything
    b"GET /ws/x?token=",  # request line cut short
    b"GET /ws/x HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n",  # headers never end
    b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n",
]


def _open_half(port: int, count: int) -> list[socket.socket]:
    socks = []
    for i in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(PARTIAL[i % len(PARTIAL)])
        socks.append(sock)
    return socks


def _wait_closed(socks: list[socket.socket], within_s: float) -> list[float]:
    """Seconds until the server closed each socket (read gives EOF or a reset), all within `within_s`."""
    start, left = time.monotonic(), list(socks)
    closed_after = []
    for sock in left:
        sock.settimeout(max(0.01, start + within_s - time.monotonic()))
        try:
            data = sock.recv(4096)
        except ConnectionResetError:
            data = b""
        except TimeoutError:
            raise AssertionError(f"a half-open socket was still open after {within_s} s") from None
        assert data == b"", data
        closed_after.append(time.monotonic() - start)
        sock.close()
    return closed_after


def test_half_open_requests_are_closed_and_do_not_lock_anybody_out(server: Server) -> None:
    count = _half_open_count()
    victim_box: list[Peer] = []

    async def join_victim() -> None:
        victim_box.append(await Peer.join(server, server.fresh("victim")))

    async def good_clients() -> None:
        await still_works(server, victim_box[0])

    async def close_victim() -> None:
        await victim_box[0].ws.close()

    async def whole() -> None:
        await join_victim()
        opened = time.monotonic()
        socks = await asyncio.to_thread(_open_half, server.port, count)
        took = time.monotonic() - opened
        await good_clients()  # in while `count` unfinished requests are open
        assert time.monotonic() - opened < SHORT_TIMEOUT_S + took  # (so they really were open then)
        # Every unfinished request is closed within the deadline (plus the time it took to open them all).
        await asyncio.to_thread(_wait_closed, socks, SHORT_TIMEOUT_S + took + 3)
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{server.http}/healthz")).json()["status"] == "ok"
        await good_clients()
        await close_victim()

    run(whole())


def test_slow_trickle_is_closed_at_the_deadline(server: Server) -> None:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    start = time.monotonic()
    sock.sendall(b"GET /healthz HTTP/1.1\r\n")
    closed = False
    while time.monotonic() - start < SHORT_TIMEOUT_S + 3:
        try:
            sock.sendall(b"X")  # a byte at a time: resets no deadline
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
        time.sleep(0.1)
    sock.close()
    assert closed, "a request that trickled in byte by byte was never closed"
    assert time.monotonic() - start >= SHORT_TIMEOUT_S - 0.1


def test_keep_alive_connection_serves_several_requests(server: Server) -> None:
    with httpx.Client(base_url=server.http) as http:  # one connection, kept alive
        for _ in range(3):
            assert http.get("/healthz").status_code == 200
            time.sleep(SHORT_TIMEOUT_S / 2)  # each request gets its own deadline


def test_connection_limit_refuses_clearly_then_recovers(logs: ServerLogs) -> None:
    app = _app()
    with run_in_thread(app, max_connections=20, request_timeout_s=30) as url:
        srv = Server(url, app)
        idle = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(20)]
        time.sleep(0.2)
        refused = httpx.get(f"{url}/healthz", timeout=5)
        assert refused.status_code == 503 and "connection limit reached (20 open)" in refused.text

        async def refused_ws() -> None:
            with pytest.raises(InvalidStatus) as info:
                await Peer.join(srv, "late")
            assert info.value.response.status_code == 503

        run(refused_ws())
        assert any("refused connections over the limit of 20" in line for line in logs.lines(logging.WARNING))
        for sock in idle:
            sock.close()
        time.sleep(0.2)
        run(still_works(srv))


def test_one_address_flooding_half_open_connections_locks_nobody_else_out(logs: ServerLogs) -> None:
    """A sustained flood from one address (127.0.0.2) fills its own share only: every good client from
    another address (127.0.0.1) gets in while it goes on, and the flood's extra connections get a 503 that
    names the per-address limit (docs/signaling.md)."""
    app = _app()
    with run_in_thread(app, max_connections=60, request_timeout_s=1.0, max_per_source=10) as url:
        srv = Server(url, app)
        stop = time.monotonic() + 4.0  # longer than the request deadline: flooders are closed and come back
        held: list[socket.socket] = []

        def flood() -> None:
            while time.monotonic() < stop:
                held[:] = [s for s in held if s.fileno() != -1]
                while len(held) < 80:  # more than the whole server's limit
                    sock = socket.create_connection(
                        ("127.0.0.1", srv.port), timeout=5, source_address=("127.0.0.2", 0)
                    )
                    sock.sendall(PARTIAL[len(held) % len(PARTIAL)])
                    held.append(sock)
                time.sleep(0.2)
                for sock in held[:20]:  # some go away, new ones take their place: sustained
                    sock.close()

        async def good_clients() -> int:
            joined = 0
            while time.monotonic() < stop - 0.5:
                a, b = await Peer.join(srv, srv.fresh("good")), await Peer.join(srv, srv.fresh("good"))
                await a.send(type="offer", target=b.user, sdp="v=0 offer")
                assert (await b.recv_type("offer"))["sender"] == a.user
                await a.ws.close()
                await b.ws.close()
                joined += 2
            return joined

        async def whole() -> int:
            flooding = asyncio.create_task(asyncio.to_thread(flood))
            await asyncio.sleep(0.5)  # the flood is on
            joined = await good_clients()
            await flooding
            return joined

        joined = run(whole())
        assert joined >= 4  # every good client got in (a refused one fails the join)
        for sock in held:
            sock.close()
        over = httpx.get(f"{url}/healthz", timeout=5)
        assert over.status_code == 200  # the flood has gone: everybody is welcome again
    assert any("refused connections over the limit of 60" in line for line in logs.lines(logging.WARNING))


def test_the_per_address_refusal_says_so() -> None:
    app = _app()
    with run_in_thread(app, max_connections=50, request_timeout_s=30, max_per_source=3) as url:
        port = Server(url, app).port
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        time.sleep(0.2)
        refused = httpx.get(f"{url}/healthz", timeout=5)
        assert refused.status_code == 503
        assert "connection limit per address reached (3 open from 127.0.0.1)" in refused.text
        with socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.2", 0)) as other:
            other.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert other.recv(64).startswith(b"HTTP/1.1 200")  # another address is served
        for sock in idle:
            sock.close()
        time.sleep(0.2)
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200  # the count went down again


# --- 1,000 concurrent clients -------------------------------------------------------------------------------


def test_1000_concurrent_clients_then_an_offer_and_the_default_deadline() -> None:
    """Its own server with the default deadline (this process is both the server and 1,000 busy clients: a
    client may take longer than the short deadline to send its request). Two unfinished requests opened at
    the start are closed after REQUEST_TIMEOUT_S (10 s), not before (uvicorn's keep-alive timeout is 5 s)."""
    app = _app()
    with run_in_thread(app, max_per_source=ONE_ADDRESS) as url:
        srv = Server(url, app)
        opened = time.monotonic()
        unfinished = _open_half(srv.port, 2)
        _many(srv, 1000)
        _wait_closed(unfinished, REQUEST_TIMEOUT_S + 2 - (time.monotonic() - opened))
        assert time.monotonic() - opened >= REQUEST_TIMEOUT_S - 0.5


def _many(server: Server, n: int) -> None:
    async def scenario() -> None:
        clients = await asyncio.gather(*(_RawClient.join(server, f"many{i:04d}") for i in range(n)))
        presence = server.presence()
        assert sum(user.startswith("many") for user in presence) == n
        victim = await Peer.join(server, server.fresh("victim"))
        await still_works(server, victim)
        await asyncio.gather(*(c.close() for c in clients))
        await victim.ws.close()

    run(scenario(), timeout=90)
    for _ in range(100):
        if not any(user.startswith("many") for user in server.presence()):
            break
        time.sleep(0.1)
    assert not any(user.startswith("many") for user in server.presence())


class _RawClient:
    """A WebSocket client that reads and discards (a library client parsing 500,000 presence frames would
    make this process the bottleneck, not the server)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.drain = asyncio.create_task(self._discard(reader))

    @classmethod
    async def join(cls, srv: Server, user: str) -> _RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(
            f"GET /ws/{user}?token={make_token(SECRET, user)} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        assert head.startswith(b"HTTP/1.1 101 "), head
        return cls(reader, writer)

    @staticmethod
    async def _discard(reader: asyncio.StreamReader) -> None:
        while await reader.read(65536):
            pass

    async def close(self) -> None:
        self.writer.write(b"\x88\x82\x00\x00\x00\x00\x03\xe8")  # masked close frame, code 1000
        await asyncio.wait_for(self.drain, 30)  # the server answers and closes
        self.writer.close()


# --- 6. the secret, the default deadline, TLS: `netsim signaling` as a process ----------------------------


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "NETSIM_SIGNALING_SECRET": "", **extra}


def _start(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "netsim", "signaling", "--host", "127.0.0.1", "--port", "0", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("signaling: listening on "):
        proc.kill()
        raise AssertionError(f"no listening line: {line!r} {proc.communicate(timeout=10)[1]}")
    return proc, line.split()[3].split("/ws/")[0]


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    _, stderr = proc.communicate(timeout=20)
    return stderr


async def _pair(base: str, secret: str, ca_file: str | None = None) -> None:
    a, b = SignalingClient(), SignalingClient()
    await a.connect(base, "pa", make_token(secret, "pa"), ca_file=ca_file)
    await b.connect(base, "pb", make_token(secret, "pb"), ca_file=ca_file)
    await a.send({"type": "offer", "target": "pb", "sdp": "v=0"})
    assert await b.recv(timeout=10) == {"type": "offer", "sdp": "v=0", "sender": "pa"}
    await a.close()
    await b.close()


def test_secret_file_keeps_the_secret_out_of_ps(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("file-secret-123\n")
    secret_file.chmod(0o600)
    proc, base = _start(["--secret-file", str(secret_file)], _env())
    try:
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        assert b"file-secret-123" not in cmdline and b"--secret-file" in cmdline
        run(_pair(base, "file-secret-123"))
    finally:
        stderr = _stop(proc)
    assert "file-secret-123" not in stderr and "Traceback" not in stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--secret-file", "/nonexistent/secret"], "--secret-file /nonexistent/secret: no such file"),
        (["--secret-file", "EMPTY"], "--secret-file EMPTY: the file is empty"),
        (["--secret-file", "EMPTY", "--secret", "s"], "give --secret or --secret-file, not both"),
        (
            ["--secret", "s", "--tls", "/nonexistent/c", "/nonexistent/k"],
            "--tls /nonexistent/c /nonexistent/k",
        ),
        ([], "a secret is required"),
    ],
)
def test_secret_and_tls_errors_are_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    args = [str(empty) if a == "EMPTY" else a for a in args]
    message = message.replace("EMPTY", str(empty))
    monkeypatch.delenv("NETSIM_SIGNALING_SECRET", raising=False)
    assert main(["signaling", "--port", "0", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"netsim: error: {message}") and err.count("\n") == 1, err


def test_secret_from_the_environment_and_tls_verified_against_the_lab_ca(tmp_path: Path) -> None:
    from netsim.services.coturn import write_certificate

    cert, key = write_certificate(tmp_path, ("127.0.0.1",))
    proc, base = _start(["--tls", str(cert), str(key)], _env(NETSIM_SIGNALING_SECRET="tls-secret"))
    try:
        assert b"tls-secret" not in Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        assert base.startswith("wss://127.0.0.1:")
        run(_pair(base, "tls-secret", ca_file=str(cert)))

        async def untrusted() -> None:
            import ssl

            with pytest.raises(ssl.SSLCertVerificationError):
                await SignalingClient().connect(base, "pc", make_token("tls-secret", "pc"))

        run(untrusted())
    finally:
        _stop(proc)


def test_fd_limit_is_raised_where_allowed() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    now = signaling_server.raise_fd_limit()
    want = signaling.FD_TARGET if hard == resource.RLIM_INFINITY else min(signaling.FD_TARGET, hard)
    assert now >= want and resource.getrlimit(resource.RLIMIT_NOFILE) == (now, hard)
    reserved = signaling.FD_RESERVE + signaling.OVER_LIMIT_SLACK
    assert signaling_server.connection_limit(4096, 1024) == 1024 - reserved
    assert signaling_server.connection_limit(4096, 1_000_000) == 4096
