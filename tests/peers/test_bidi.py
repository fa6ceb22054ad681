"""The WebDriver BiDi client against a scripted BiDi server on loopback (no root, no browser), and its
socket made inside a namespace (root). A real Firefox is driven in tests/peers/test_firefox.py."""

from __future__ import annotations

import asyncio
import json
import math
import os
import socket
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from netsim.lab import netns
from netsim.peers.bidi import BidiError, BidiSession, connect_socket, deserialize, one_line

Reply = Callable[[dict[str, Any]], Any]  # a command -> a reply, a list of replies, None (none) or "drop"


def success(result: dict[str, Any]) -> Reply:
    return lambda cmd: {"type": "success", "id": cmd["id"], "result": result}


def number(value: Any) -> dict[str, Any]:
    return {"type": "number", "value": value}


BASE_SCRIPT: dict[str, Reply] = {
    "session.new": success({"sessionId": "s1", "capabilities": {"browserVersion": "153.8.0"}}),
    "browsingContext.getTree": success({"contexts": [{"context": "ctx-1", "url": "about:blank"}]}),
}


@asynccontextmanager
async def bidi_server(script: dict[str, Reply], seen: list[dict[str, Any]]) -> AsyncIterator[str]:
    """A BiDi agent on 127.0.0.1 that answers per `script` and records every command it got."""
    from websockets.asyncio.server import serve

    async def handler(ws: Any) -> None:
        assert ws.request.path == "/session"
        async for raw in ws:
            cmd = json.loads(raw)
            seen.append(cmd)
            reply = {**BASE_SCRIPT, **script}.get(cmd["method"])
            if reply is None:
                out: Any = {"type": "error", "id": cmd["id"], "error": "unknown command", "message": "x\ny"}
            else:
                out = reply(cmd)
            if out == "drop":
                await ws.close()
                return
            for one in out if isinstance(out, list) else [out] if out is not None else []:
                # An event first: the client must skip it.
                await ws.send(json.dumps({"type": "event", "method": "log.entryAdded", "params": {}}))
                await ws.send(json.dumps(one))

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_session_context_navigate_and_evaluate() -> None:
    seen: list[dict[str, Any]] = []
    value = {
        "type": "object",
        "value": [
            ["record", {"type": "string", "value": '{"state": "connected"}'}],
            ["n", number(3)],
            ["xs", {"type": "array", "value": [{"type": "null"}, {"type": "boolean", "value": True}]}],
        ],
    }
    script = {
        "browsingContext.navigate": success({"navigation": "n1", "url": "http://x/app/peer.html"}),
        "script.evaluate": success({"type": "success", "realm": "r", "result": value}),
        "browser.close": success({}),
    }

    async def main() -> Any:
        async with bidi_server(script, seen) as url:
            session = await BidiSession.connect(url)
            assert session.capabilities["browserVersion"] == "153.8.0"
            ctx = await session.top_context()
            await session.navigate(ctx, "http://x/app/peer.html")
            got = await session.evaluate(ctx, "window.go()")
            await session.close_browser()
            return ctx, got

    ctx, got = run(main())
    assert ctx == "ctx-1"
    assert got == {"record": '{"state": "connected"}', "n": 3, "xs": [None, True]}
    methods = [c["method"] for c in seen]
    assert methods == [
        "session.new",
        "browsingContext.getTree",
        "browsingContext.navigate",
        "script.evaluate",
        "browser.close",
    ]
    assert seen[2]["params"] == {"context": "ctx-1", "url": "http://x/app/peer.html", "wait": "complete"}
    assert seen[3]["params"] == {
        "expression": "window.go()",
        "target": {"context": "ctx-1"},
        "awaitPromise": True,
    }
    assert len({c["id"] for c in seen}) == len(seen)


def test_error_reply_is_one_line_naming_the_command() -> None:
    async def main() -> None:
        async with bidi_server({}, []) as url:
            session = await BidiSession.connect(url)
            try:
                await session.command("bogus.cmd", {})
            finally:
                await session.close()

    with pytest.raises(BidiError) as info:
        run(main())
    assert str(info.value) == "bogus.cmd: unknown command: x"


