"""Waiting for a process a lab started to be ready: a line on its output, or an HTTP answer from inside a
namespace."""

from __future__ import annotations

import os
import select
import socket
import time
from typing import Any

from netsim.lab import netns


def read_line_until(stream: Any, marker: bytes, timeout_s: float) -> bool:
    """Read a pipe until a line holds `marker` (True) or the timeout or EOF (False)."""
    deadline = time.monotonic() + timeout_s
    buffer = b""
    while time.monotonic() < deadline:
        readable, _, _ = select.select([stream], [], [], max(0.0, deadline - time.monotonic()))
        if not readable:
            return False
        chunk = os.read(stream.fileno(), 4096)
        if not chunk:
            return False
        buffer += chunk
        if marker in buffer:
            return True
    return False


def http_ok(ns: str, ip: str, port: int, path: str) -> bool:
    try:
        sock = netns.socket_in(ns, socket.AF_INET, socket.SOCK_STREAM)
    except OSError:
        return False
    with sock:
        sock.settimeout(0.5)
        try:
            sock.connect((ip, port))
            sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {ip}\r\n\r\n".encode())
            return sock.recv(64).startswith(b"HTTP/1.1 200")
        except OSError:
            return False
