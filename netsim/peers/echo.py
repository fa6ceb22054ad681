"""The `echo` data channel: how a peer proves the session carries data, and measures its RTT.

The offerer creates the channel, the answerer receives it. Once it is open each side sends pings one at a
time and answers the other's pings with pongs; the first pong marks the peer connected. Each side then sends
`done`, and before closing waits for its own pings and for the other's `done`, so nobody closes under the
other's pings (docs/peers.md). Messages are JSON: `{"t": "ping"|"pong", "seq", "ts"}` and `{"t": "done"}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any, Protocol

from netsim.peers.trace import Trace


class Channel(Protocol):
    """The part of aiortc's RTCDataChannel the echo uses."""

    @property
    def readyState(self) -> str: ...  # noqa: N802 (aiortc's name)

    def send(self, data: str) -> None: ...

    def on(self, event: str, f: Callable[..., Any]) -> Any: ...

    def once(self, event: str, f: Callable[..., Any]) -> Any: ...


class Echo:
    """Pings, pongs and `done` on the current channel; a replaced channel's events are ignored.

    `on_open` runs once, when the first channel opens; returning False means the peer has failed and stops
    the echo before its first ping.
    """

    def __init__(
        self,
        trace: Trace,
        *,
        count: int,
        interval_s: float,
        linger_s: float,
        on_open: Callable[[], bool],
    ) -> None:
        self.trace = trace
        self.count = count
        self.interval_s = interval_s
        self.linger_s = linger_s
        self.on_open = on_open
        self.channel: Channel | None = None
        self.connected = asyncio.Event()  # our first pong came back
        self.remote_done = asyncio.Event()  # the other side sent `done`
        self.pongs: dict[int, asyncio.Future[float]] = {}  # one per ping sent, by seq
        self.rtts_ms: list[float] = []
        self.task: asyncio.Task[None] | None = None

    def attach(self, channel: Channel) -> None:
        """Make `channel` the current one (created by our offer, or received from the offerer)."""
        self.channel = channel

        def _message(raw: Any) -> None:
            if channel is self.channel:
                self._on_message(channel, raw)

        def _open() -> None:
            if channel is self.channel:
                self._opened()

        channel.on("message", _message)
        if channel.readyState == "open":  # a received channel is already open
            self._opened()
        else:
            channel.on("open", _open)

    def detach(self) -> None:
        """Forget the current channel: its connection was replaced, so its events no longer count."""
        self.channel = None

    def _opened(self) -> None:
        marks = self.trace.marks
        if "channel_open" in marks:
            return
        marks["channel_open"] = self.trace.now()
        self.trace.note("channel", "open")
        if self.on_open():
            self.task = asyncio.get_running_loop().create_task(self._pings())

    def _on_message(self, channel: Channel, raw: Any) -> None:
        msg = json.loads(raw)
        if msg["t"] == "ping":
            pong = json.dumps({"t": "pong", "seq": msg["seq"], "ts": msg["ts"]})
            if channel.readyState == "open":
                channel.send(pong)
            else:
                # Firefox sends its first message before the DCEP ACK that opens the channel we created
                # (same stream, ordered); aiortc refuses to send until then, so the pong waits for it.
                channel.once("open", lambda: channel.send(pong))
        elif msg["t"] == "pong":
            fut = self.pongs.get(msg["seq"])
            if fut is not None and not fut.done():
                fut.set_result(self.trace.now())
        elif msg["t"] == "done":
            self.remote_done.set()

    async def _pings(self) -> None:
        """Send pings one at a time; the first pong marks the session connected."""
        channel = self.channel
        assert channel is not None
        for seq in range(self.count):
            fut = asyncio.get_running_loop().create_future()
            self.pongs[seq] = fut
            sent = self.trace.now()
            channel.send(json.dumps({"t": "ping", "seq": seq, "ts": sent}))
            try:
                # A pong that misses this wait counts as lost; the next ping goes out.
                got = await asyncio.wait_for(fut, timeout=max(self.linger_s, 1.0))
            except TimeoutError:
                continue
            self.rtts_ms.append((got - sent) * 1000)
            if not self.connected.is_set():
                self.trace.marks["first_echo"] = got
                self.connected.set()
            await asyncio.sleep(self.interval_s)
        if channel.readyState == "open":
            channel.send(json.dumps({"t": "done"}))

    async def finish(self) -> None:
        """Wait (at most linger_s in all) for our pings to end and for the other side's `done`."""

        async def both_done() -> None:
            if self.task is not None:
                await self.task
            await self.remote_done.wait()

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(both_done(), timeout=self.linger_s)

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    @property
    def pings_sent(self) -> int:
        return len(self.pongs)
