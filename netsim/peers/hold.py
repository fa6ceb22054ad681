"""The `hold` data channel: echoes while a call is held, to see whether (and when) the path carries data.

The offerer creates it beside `echo` when the session holds the call (hold_s > 0), unordered and without
retransmissions (ordered=false, maxRetransmits=0): a lost echo is lost, not delayed by SCTP's back-off, so
an outage shows as unanswered echoes with their send times. The connect-time handshake stays on the
reliable `echo` channel (echo.py), unchanged. Messages are JSON: `{"t": "hping", "seq", "ts"}` and
`{"t": "hpong", "seq"}`.

Every `interval_s` from the hold's start (this side's connect) to its end, each side sends an echo and
answers the other's. `interval_s = 0` sends none during the hold, only CHECK_COUNT checks at its end, so a
call kept alive by the stacks' own keepalives alone is still judged on whether it carries data. After the
last echo a side keeps answering for ANSWER_GRACE_S, then the peer closes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from netsim.peers.echo import Channel
from netsim.peers.protocol import RawCall, RawClosed, RawHoldEcho
from netsim.peers.trace import Trace

LABEL = "hold"
ORDERED, MAX_RETRANSMITS = False, 0  # a lost echo is lost (no SCTP retransmission)
CHECK_COUNT = 3  # with interval_s = 0: echoes sent at the end of the hold ...
CHECK_SPACING_S = 0.25  # ... this far apart
ANSWER_GRACE_S = 1.0  # after our last echo: wait for its answer, keep answering the other side's


class Hold:
    """The hold echoes of one peer; `echoes` is [{"seq", "sent", "answered"}] on the shared monotonic clock
    (answered: null when no answer came)."""

    def __init__(self, trace: Trace, *, hold_s: float, interval_s: float) -> None:
        self.trace = trace
        self.hold_s = hold_s
        self.interval_s = interval_s
        self.channel: Channel | None = None
        self.echoes: list[RawHoldEcho] = []
        self.send_errors = 0

    def attach(self, channel: Channel) -> None:
        """Make `channel` the hold channel (created with our offer, or received from the offerer)."""
        self.channel = channel

        def _message(raw: Any) -> None:
            if channel is self.channel:
                self.on_message(channel, raw)

        channel.on("message", _message)

    def detach(self) -> None:
        self.channel = None

    def on_message(self, channel: Channel, raw: Any) -> None:
        msg = json.loads(raw)
        if msg.get("t") == "hping":
            self._send(channel, {"t": "hpong", "seq": msg["seq"]})
        elif msg.get("t") == "hpong":
            seq = msg.get("seq")
            if isinstance(seq, int) and 0 <= seq < len(self.echoes) and self.echoes[seq]["answered"] is None:
                self.echoes[seq]["answered"] = self.trace.now()

    def _send(self, channel: Channel | None, msg: dict[str, Any]) -> bool:
        if channel is None or channel.readyState != "open":
            return False
        try:
            channel.send(json.dumps(msg))
        except Exception:  # a channel closing under us: the echo is lost, not an error of the peer
            self.send_errors += 1
            return False
        return True

    def ping(self) -> None:
        """One echo now (recorded as sent even when the channel cannot carry it: then it is lost)."""
        seq, sent = len(self.echoes), self.trace.now()
        self.echoes.append({"seq": seq, "sent": sent, "answered": None})
        self._send(self.channel, {"t": "hping", "seq": seq, "ts": sent})

    async def run(self, start: float, ended: Callable[[], bool]) -> None:
        """Hold from `start` (monotonic) for hold_s, echoing; stops early once `ended()` (call over)."""
        end = start + self.hold_s
        if self.interval_s > 0:
            # Counted, not summed: start + 0.1 + 0.1 ... drifts past the end and would drop the last echo.
            for i in range(echo_count(self.hold_s, self.interval_s)):
                await _sleep_until(self.trace, start + i * self.interval_s)
                if ended():
                    break
                self.ping()
        else:
            while self.trace.now() < end and not ended():
                await asyncio.sleep(min(0.1, max(end - self.trace.now(), 0)))
            for _ in range(CHECK_COUNT if not ended() else 0):
                self.ping()
                await asyncio.sleep(CHECK_SPACING_S)
        grace_end = self.trace.now() + ANSWER_GRACE_S
        while self.trace.now() < grace_end and not ended():
            await asyncio.sleep(0.05)

    def call(self, closed: RawClosed | None) -> RawCall:
        """The record's `call`: every echo, sent and answered counts, and `closed` (the connection failed
        or closed while held). aiortc has no ICE restart."""
        return {
            "hold_s": self.hold_s,
            "interval_s": self.interval_s,
            "echoes": [
                {"seq": e["seq"], "sent": round(e["sent"], 6), "answered": _round(e["answered"])}
                for e in self.echoes
            ],
            "sent": len(self.echoes),
            "answered": sum(e["answered"] is not None for e in self.echoes),
            "closed": closed,
            "restart": "unsupported",
            "restarts": [],
        }


def echo_count(hold_s: float, interval_s: float) -> int:
    """Echoes at start, start + interval, ... up to and including the end of the hold."""
    return int(hold_s / interval_s + 1e-9) + 1


def _round(t: float | None) -> float | None:
    return None if t is None else round(t, 6)


async def _sleep_until(trace: Trace, t: float) -> None:
    delay = t - trace.now()
    if delay > 0:
        await asyncio.sleep(delay)
