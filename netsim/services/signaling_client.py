"""Small asyncio client for the signaling server (protocol: docs/signaling.md).

    client = SignalingClient()
    welcome = await client.connect("ws://198.18.0.2:8765", "alice", make_token(secret, "alice"))
    await client.send({"type": "offer", "target": "bob", "sdp": pc.localDescription.sdp})
    msg = await client.recv()          # {"type": "answer", "sdp": ..., "sender": "bob"}, presence, error...
    await client.close()

Messages are plain dicts, exactly as on the wire; `recv` returns errors as messages
(`{"type": "error", ...}`) rather than raising, since the connection stays usable after one.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from types import TracebackType
from typing import Any
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

__all__ = ["ConnectionClosed", "SignalingClient", "SignalingClosed"]


class SignalingClosed(ConnectionError):
    """The server closed the connection (code and reason say why, e.g. 4000 = replaced)."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"signaling connection closed: {code} {reason}".strip())
        self.code = code
        self.reason = reason


class SignalingClient:
    """One authenticated signaling connection for one user."""

    def __init__(self) -> None:
        self._ws: ClientConnection | None = None
        self.user: str | None = None
        self.welcome: dict[str, Any] | None = None

    async def connect(
        self, url: str, user: str, token: str, timeout: float = 10.0, ca_file: str | None = None
    ) -> dict[str, Any]:
        """Connect to base `url` (ws://host:port, or wss://) as `user`; return the server's welcome message.

        For wss://, the server's certificate is verified (hostname or IP included) against `ca_file` (PEM:
        the lab certificate, which is its own CA), else against the system's trusted CAs.
        Raises websockets.exceptions.InvalidStatus (HTTP 403) for a bad user id or token, 503 when the
        server is at its connection limit; ssl.SSLCertVerificationError for an untrusted certificate.
        """
        endpoint = f"{url.rstrip('/')}/ws/{quote(user, safe='')}?token={quote(token, safe='')}"
        tls = ssl.create_default_context(cafile=ca_file) if url.startswith("wss:") else None
        # proxy=None: lab peers talk straight to the server, never through an environment proxy.
        # max_queue=None: unread presence events must not pause reading, or close() would stall.
        self._ws = await connect(
            endpoint,
            proxy=None,
            compression=None,
            open_timeout=timeout,
            max_queue=None,
            close_timeout=2,
            ssl=tls,
        )
        self.user = user
        welcome = await self.recv(timeout)
        if welcome.get("type") != "welcome":
            raise RuntimeError(f"expected a welcome message, got {welcome!r}")
        self.welcome = welcome
        return welcome

    @property
    def ws(self) -> ClientConnection:
        if self._ws is None:
            raise RuntimeError("SignalingClient is not connected")
        return self._ws

    async def send(self, obj: dict[str, Any]) -> None:
        """Send one message (a JSON object), e.g. {"type": "candidate", "target": "bob", ...}."""
        try:
            await self.ws.send(json.dumps(obj, separators=(",", ":")))
        except ConnectionClosed as exc:
            raise self._closed(exc) from None

    async def recv(self, timeout: float | None = None) -> dict[str, Any]:
        """Next message from the server; raises SignalingClosed when the connection ends."""
        try:
            raw = await asyncio.wait_for(self.ws.recv(), timeout)
        except ConnectionClosed as exc:
            raise self._closed(exc) from None
        obj = json.loads(raw)
        if not isinstance(obj, dict):
            raise ValueError(f"unexpected non-object frame: {raw!r}")
        return obj

    async def set_status(self, status: str) -> None:
        """Announce `online` or `busy` to everybody else."""
        await self.send({"type": "status", "status": status})

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()

    @staticmethod
    def _closed(exc: ConnectionClosed) -> SignalingClosed:
        frame = exc.rcvd
        return SignalingClosed(frame.code if frame else None, frame.reason if frame else "")

    async def __aenter__(self) -> SignalingClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
