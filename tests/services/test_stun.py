"""STUN binding client: a scripted socket, and a real exchange inside a throwaway namespace."""

from __future__ import annotations

import os
import secrets
import subprocess
import threading
import time

import pytest
from aioice import stun as aioice_stun

from netsim.lab import netns
from netsim.services import stun

SERVER = ("198.18.0.2", 3478)


def response(request: bytes, mapped: tuple[str, int], *, tid: bytes | None = None) -> bytes:
    parsed = aioice_stun.parse_message(request)
    reply = aioice_stun.Message(
        message_method=aioice_stun.Method.BINDING,
        message_class=aioice_stun.Class.RESPONSE,
        transaction_id=tid or parsed.transaction_id,
    )
    reply.attributes["XOR-MAPPED-ADDRESS"] = mapped
    return bytes(reply)


class ScriptedSocket:
    """Answers the n-th request with what `script(n, request)` returns: (data, sender) pairs to deliver."""

    def __init__(self, script: object) -> None:
        self.script = script
        self.sent: list[tuple[bytes, tuple[str, int]]] = []
        self.inbox: list[tuple[bytes, tuple[str, int]]] = []
        self.timeout: float | None = 5.0

    def sendto(self, data: bytes, address: tuple[str, int]) -> int:
        self.sent.append((data, address))
        self.inbox.extend(self.script(len(self.sent), data))  # type: ignore[operator]
        return len(data)

    def recvfrom(self, size: int) -> tuple[bytes, tuple[str, int]]:
        if self.inbox:
            return self.inbox.pop(0)
        time.sleep(self.timeout or 0)
        raise TimeoutError

    def settimeout(self, value: float | None) -> None:
        self.timeout = value

    def gettimeout(self) -> float | None:
        return self.timeout


def test_request_is_a_binding_request_with_a_fresh_transaction_id() -> None:
    first, second = stun.request(), stun.request()
    parsed = aioice_stun.parse_message(bytes(first))
    assert parsed.message_method == aioice_stun.Method.BINDING
    assert parsed.message_class == aioice_stun.Class.REQUEST
    assert len(first.transaction_id) == 12 and first.transaction_id != second.transaction_id


def test_binding_returns_the_xor_mapped_address() -> None:
    sock = ScriptedSocket(lambda n, req: [(response(req, ("198.18.1.1", 40123)), SERVER)])
    assert stun.binding(sock, SERVER, 1.0) == ("198.18.1.1", 40123)  # type: ignore[arg-type]
    assert sock.sent[0][1] == SERVER
    assert sock.timeout == 5.0  # restored


def test_binding_retransmits_until_answered() -> None:
    sock = ScriptedSocket(lambda n, req: [] if n < 3 else [(response(req, ("198.18.1.1", 5)), SERVER)])
    assert stun.binding(sock, SERVER, 2.0) == ("198.18.1.1", 5)  # type: ignore[arg-type]
    assert len(sock.sent) == 3
    assert len({aioice_stun.parse_message(d).transaction_id for d, _ in sock.sent}) == 1  # one transaction


def test_binding_skips_strangers_and_stale_answers() -> None:
    def script(n: int, req: bytes) -> list[tuple[bytes, tuple[str, int]]]:
        return [
            (response(req, ("6.6.6.6", 6)), ("198.18.0.9", 3478)),  # right transaction, wrong sender
            (response(req, ("7.7.7.7", 7), tid=secrets.token_bytes(12)), SERVER),  # another transaction
            (b"not stun at all", SERVER),
            (response(req, ("198.18.1.1", 9)), SERVER),
        ]

    assert stun.binding(ScriptedSocket(script), SERVER, 1.0) == ("198.18.1.1", 9)  # type: ignore[arg-type]


def test_binding_gives_none_on_timeout_and_keeps_to_it() -> None:
    sock = ScriptedSocket(lambda n, req: [])
    start = time.monotonic()
    assert stun.binding(sock, SERVER, 0.5) is None  # type: ignore[arg-type]
    assert 0.45 <= time.monotonic() - start < 0.9
    assert len(sock.sent) >= 3  # 100, 200, 400 ms: retransmitted within the timeout


def test_mapped_address_ignores_requests_and_errors() -> None:
    req = stun.request()
    assert stun.mapped_address(bytes(req), req.transaction_id) is None
    error = aioice_stun.Message(
        aioice_stun.Method.BINDING, aioice_stun.Class.ERROR, transaction_id=req.transaction_id
    )
    assert stun.mapped_address(bytes(error), req.transaction_id) is None


@pytest.mark.root
def test_binding_over_a_real_socket_in_a_namespace(scratch_netns: str) -> None:
    """A tiny responder on the namespace's own loopback: nothing leaves the namespace."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    subprocess.run(["ip", "-n", scratch_netns, "link", "set", "lo", "up"], check=True)
    server = netns.socket_in(scratch_netns)
    client = netns.socket_in(scratch_netns)
    with server, client:
        server.bind(("127.0.0.1", 0))
        client.bind(("127.0.0.1", 0))
        server.settimeout(2.0)

        def answer() -> None:
            data, sender = server.recvfrom(2048)
            server.sendto(response(data, sender), sender)

        thread = threading.Thread(target=answer)
        thread.start()
        got = stun.binding(client, server.getsockname(), 2.0)
        thread.join()
        assert got == client.getsockname()
