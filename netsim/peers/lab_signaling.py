"""The aiortc peer's side of the lab's signaling server: messages to and from its target peer only, presence
as messages (protocol in docs/signaling.md)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from netsim.peers.protocol import PeerConfig


class Signaling(Protocol):
    """Messages to and from the target peer through the lab's signaling server."""

    async def send(self, payload: dict[str, Any]) -> None: ...

    async def recv(self) -> dict[str, Any]: ...

    async def close(self) -> None: ...


SignalingFactory = Callable[[PeerConfig], Awaitable[Signaling]]


async def connect_signaling(cfg: PeerConfig) -> Signaling:
    """The lab's signaling server (netsim.services.signaling, protocol in docs/signaling.md)."""
    return await _LabSignaling.open(cfg)


class _LabSignaling:
    """Adapts SignalingClient to the peer: frames to/from the target only, presence as messages.

    The server forwards offer/answer/candidate/bye frames (extra keys pass through) and announces presence.
    Whether the target is already connected comes from the welcome, later arrivals as `presence` frames;
    the server sends a newcomer's presence to us before any frame from it, which is what makes glare
    detection reliable (see Negotiation.on_present).
    """

    def __init__(self, client: Any, target: str) -> None:
        self.client = client
        self.target = target
        self.pending: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, cfg: PeerConfig) -> _LabSignaling:
        from netsim.services.signaling_client import SignalingClient

        client = SignalingClient()
        welcome = await client.connect(cfg.signaling_url, cfg.user, cfg.token, timeout=cfg.deadline_s)
        self = cls(client, cfg.target)
        status = welcome.get("presence", {}).get(cfg.target)
        if status is not None:
            self.pending.append({"type": "presence", "status": status})
        return self

    async def send(self, payload: dict[str, Any]) -> None:
        await self.client.send({**payload, "target": self.target})

    async def recv(self) -> dict[str, Any]:
        while not self.pending:
            msg = await self.client.recv()
            kind = msg.get("type")
            if kind == "presence" and msg.get("user") == self.target:
                self.pending.append({"type": "presence", "status": msg.get("status")})
            elif kind == "error" or msg.get("sender") == self.target:
                self.pending.append(msg)
        return self.pending.pop(0)

    async def close(self) -> None:
        await self.client.close()
