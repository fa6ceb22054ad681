"""The echo channel between two peers, over an in-memory channel pair (no network)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from netsim.peers.echo import Echo
from netsim.peers.trace import Trace
from tests.peers.channels import Channel as _Channel
from tests.peers.channels import pair as _pair


def _echo(trace: Trace, on_open: Callable[[], bool] = lambda: True, count: int = 3) -> Echo:
    return Echo(trace, count=count, interval_s=0.0, linger_s=1.0, on_open=on_open)


def test_both_sides_echo_and_finish_together() -> None:
    async def main() -> tuple[Echo, Echo, Trace, _Channel]:
        ta, tb = Trace(), Trace()
        a, b = _echo(ta), _echo(tb)
        ca, cb = _pair()
        a.attach(ca)  # the offerer's channel opens later
        cb.readyState = "open"
        b.attach(cb)  # the answerer receives it already open
        ca.open()
        await asyncio.wait_for(asyncio.gather(a.finish(), b.finish()), timeout=2.0)
        return a, b, ta, ca

    a, b, ta, ca = asyncio.run(main())
    for side in (a, b):
        assert side.connected.is_set() and side.remote_done.is_set()
        assert side.pings_sent == 3 and len(side.rtts_ms) == 3
    assert ta.marks["channel_open"] <= ta.marks["first_echo"]
    assert [s["state"] for s in ta.states if s["what"] == "channel"] == ["open"]
    ours = [m for m in ca.sent if m["t"] != "pong"]
    assert [m["t"] for m in ours] == ["ping", "ping", "ping", "done"]
    assert [m["seq"] for m in ours[:3]] == [0, 1, 2]


def test_lost_pongs_leave_the_peer_unconnected() -> None:
    async def main() -> Echo:
        a, b = _echo(Trace(), count=1), _echo(Trace(), count=1)
        ca, cb = _pair()
        cb.deliver = False  # b's pongs never arrive
        a.attach(ca)
        b.attach(cb)
        ca.open()
        cb.open()
        await asyncio.wait_for(a.finish(), timeout=3.0)
        return a

    a = asyncio.run(main())
    assert not a.connected.is_set() and a.pings_sent == 1 and a.rtts_ms == []


def test_on_open_false_stops_the_echo_before_its_first_ping() -> None:
    async def main() -> tuple[Echo, _Channel]:
        trace = Trace()
        echo = _echo(trace, on_open=lambda: False)
        channel = _Channel("open")
        echo.attach(channel)
        await echo.finish()  # returns at linger_s: the other side's `done` never comes
        return echo, channel

    echo, channel = asyncio.run(main())
    assert channel.sent == [] and echo.pings_sent == 0 and not echo.connected.is_set()
    assert "channel_open" in echo.trace.marks


def test_a_detached_channel_is_ignored() -> None:
    async def main() -> tuple[Echo, _Channel]:
        opened: list[bool] = []

        def on_open() -> bool:
            opened.append(True)
            return True

        echo = _echo(Trace(), on_open=on_open)
        old = _Channel()
        echo.attach(old)
        echo.detach()  # its connection was replaced
        old.open()
        old.emit("message", json.dumps({"t": "done"}))
        old.emit("message", json.dumps({"t": "ping", "seq": 0, "ts": 0.0}))
        assert opened == []
        return echo, old

    echo, old = asyncio.run(main())
    assert not echo.remote_done.is_set() and old.sent == [] and "channel_open" not in echo.trace.marks


def test_the_channel_opens_once() -> None:
    async def main() -> int:
        calls: list[int] = []

        def on_open() -> bool:
            calls.append(1)
            return False

        echo = _echo(Trace(), on_open=on_open)
        first, second = _Channel(), _Channel("open")
        echo.attach(first)
        first.open()
        echo.attach(second)  # a second channel opening does not start a second echo
        return len(calls)

    assert asyncio.run(main()) == 1


def test_a_ping_before_our_channel_opens_is_answered_once_it_opens() -> None:
    """Firefox sends its first ping before the DCEP ACK that opens the channel aiortc created: the pong
    waits for the open instead of failing the send (which took aiortc's whole DTLS transport down)."""

    async def main() -> _Channel:
        echo = _echo(Trace(), on_open=lambda: False)
        ours = _Channel()  # created by our offer, waiting for the remote's ACK
        echo.attach(ours)
        ours.emit("message", json.dumps({"t": "ping", "seq": 0, "ts": 1.5}))
        assert ours.sent == []
        ours.open()  # the ACK arrives right behind the ping
        return ours

    ours = asyncio.run(main())
    assert ours.sent == [{"t": "pong", "seq": 0, "ts": 1.5}]
