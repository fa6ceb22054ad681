"""The hold channel's echoes (netsim/peers/hold.py) over an in-memory channel pair: the schedule, answers,
lost echoes, the checks at the end with interval 0, and the record's `call` (no root, no network)."""

from __future__ import annotations

import asyncio
import time

from netsim.peers.hold import ANSWER_GRACE_S, CHECK_COUNT, Hold, echo_count
from netsim.peers.trace import Trace
from tests.peers.channels import pair


def _held(hold_s: float, interval_s: float, *, b_answers: bool = True) -> tuple[Hold, Hold, float]:
    """Both sides hold for hold_s from now; returns both and the seconds it took."""

    async def main() -> tuple[Hold, Hold]:
        a, b = (
            Hold(Trace(), hold_s=hold_s, interval_s=interval_s),
            Hold(Trace(), hold_s=hold_s, interval_s=interval_s),
        )
        ca, cb = pair()
        ca.readyState = cb.readyState = "open"
        cb.deliver = b_answers
        a.attach(ca)
        b.attach(cb)
        start = time.monotonic()
        await asyncio.gather(a.run(start, lambda: False), b.run(start, lambda: False))
        return a, b

    t0 = time.monotonic()
    a, b = asyncio.run(main())
    return a, b, time.monotonic() - t0


def test_echoes_every_interval_from_the_start_and_all_answered() -> None:
    a, b, took = _held(0.5, 0.1)
    assert len(a.echoes) == len(b.echoes) == 6  # at 0, 0.1, ..., 0.5
    sent = [e["sent"] for e in a.echoes]
    # Each at its own time from the start (absolute schedule): late under load, never early.
    assert all(t - sent[0] >= 0.1 * i - 0.005 for i, t in enumerate(sent)), sent
    assert all(e["answered"] is not None and e["answered"] >= e["sent"] for e in a.echoes)
    assert took >= 0.5 + ANSWER_GRACE_S  # after the last echo it keeps answering for the grace
    call = a.call(None)
    assert (call["sent"], call["answered"], call["restart"], call["restarts"]) == (6, 6, "unsupported", [])
    assert [e["seq"] for e in call["echoes"]] == list(range(6))


def test_the_echo_at_the_end_of_the_hold_is_sent_whatever_the_float_sums_say() -> None:
    assert echo_count(0.5, 0.1) == 6 and echo_count(30.0, 1.0) == 31 and echo_count(0.55, 0.1) == 6
    start = 4986.337103038  # a monotonic clock well into a machine's uptime: sums of 0.1 drift there
    t = start
    for _ in range(5):
        t += 0.1
    assert t > start + 0.5  # what the summed schedule got wrong


def test_an_unanswered_echo_stays_lost() -> None:
    a, b, _ = _held(0.3, 0.1, b_answers=False)  # b's hpongs (and hpings) never reach a
    assert a.echoes and all(e["answered"] is None for e in a.echoes)
    assert b.echoes and all(e["answered"] is None for e in b.echoes)  # its hpings went nowhere either
    call = a.call({"t": 1.0, "reason": "connection failed"})
    assert call["answered"] == 0 and call["closed"] == {"t": 1.0, "reason": "connection failed"}


def test_interval_zero_sends_only_the_checks_at_the_end() -> None:
    a, _, took = _held(0.3, 0.0)
    assert len(a.echoes) == CHECK_COUNT
    assert a.echoes[0]["sent"] - a.trace.t0 >= 0.3 - 0.05  # none during the hold
    assert all(e["answered"] is not None for e in a.echoes)


def test_a_closed_channel_loses_the_echo_but_counts_it() -> None:
    async def main() -> Hold:
        h = Hold(Trace(), hold_s=1.0, interval_s=1.0)
        ca, _ = pair()
        ca.readyState = "closed"
        h.attach(ca)
        h.ping()
        return h

    h = asyncio.run(main())
    assert len(h.echoes) == 1 and h.echoes[0]["answered"] is None and h.send_errors == 0


def test_stops_early_once_the_call_ended() -> None:
    async def main() -> tuple[Hold, float]:
        h = Hold(Trace(), hold_s=5.0, interval_s=0.1)
        ca, _ = pair()
        ca.readyState = "open"
        h.attach(ca)
        t0 = time.monotonic()
        await h.run(t0, lambda: time.monotonic() - t0 > 0.25)
        return h, time.monotonic() - t0

    h, took = asyncio.run(main())
    assert took < 3.0 and 1 <= len(h.echoes) <= 4  # not the 5 s hold
