"""Tiny blocking STUN/TURN clients: a binding client (RFC 5389) for readiness checks and NAT probes, and a
TURN client (RFC 8656, RFC 6062 Connect) for probing what a relay allows; messages are aioice.stun's."""

from __future__ import annotations

import hashlib
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from aioice import stun

# Retransmit like RFC 5389 (RTO doubling from 100 ms here: lab links are fast), within the caller's timeout.
FIRST_RTO_S = 0.1
MAX_RTO_S = 1.6


def request(transaction_id: bytes | None = None) -> stun.Message:
    return stun.Message(
        message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST, transaction_id=transaction_id
    )


def mapped_address(data: bytes, transaction_id: bytes) -> tuple[str, int] | None:
    """The XOR-MAPPED-ADDRESS (or MAPPED-ADDRESS) of a success response to `transaction_id`, else None."""
    try:
        message = stun.parse_message(data)
    except ValueError:
        return None
    if message.transaction_id != transaction_id or message.message_method != stun.Method.BINDING:
        return None
    if message.message_class != stun.Class.RESPONSE:
        return None
    address = message.attributes.get("XOR-MAPPED-ADDRESS") or message.attributes.get("MAPPED-ADDRESS")
    if address is None:
        return None
    host, port = address
    return str(host), int(port)


def binding(sock: socket.socket, server: tuple[str, int], timeout: float) -> tuple[str, int] | None:
    """Send a binding request from `sock` to `server`; the server-reflexive address, or None on timeout.

    Datagrams that are not the answer (other senders, stale transactions) are skipped. The socket's own
    timeout is restored afterwards.
    """
    message = request()
    data = bytes(message)
    saved = sock.gettimeout()
    deadline = time.monotonic() + timeout
    rto = FIRST_RTO_S
    try:
        while (now := time.monotonic()) < deadline:
            sock.sendto(data, server)
            resend_at = min(now + rto, deadline)
            rto = min(rto * 2, MAX_RTO_S)
            while (left := resend_at - time.monotonic()) > 0:
                sock.settimeout(left)
                try:
                    reply, sender = sock.recvfrom(2048)
                except TimeoutError:
                    break
                except ConnectionRefusedError:
                    continue  # an ICMP error for an earlier datagram; keep waiting for the answer
                if sender[:2] != server:
                    continue
                found = mapped_address(reply, message.transaction_id)
                if found is not None:
                    return found
        return None
    finally:
        sock.settimeout(saved)


# ---- a blocking TURN client (RFC 8656, RFC 6062) for probes and tests ------------------------------------

CONNECT_METHOD = 0x000A  # RFC 6062 Connect: aioice.stun has no name for it
UDP_TRANSPORT = 17 << 24  # REQUESTED-TRANSPORT values
TCP_TRANSPORT = 6 << 24


@dataclass(frozen=True)
class TurnReply:
    """A TURN transaction's outcome: `code` None for a success response, else the STUN error code."""

    code: int | None
    reason: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.code is None


