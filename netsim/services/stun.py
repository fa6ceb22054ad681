"""A tiny blocking STUN binding client (RFC 5389) for readiness checks and NAT probes."""

from __future__ import annotations

import socket
import time

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