def test_page_exception_is_a_bidi_error_with_the_pages_text() -> None:
    thrown = {
        "type": "exception",
        "realm": "r",
        "exceptionDetails": {"text": "Error: boom\n  at x", "lineNumber": 0},
    }

    async def main() -> None:
        async with bidi_server({"script.evaluate": success(thrown)}, []) as url:
            session = await BidiSession.connect(url)
            try:
                await session.evaluate("ctx-1", "boom()")
            finally:
                await session.close()

    with pytest.raises(BidiError, match=r"^script.evaluate: page threw: Error: boom$"):
        run(main())


def test_a_command_without_reply_times_out() -> None:
    async def main() -> None:
        async with bidi_server({"script.evaluate": lambda cmd: None}, []) as url:
            session = await BidiSession.connect(url)
            try:
                await session.evaluate("ctx-1", "hang()", timeout_s=0.2)
            finally:
                await session.close()

    with pytest.raises(BidiError, match=r"^script.evaluate: no reply within 0.2 s$"):
        run(main())


def test_browser_gone_mid_command_fails_pending_and_later_commands() -> None:
    async def main() -> tuple[str, str]:
        async with bidi_server({"script.evaluate": lambda cmd: "drop"}, []) as url:
            session = await BidiSession.connect(url)
            with pytest.raises(BidiError) as first:
                await session.evaluate("ctx-1", "window.netsimPeer(cfg)", timeout_s=None)
            with pytest.raises(BidiError) as later:
                await session.top_context()
            await session.close()
            return str(first.value), str(later.value)

    first, later = run(main())
    assert first.startswith("script.evaluate: connection")
    assert later.startswith("browsingContext.getTree: connection")


def test_replies_are_matched_by_id_out_of_order() -> None:
    held: list[dict[str, Any]] = []

    def reply(cmd: dict[str, Any], value: int) -> dict[str, Any]:
        return {"type": "success", "id": cmd["id"], "result": {"type": "success", "result": number(value)}}

    def fast_first(cmd: dict[str, Any]) -> Any:
        if cmd["params"]["expression"] == "slow":
            held.append(cmd)
            return None  # answered after the fast one
        return [reply(cmd, 2), *(reply(c, 1) for c in held)]

    async def main() -> list[Any]:
        async with bidi_server({"script.evaluate": fast_first}, []) as url:
            session = await BidiSession.connect(url)
            slow = asyncio.ensure_future(session.evaluate("ctx-1", "slow"))
            await asyncio.sleep(0.05)
            fast = await session.evaluate("ctx-1", "fast")
            out = [await slow, fast]
            await session.close()
            return out

    assert run(main()) == [1, 2]


def test_connect_refused_names_the_address() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there

    with pytest.raises(BidiError, match=rf"^connect to 127.0.0.1:{port}: .*refused"):
        run(BidiSession.connect(f"ws://127.0.0.1:{port}"))


def test_bad_url() -> None:
    with pytest.raises(BidiError, match=r"^BiDi URL: expected ws://host:port, got 'http://127.0.0.1:1'$"):
        run(BidiSession.connect("http://127.0.0.1:1"))


def test_deserialize_remote_values() -> None:
    assert math.isnan(deserialize(number("NaN")))
    assert deserialize(number("-Infinity")) == -math.inf
    assert deserialize({"type": "bigint", "value": "12345678901234567890"}) == 12345678901234567890
    assert deserialize({"type": "undefined"}) is None
    assert deserialize({"type": "map", "value": [[number(1), {"type": "string", "value": "a"}]]}) == {
        "1": "a"
    }
    assert deserialize({"type": "node", "sharedId": "x"}) == "<node>"


def test_one_line_cuts_traces() -> None:
    assert one_line("first\nsecond") == "first"
    assert one_line("x" * 400, limit=10) == "xxxxxxx..."


@pytest.mark.root
def test_socket_is_made_inside_the_namespace(scratch_netns: str) -> None:
    """The listener lives in the scratch namespace only: the connect reaches it from there, and the
    calling thread stays in its own namespace."""
    subprocess.run(["ip", "-n", scratch_netns, "link", "set", "lo", "up"], check=True)
    listener = netns.socket_in(scratch_netns, socket.AF_INET, socket.SOCK_STREAM)
    with listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        before = os.stat("/proc/thread-self/ns/net").st_ino
        sock = connect_socket(scratch_netns, "127.0.0.1", port, 2.0)
        with sock:
            conn, _ = listener.accept()
            conn.close()
            assert sock.getpeername() == ("127.0.0.1", port)
        assert os.stat("/proc/thread-self/ns/net").st_ino == before
