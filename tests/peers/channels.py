"""An in-memory data channel pair for the echo and hold tests (no network)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any


class Channel:
    """An in-memory stand-in for RTCDataChannel: what one end sends, the other end's handlers receive."""

    def __init__(self, state: str = "connecting") -> None:
        self.readyState = state
        self.other: Channel | None = None
        self.handlers: dict[str, list[Callable[..., Any]]] = {}
        self.sent: list[dict[str, Any]] = []
        self.deliver = True

    def on(self, event: str, f: Callable[..., Any]) -> Callable[..., Any]:
        self.handlers.setdefault(event, []).append(f)
        return f

    def once(self, event: str, f: Callable[..., Any]) -> Callable[..., Any]:
        def one(*args: Any) -> None:
            self.handlers[event].remove(one)
            f(*args)

        return self.on(event, one)

    def emit(self, event: str, *args: Any) -> None:
        for f in list(self.handlers.get(event, [])):
            f(*args)

    def open(self) -> None:
        self.readyState = "open"
        self.emit("open")

    def send(self, data: str) -> None:
        if self.readyState != "open":
            raise RuntimeError("InvalidStateError")  # as aiortc's RTCDataChannel.send
        self.sent.append(json.loads(data))
        if self.deliver and self.other is not None:
            asyncio.get_running_loop().call_soon(self.other.emit, "message", data)


def pair() -> tuple[Channel, Channel]:
    a, b = Channel(), Channel()
    a.other, b.other = b, a
    return a, b