class TurnClient:
    """One TURN session over `sock`: UDP datagrams to `server`, or a TCP/TLS stream already connected to it.

    Long-term credentials as coturn wants them: the first request goes without, the 401 gives realm and
    nonce, and the request is repeated signed with MESSAGE-INTEGRITY (not at all without a username).
    """

    def __init__(
        self,
        sock: socket.socket,
        server: tuple[str, int],
        username: str | None = None,
        password: str | None = None,
        timeout: float = 2.0,
    ) -> None:
        self.sock, self.server, self.timeout = sock, server, timeout
        self.username, self.password = username, password
        self.stream = sock.type == socket.SOCK_STREAM
        self.realm: str | None = None
        self.nonce: bytes | None = None
        self.relayed: tuple[str, int] | None = None  # the allocation's relayed address, once allocated
        self._buffer = b""

    def allocate(self, transport: int = UDP_TRANSPORT) -> TurnReply:
        reply = self.request(stun.Method.ALLOCATE, {"REQUESTED-TRANSPORT": transport, "LIFETIME": 600})
        if reply.ok:
            self.relayed = reply.attributes.get("XOR-RELAYED-ADDRESS")
        return reply

    def release(self) -> None:
        """Delete the allocation (Refresh with lifetime 0), so it does not hold a port and quota until it
        expires; errors are ignored (the server may have dropped it already)."""
        if self.relayed is not None:
            self.relayed = None
            try:
                self.request(stun.Method.REFRESH, {"LIFETIME": 0})
            except (OSError, ValueError):
                pass

    def create_permission(self, peer_ip: str) -> TurnReply:
        return self.request(stun.Method.CREATE_PERMISSION, {"XOR-PEER-ADDRESS": (peer_ip, 0)})

    def channel_bind(self, peer: tuple[str, int], channel: int = 0x4000) -> TurnReply:
        return self.request(stun.Method.CHANNEL_BIND, {"CHANNEL-NUMBER": channel, "XOR-PEER-ADDRESS": peer})

    def connect(self, peer: tuple[str, int]) -> TurnReply:
        """RFC 6062 Connect on a TCP allocation: coturn opens a TCP connection to `peer` (or refuses)."""
        return self.request(CONNECT_METHOD, {"XOR-PEER-ADDRESS": peer})

    def send(self, peer: tuple[str, int], data: bytes) -> None:
        """A Send indication (no answer: a refused peer's data is just dropped)."""
        message = stun.Message(stun.Method.SEND, stun.Class.INDICATION)
        message.attributes.update({"XOR-PEER-ADDRESS": peer, "DATA": data})
        self._sendmsg(bytes(message))

    def receive(self, timeout: float) -> tuple[tuple[str, int], bytes] | None:
        """The next Data indication as (peer, data) within `timeout`, or None."""
        until = time.monotonic() + timeout
        while (message := self._receive(until)) is not None:
            if "DATA" in message[1].attributes:
                return message[1].attributes["XOR-PEER-ADDRESS"], message[1].attributes["DATA"]
        return None

    def request(self, method: int, attributes: dict[str, Any]) -> TurnReply:
        """Send a request (signed once realm and nonce are known), answering 401/438 challenges once each."""
        reply = self._transact(method, attributes)
        for _ in range(2):
            if reply.code not in (401, 438) or self.username is None or self.password is None:
                break
            if "NONCE" not in reply.attributes:
                break
            if reply.code == 401 and self.nonce is not None and self.realm == reply.attributes.get("REALM"):
                break  # already signed with this realm: the credentials themselves were refused
            self.realm, self.nonce = reply.attributes.get("REALM", self.realm), reply.attributes["NONCE"]
            reply = self._transact(method, attributes)
        return reply

    def _transact(self, method: int, attributes: dict[str, Any]) -> TurnReply:
        message = stun.Message(method, stun.Class.REQUEST)  # type: ignore[arg-type]  # Connect has no enum name
        message.attributes.update(attributes)
        if self.username is not None and self.password is not None and self.nonce is not None:
            assert self.realm is not None
            message.attributes.update(USERNAME=self.username, REALM=self.realm, NONCE=self.nonce)
            key = hashlib.md5(f"{self.username}:{self.realm}:{self.password}".encode()).digest()
            message.add_message_integrity(key)
        else:
            message.add_fingerprint()
        data = bytes(message)
        deadline = time.monotonic() + self.timeout
        rto = FIRST_RTO_S
        while (now := time.monotonic()) < deadline:
            self._sendmsg(data)
            resend_at = deadline if self.stream else min(now + rto, deadline)
            rto = min(rto * 2, MAX_RTO_S)
            while (reply := self._receive(resend_at)) is not None:
                if reply[0] == message.transaction_id:
                    return reply[1]
        raise TimeoutError(f"no TURN answer from {self.server[0]}:{self.server[1]} within {self.timeout} s")

    def _sendmsg(self, data: bytes) -> None:
        if self.stream:
            self.sock.sendall(data)
        else:
            self.sock.sendto(data, self.server)

    def _receive(self, until: float) -> tuple[bytes, TurnReply] | None:
        """The next STUN message (transaction id, outcome) before `until`, or None on timeout."""
        saved = self.sock.gettimeout()
        try:
            while (left := until - time.monotonic()) > 0:
                self.sock.settimeout(left)
                try:
                    data = self._read_stream() if self.stream else self.sock.recv(4096)
                except TimeoutError:
                    return None
                if data is not None and len(data) >= 20 and data[0] < 0x40:  # not ChannelData
                    return data[8:20], parse_reply(data)
            return None
        finally:
            self.sock.settimeout(saved)

    def _read_stream(self) -> bytes | None:
        """One STUN message from the stream (RFC 6062: control connections carry only STUN)."""
        while len(self._buffer) < 20 or len(self._buffer) < 20 + int.from_bytes(self._buffer[2:4], "big"):
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError(f"TURN server {self.server[0]}:{self.server[1]} closed the connection")
            self._buffer += chunk
        size = 20 + int.from_bytes(self._buffer[2:4], "big")
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


def parse_reply(data: bytes) -> TurnReply:
    """A response's outcome; Connect responses are read here (aioice.stun refuses unnamed methods)."""
    message_type = int.from_bytes(data[0:2], "big")
    if message_type & 0x3EEF == CONNECT_METHOD:
        return _parse_connect_reply(data, message_type)
    message = stun.parse_message(data)
    if message.message_class == stun.Class.ERROR:
        code, reason = message.attributes.get("ERROR-CODE", (0, ""))
        return TurnReply(code, reason, message.attributes)
    return TurnReply(None, "", message.attributes)


def _parse_connect_reply(data: bytes, message_type: int) -> TurnReply:
    attributes: dict[str, Any] = {}
    pos = 20
    while pos + 4 <= len(data):
        kind, length = (
            int.from_bytes(data[pos : pos + 2], "big"),
            int.from_bytes(data[pos + 2 : pos + 4], "big"),
        )
        value = data[pos + 4 : pos + 4 + length]
        if kind == 0x0009:  # ERROR-CODE
            attributes["ERROR-CODE"] = stun.unpack_error_code(value)
        elif kind == 0x002A:  # CONNECTION-ID
            attributes["CONNECTION-ID"] = int.from_bytes(value, "big")
        pos += 4 + length + (-length % 4)
    if message_type & 0x0110 == stun.Class.ERROR:
        code, reason = attributes.get("ERROR-CODE", (0, ""))
        return TurnReply(code, reason, attributes)
    return TurnReply(None, "", attributes)
