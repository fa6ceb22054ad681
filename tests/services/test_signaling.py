"""Signaling server against a real uvicorn on 127.0.0.1 (ephemeral port) with real `websockets` clients.

"Nothing else arrived" is checked with a sentinel: per-connection delivery is FIFO, so if the next frame
a client reads is a marker sent after the event under test, no unexpected frame came before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from netsim.services.signaling import MAX_FRAME, create_app, make_token, verify_token
from netsim.services.signaling_client import SignalingClient, SignalingClosed
from netsim.services.signaling_server import serve_static
from tests.services.signaling_harness import OPEN, SECRET, Peer, Server, run, serve, server_logs

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_server_errors() -> Iterator[None]:
    """Any ERROR logged by uvicorn, asyncio or the app (crash, unretrieved task exception) fails the test."""
    with server_logs(logging.ERROR) as logs:
        yield
    assert logs.lines(logging.ERROR) == []


RUNNING: list[Server] = []


def _serve(**limits: Any) -> Iterator[Server]:
    with serve(create_app(SECRET, **limits)) as srv:
        RUNNING.append(srv)
        yield srv
        RUNNING.pop()


@pytest.fixture(autouse=True)
def no_leaked_users() -> Iterator[None]:
    """Every test closes its clients: afterwards no server may still list anybody."""
    yield
    for srv in RUNNING:
        assert run(_settled(srv, {})), srv.presence()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    yield from _serve(rate_per_s=100_000, burst=100_000, max_strikes=1_000)


@pytest.fixture(scope="module")
def strict() -> Iterator[Server]:
    """Tiny rate (one token per 100 s) so limits trigger deterministically; few strikes before closing."""
    yield from _serve(rate_per_s=0.01, burst=5, max_strikes=8)


def offer_to(target: str, sdp: str = "v=0\r\n") -> dict[str, Any]:
    return {"type": "offer", "target": target, "sdp": sdp}


# --- tokens ---------------------------------------------------------------------------------------------


def test_tokens_bind_user_and_secret() -> None:
    token = make_token("s1", "alice")
    assert token == make_token("s1", "alice") and len(token) == 64
    assert verify_token("s1", "alice", token)
    assert not verify_token("s2", "alice", token)
    assert not verify_token("s1", "bob", token)
    assert not verify_token("s1", "alice", None)
    assert not verify_token("s1", "alice", token[:-1] + "é")  # non-ASCII must not raise


@pytest.mark.parametrize(
    "path",
    [
        "/ws/mallory",  # no token
        "/ws/mallory?token=",
        "/ws/mallory?token=" + "0" * 64,
        "/ws/mallory?token=" + make_token("other-secret", "mallory"),
        "/ws/mallory?token=" + make_token(SECRET, "alice"),  # somebody else's token
        "/ws/-bad?token=" + make_token(SECRET, "-bad"),  # invalid user id, even with a valid HMAC
    ],
)
def test_bad_token_refused_and_nothing_happens(server: Server, path: str) -> None:
    async def scenario() -> None:
        watcher, other = await Peer.join(server, "watcher"), await Peer.join(server, "other")
        await watcher.recv()  # other's arrival
        with pytest.raises(InvalidStatus) as refused:
            await connect(server.ws + path, proxy=None)
        assert refused.value.response.status_code == 403
        assert server.presence() == {"watcher": "online", "other": "online"}
        await watcher.sentinel_from(other, "after-refusal")  # no presence event for mallory
        await other.send(**offer_to("mallory"))
        assert (await other.recv())["code"] == "user-offline"
        await watcher.close()
        await other.close()

    run(scenario())


# --- http ------------------------------------------------------------------------------------------------


def test_healthz_and_presence_start_empty(server: Server) -> None:
    health = httpx.get(f"{server.http}/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert server.presence() == {}


# --- presence --------------------------------------------------------------------------------------------


def test_presence_transitions_and_events(server: Server) -> None:
    async def scenario() -> None:
        alice = await Peer.join(server, "alice")
        bob = await Peer.join(server, "bob")
        assert await alice.recv() == {"type": "presence", "user": "bob", "status": "online"}
        assert server.presence() == {"alice": "online", "bob": "online"}

        await bob.send(type="status", status="busy")
        assert await alice.recv() == {"type": "presence", "user": "bob", "status": "busy"}
        assert server.presence() == {"alice": "online", "bob": "busy"}

        await bob.send(type="status", status="busy")  # no change, no event
        await alice.sentinel_from(bob, "still-busy")
        await bob.sentinel_from(alice, "own-change-not-echoed")

        carol = await Peer.join(server, "carol")
        assert await alice.recv() == {"type": "presence", "user": "carol", "status": "online"}
        assert await bob.recv() == {"type": "presence", "user": "carol", "status": "online"}

        await bob.send(type="status", status="online")
        assert await alice.recv() == {"type": "presence", "user": "bob", "status": "online"}
        assert await carol.recv() == {"type": "presence", "user": "bob", "status": "online"}

        await bob.close()
        assert await alice.recv() == {"type": "presence", "user": "bob", "status": "offline"}
        assert await carol.recv() == {"type": "presence", "user": "bob", "status": "offline"}
        assert server.presence() == {"alice": "online", "carol": "online"}
        await alice.close()
        await carol.close()

    run(scenario())


def test_welcome_carries_presence_snapshot(server: Server) -> None:
    async def scenario() -> None:
        alice = await Peer.join(server, "alice")
        await alice.send(type="status", status="busy")
        assert await _settled(server, {"alice": "busy"})
        client = SignalingClient()
        welcome = await client.connect(server.ws, "bob", make_token(SECRET, "bob"))
        assert welcome == {"type": "welcome", "user": "bob", "presence": {"alice": "busy", "bob": "online"}}
        await client.close()
        await alice.close()

    run(scenario())


# --- forwarding ------------------------------------------------------------------------------------------


def test_forwarding_sets_sender_and_strips_target(server: Server) -> None:
    async def scenario() -> None:
        alice, bob = await Peer.join(server, "alice"), await Peer.join(server, "bob")
        await alice.recv()
        sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n"
        await alice.send(type="offer", target="bob", sdp=sdp, sender="mallory", extra={"n": 1})
        assert await bob.recv() == {"type": "offer", "sdp": sdp, "sender": "alice", "extra": {"n": 1}}
        await bob.send(type="answer", target="alice", sdp="v=0 answer")
        assert await alice.recv() == {"type": "answer", "sdp": "v=0 answer", "sender": "bob"}

        cand = "candidate:1 1 udp 2122260223 10.1.0.2 41000 typ host"
        await alice.send(type="candidate", target="bob", candidate=cand, sdpMid="0", sdpMLineIndex=0)
        got = await bob.recv()
        assert got == {
            "type": "candidate",
            "candidate": cand,
            "sdpMid": "0",
            "sdpMLineIndex": 0,
            "sender": "alice",
        }
        await alice.send(type="candidate", target="bob", candidate=None)  # end of candidates
        assert await bob.recv() == {"type": "candidate", "candidate": None, "sender": "alice"}
        await alice.send(type="candidate", target="bob", candidate="", sdpMid=None, sdpMLineIndex=None)
        assert (await bob.recv())["candidate"] == ""
        await bob.send(type="bye", target="alice")
        assert await alice.recv() == {"type": "bye", "sender": "bob"}
        await alice.close()
        await bob.close()

    run(scenario())


# --- errors ----------------------------------------------------------------------------------------------

BAD_MESSAGES = {
    "not json": "{not json",
    "not an object": "[1, 2]",
    "a bare string": '"offer"',
    "NaN": '{"type": "offer", "target": "peer", "sdp": NaN}',
    "no type": json.dumps({"target": "peer", "sdp": "x"}),
    "unknown type": json.dumps({"type": "hello", "target": "peer"}),
    "type not a string": json.dumps({"type": 3, "target": "peer"}),
    "missing target": json.dumps({"type": "offer", "sdp": "x"}),
    "empty target": json.dumps({"type": "bye", "target": ""}),
    "target not a string": json.dumps({"type": "bye", "target": ["peer"]}),
    "offer without sdp": json.dumps({"type": "offer", "target": "peer"}),
    "answer sdp not a string": json.dumps({"type": "answer", "target": "peer", "sdp": {"sdp": "x"}}),
    "candidate missing": json.dumps({"type": "candidate", "target": "peer", "sdpMid": "0"}),
    "candidate not a string": json.dumps(
        {"type": "candidate", "target": "peer", "candidate": 5, "sdpMid": "0"}
    ),
    "sdpMid not a string": json.dumps({"type": "candidate", "target": "peer", "candidate": "c", "sdpMid": 0}),
    "index a string": json.dumps(
        {"type": "candidate", "target": "peer", "candidate": "c", "sdpMLineIndex": "0"}
    ),
    "index a bool": json.dumps(
        {"type": "candidate", "target": "peer", "candidate": "c", "sdpMLineIndex": True}
    ),
    "index negative": json.dumps(
        {"type": "candidate", "target": "peer", "candidate": "c", "sdpMLineIndex": -1}
    ),
    "candidate without media": json.dumps({"type": "candidate", "target": "peer", "candidate": "c"}),
    "bad status": json.dumps({"type": "status", "status": "away"}),
    "status missing": json.dumps({"type": "status"}),
}


@pytest.mark.parametrize("frame", BAD_MESSAGES.values(), ids=BAD_MESSAGES.keys())
def test_bad_message_then_still_usable(server: Server, frame: str) -> None:
    async def scenario() -> None:
        sender, peer = await Peer.join(server, "sender"), await Peer.join(server, "peer")
        await sender.recv()
        await sender.ws.send(frame)
        error = await sender.recv()
        assert error["type"] == "error" and error["code"] == "bad-message"
        assert set(error) == {"type", "code", "message"} and error["message"]
        await peer.sentinel_from(sender, "nothing-forwarded")  # also proves the sender still works
        assert server.presence() == {"sender": "online", "peer": "online"}
        await sender.close()
        await peer.close()

    run(scenario())


def test_binary_frame_is_bad_message(server: Server) -> None:
    async def scenario() -> None:
        alice = await Peer.join(server, "alice")
        await alice.ws.send(json.dumps(offer_to("alice")).encode())
        assert (await alice.recv())["code"] == "bad-message"
        await alice.close()

    run(scenario())


def test_user_offline(server: Server) -> None:
    async def scenario() -> None:
        alice = await Peer.join(server, "alice")
        await alice.send(**offer_to("nobody"))
        error = await alice.recv()
        assert error["type"] == "error" and error["code"] == "user-offline" and "nobody" in error["message"]
        bob = await Peer.join(server, "bob")
        assert (await alice.recv())["user"] == "bob"
        await alice.send(**offer_to("bob", "still usable"))
        assert (await bob.recv())["sdp"] == "still usable"
        await alice.close()
        await bob.close()

    run(scenario())


def test_too_large_frame_rejected_but_limit_itself_allowed(server: Server) -> None:
    async def scenario() -> None:
        alice, bob = await Peer.join(server, "alice"), await Peer.join(server, "bob")
        await alice.recv()
        skeleton = json.dumps(offer_to("bob", ""))
        fits = json.dumps(offer_to("bob", "x" * (MAX_FRAME - len(skeleton))))
        assert len(fits.encode()) == MAX_FRAME
        await alice.ws.send(fits)
        assert len((await bob.recv())["sdp"]) == MAX_FRAME - len(skeleton)
        # One byte over, counted in UTF-8 bytes: multi-byte characters count by their encoding.
        over = json.dumps(offer_to("bob", "é" * ((MAX_FRAME - len(skeleton)) // 2 + 1)), ensure_ascii=False)
        assert len(over) <= MAX_FRAME < len(over.encode())
        await alice.ws.send(over)
        error = await alice.recv()
        assert error["code"] == "too-large"
        await alice.ws.send("y" * (MAX_FRAME * 4))  # way over, still not fatal
        assert (await alice.recv())["code"] == "too-large"
        await bob.sentinel_from(alice, "after-too-large")
        await alice.close()
        await bob.close()

    run(scenario())


def test_rate_limited_then_still_usable(strict: Server) -> None:
    async def scenario() -> None:
        alice, bob = await Peer.join(strict, "alice"), await Peer.join(strict, "bob")
        await alice.recv()
        for i in range(7):  # burst is 5
            await alice.send(**offer_to("nobody", f"#{i}"))
        codes = [(await alice.recv())["code"] for _ in range(7)]
        assert codes == ["user-offline"] * 5 + ["rate-limited"] * 2
        # Rate limits are per connection: bob is unaffected, and alice still receives.
        await bob.send(**offer_to("alice", "still here"))
        assert await alice.recv() == {"type": "offer", "sdp": "still here", "sender": "bob"}
        assert strict.presence() == {"alice": "online", "bob": "online"}
        await alice.close()
        await bob.close()

    run(scenario())


def test_sustained_abuse_closes_with_reason(strict: Server) -> None:
    async def scenario() -> None:
        watcher, abuser = await Peer.join(strict, "watcher"), await Peer.join(strict, "abuser")
        await watcher.recv()
        with contextlib.suppress(ConnectionClosed):  # the server may hang up before all 20 are sent
            for _ in range(20):
                await abuser.ws.send("garbage")
        errors = []
        with pytest.raises(ConnectionClosed):
            while True:
                errors.append(await abuser.recv())
        # Burst of 5 tokens, then rate-limited; both count as strikes and the 8th closes the connection.
        assert [e["code"] for e in errors] == ["bad-message"] * 5 + ["rate-limited"] * 3
        assert abuser.ws.close_code == 1008 and "too many" in (abuser.ws.close_reason or "")
        assert await watcher.recv() == {"type": "presence", "user": "abuser", "status": "offline"}
        assert strict.presence() == {"watcher": "online"}
        await watcher.close()

    run(scenario())


# --- duplicate users -------------------------------------------------------------------------------------


def test_duplicate_user_replaces_first_connection(server: Server) -> None:
    async def scenario() -> None:
        alice1, bob = await Peer.join(server, "alice"), await Peer.join(server, "bob")
        await alice1.recv()
        await alice1.send(type="status", status="busy")
        assert await bob.recv() == {"type": "presence", "user": "alice", "status": "busy"}

        alice2 = await Peer.join(server, "alice")  # e.g. network changed, old socket half-dead
        with pytest.raises(ConnectionClosed):
            await alice1.recv()
        assert alice1.ws.close_code == 4000 and "replaced" in (alice1.ws.close_reason or "")
        # The new connection starts online: bob hears that, and never an "offline" for alice.
        assert await bob.recv() == {"type": "presence", "user": "alice", "status": "online"}
        await bob.sentinel_from(alice2, "no-offline-event")
        assert server.presence() == {"alice": "online", "bob": "online"}
        await bob.send(**offer_to("alice", "for the new one"))
        assert await alice2.recv() == {"type": "offer", "sdp": "for the new one", "sender": "bob"}

        alice3 = await Peer.join(server, "alice")  # same status: replacement is silent for others
        with pytest.raises(ConnectionClosed):
            await alice2.recv()
        await bob.sentinel_from(alice3, "silent-replacement")
        await alice3.close()
        assert await bob.recv() == {"type": "presence", "user": "alice", "status": "offline"}
        assert server.presence() == {"bob": "online"}
        await bob.close()

    run(scenario())


def test_client_library_reports_replacement(server: Server) -> None:
    async def scenario() -> None:
        first, second = SignalingClient(), SignalingClient()
        await first.connect(server.ws, "carol", make_token(SECRET, "carol"))
        await second.connect(server.ws, "carol", make_token(SECRET, "carol"))
        with pytest.raises(SignalingClosed) as closed:
            await first.recv(timeout=10)
        assert closed.value.code == 4000
        dave = await Peer.join(server, "dave")
        assert await second.recv(timeout=10) == {"type": "presence", "user": "dave", "status": "online"}
        await second.send({"type": "bye", "target": "dave"})
        assert await dave.recv() == {"type": "bye", "sender": "carol"}
        await second.close()
        await dave.close()

    run(scenario())


# --- disconnect races ------------------------------------------------------------------------------------


def test_sender_disconnects_right_after_sending(server: Server) -> None:
    async def scenario() -> None:
        bob = await Peer.join(server, "bob")
        for i in range(20):
            ghost = await Peer.join(server, f"ghost{i}")
            await ghost.send(**offer_to("bob", f"from ghost{i}"))
            ghost.ws.transport.abort()  # no close handshake: the socket just goes away after the frame
        seen: set[str] = set()
        while len(seen) < 20:
            msg = await bob.recv()
            if msg["type"] == "offer":
                assert msg["sdp"] == f"from {msg['sender']}"
                seen.add(msg["sender"])
        assert seen == {f"ghost{i}" for i in range(20)}
        await bob.close()
        assert await _settled(server, {})

    run(scenario())


async def _skip_offline_errors(peer: Peer) -> dict[str, Any]:
    while (msg := await peer.recv())["type"] == "error":
        assert msg["code"] == "user-offline"
    return msg


async def _settled(server: Server, expected: dict[str, str]) -> bool:
    """Presence converges to `expected` (disconnects are processed asynchronously by the server)."""
    for _ in range(200):
        if server.presence() == expected:
            return True
        await asyncio.sleep(0.05)
    return False


def test_target_disconnects_mid_flood(server: Server) -> None:
    async def scenario() -> None:
        sender = await Peer.join(server, "sender")
        for round_ in range(5):
            target = await Peer.join(server, "target")
            assert await _skip_offline_errors(sender) == {
                "type": "presence",
                "user": "target",
                "status": "online",
            }

            async def flood() -> None:
                for i in range(300):
                    await sender.send(type="candidate", target="target", candidate=f"c{i}", sdpMid="0")

            flooding = asyncio.create_task(flood())
            await target.recv()
            if round_ % 2:
                target.ws.transport.abort()
            else:
                await target.close()
            await flooding
            # Forwards succeed until the target is gone, then the sender only gets user-offline errors.
            assert await _skip_offline_errors(sender) == {
                "type": "presence",
                "user": "target",
                "status": "offline",
            }
        assert server.presence() == {"sender": "online"}
        last = await Peer.join(server, "last")
        assert await _skip_offline_errors(sender) == {"type": "presence", "user": "last", "status": "online"}
        await sender.send(**offer_to("last", "alive"))
        assert (await last.recv())["sdp"] == "alive"
        await sender.close()
        await last.close()
        assert httpx.get(f"{server.http}/healthz").status_code == 200

    run(scenario())


def test_churn_while_forwarding(server: Server) -> None:
    """Clients come and go (some replaced, some aborted) while others send to them: no leaked entries."""

    async def churn(i: int) -> None:
        for j in range(5):
            peer = await Peer.join(server, f"churn{i % 10}")  # pairs of tasks fight over each user id
            with contextlib.suppress(ConnectionClosed):  # replaced by the twin task meanwhile
                await peer.send(**offer_to(f"churn{(i + 1) % 10}", f"{i}.{j}"))
            if j % 2:
                peer.ws.transport.abort()
            else:
                await peer.close()

    async def scenario() -> None:
        await asyncio.gather(*(churn(i) for i in range(20)))
        assert await _settled(server, {})
        survivor, other = await Peer.join(server, "churn0"), await Peer.join(server, "churn1")
        await other.send(**offer_to("churn0", "ok"))
        assert await survivor.recv() == {"type": "presence", "user": "churn1", "status": "online"}
        assert (await survivor.recv())["sdp"] == "ok"
        await survivor.close()
        await other.close()

    run(scenario())


def test_client_that_stops_reading_is_dropped(server: Server) -> None:
    async def scenario() -> None:
        sender = await Peer.join(server, "sender")
        # Reads nothing after the handshake; max_queue=1 makes its library stop reading the socket too.
        stuck = await connect(
            f"{server.ws}/ws/stuck?token={make_token(SECRET, 'stuck')}", proxy=None, max_queue=1
        )
        OPEN.append(stuck)
        assert (await sender.recv())["user"] == "stuck"
        gone = asyncio.Event()

        async def watch() -> None:
            while (msg := await sender.recv())["type"] == "error":
                assert msg["code"] == "user-offline"
            assert msg == {"type": "presence", "user": "stuck", "status": "offline"}
            gone.set()

        watcher = asyncio.create_task(watch())
        big = "x" * 60_000
        for _ in range(2_000):  # ~4 MiB backlog plus socket buffers; stop as soon as the server gives up
            if gone.is_set():
                break
            await sender.send(**offer_to("stuck", big))
            await asyncio.sleep(0)
        await asyncio.wait_for(watcher, 10)
        assert server.presence() == {"sender": "online"}
        stuck.transport.abort()
        await sender.close()

    run(scenario())


# --- scale -----------------------------------------------------------------------------------------------

N_CLIENTS = 200
PER_LINK = 5
OFFSETS = (1, 7, 100)  # every client sends to three others and hears from three


def test_200_clients_no_message_lost_or_misrouted(server: Server) -> None:
    async def client(i: int, everybody_in: asyncio.Event, joined: list[int]) -> set[tuple[str, int]]:
        me = await Peer.join(server, f"u{i:03d}")
        joined.append(i)
        if len(joined) == N_CLIENTS:
            everybody_in.set()
        await everybody_in.wait()
        for k in range(PER_LINK):
            for off in OFFSETS:
                target = f"u{(i + off) % N_CLIENTS:03d}"
                await me.send(type="candidate", target=target, candidate=f"{i}>{target}#{k}", sdpMid="0")
        for off in OFFSETS:
            await me.send(type="bye", target=f"u{(i + off) % N_CLIENTS:03d}")
        got: set[tuple[str, int]] = set()
        byes = 0
        while byes < len(OFFSETS):  # FIFO per sender: each sender's bye comes after all its candidates
            msg = await me.recv()
            if msg["type"] == "candidate":
                src, rest = msg["candidate"].split(">")
                to, k = rest.split("#")
                assert to == me.user and msg["sender"] == f"u{int(src):03d}"
                assert (msg["sender"], int(k)) not in got
                got.add((msg["sender"], int(k)))
            elif msg["type"] == "bye":
                byes += 1
            else:
                assert msg["type"] == "presence", msg
        expected = {(f"u{(i - off) % N_CLIENTS:03d}", k) for off in OFFSETS for k in range(PER_LINK)}
        assert got == expected
        await me.close()
        return got

    async def scenario() -> None:
        everybody_in = asyncio.Event()
        joined: list[int] = []
        results = await asyncio.gather(*(client(i, everybody_in, joined) for i in range(N_CLIENTS)))
        assert sum(len(r) for r in results) == N_CLIENTS * len(OFFSETS) * PER_LINK
        assert await _settled(server, {})

    run(scenario())


# --- command line and standalone server ------------------------------------------------------------------


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "NETSIM_SIGNALING_SECRET": ""}


def test_cli_token_matches_make_token() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "netsim", "token", "--secret", "cli-secret", "dave"],
        capture_output=True, text=True, env=_env(), check=True, timeout=20,
    )  # fmt: skip
    assert out.stdout.strip() == make_token("cli-secret", "dave")
    missing = subprocess.run(
        [sys.executable, "-m", "netsim", "token", "dave"],
        capture_output=True,
        text=True,
        env=_env(),
    )
    assert missing.returncode == 2 and "secret" in missing.stderr


def test_standalone_server_process_keeps_tokens_out_of_logs() -> None:
    cmd = [sys.executable, "-m", "netsim", "signaling", "--host", "127.0.0.1", "--port", "0"]
    proc = subprocess.Popen(
        [*cmd, "--secret", "proc-secret", "--log-level", "info"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("signaling: listening on ws://127.0.0.1:"), line
        base = line.split()[3].split("/ws/")[0]
        token = make_token("proc-secret", "erin")

        async def scenario() -> None:
            erin, fred = SignalingClient(), SignalingClient()
            await erin.connect(base, "erin", token)
            await fred.connect(base, "fred", make_token("proc-secret", "fred"))
            await erin.send({"type": "offer", "target": "fred", "sdp": "hi"})
            assert await fred.recv(timeout=10) == {"type": "offer", "sdp": "hi", "sender": "erin"}
            await erin.close()
            await fred.close()

        run(scenario())
        health = httpx.get(base.replace("ws://", "http://") + "/healthz")
        assert health.json()["status"] == "ok"
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=20)
    assert proc.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a clean shutdown
    assert "/ws/erin" in stderr and "token=***" in stderr and token not in stderr


def test_a_static_directory_is_served_over_http(tmp_path: Path) -> None:
    """The lab serves the browser peers' page this way (any browser, no DevTools routing): files over
    plain HTTP at /app/, JavaScript as JavaScript (ES modules need it), nothing outside the directory."""
    (tmp_path / "page.html").write_text("<!doctype html><p>hi</p>")
    (tmp_path / "mod.js").write_text("export const x = 1;\n")
    (tmp_path.parent / "secret.txt").write_text("not served")
    app = create_app(SECRET)
    serve_static(app, tmp_path)
    serve_static(app, tmp_path)  # once is enough: a second call changes nothing
    with serve(app) as srv:
        page = httpx.get(f"{srv.http}/app/page.html", timeout=10)
        assert page.status_code == 200 and page.text == "<!doctype html><p>hi</p>"
        assert page.headers["content-type"].startswith("text/html")
        js = httpx.get(f"{srv.http}/app/mod.js", timeout=10)
        assert js.status_code == 200 and "javascript" in js.headers["content-type"]
        assert httpx.get(f"{srv.http}/app/missing.js", timeout=10).status_code == 404
        assert httpx.get(f"{srv.http}/app/%2e%2e/secret.txt", timeout=10).status_code == 404
        assert httpx.get(f"{srv.http}/healthz", timeout=10).json()["status"] == "ok"  # the rest is unchanged
