"""The inconclusive rule (netsim.session.load) on figures recorded by bench/load.py (docs/load.md)."""

from __future__ import annotations

from typing import Any

import pytest

from netsim.session import load


def record(verdict: str, needs_relay: bool | None, waits: dict[str, float], **extra: Any) -> dict[str, Any]:
    second = {"verdict": "failed"} if needs_relay else None
    return {
        "verdict": verdict,
        "needs_relay": needs_relay,
        "needs_relay_run": second,
        "cpu_wait": waits,
        **extra,
    }


# Recorded: the matrix with TURN under 6 busy processes on 2 cores (-j 2), and on a quieter machine.
HOG_SPURIOUS = [  # cone pairs that cannot need a relay, "failed" with TURN offered: load, not the NAT
    record("failed", True, {"a": 3.65, "b": 3.48, "relay_less_a": 3.12, "relay_less_b": 2.9, "coturn": 1.2}),
    record("failed", False, {"a": 3.005, "b": 2.71, "relay_less_a": 2.2, "relay_less_b": 2.0}),
]
HOG_RIGHT = [  # symmetric pairings whose relay-less run failed as it must, peers waiting ~0.6 s of 3
    record("relay", True, {"a": 0.2, "b": 0.3, "relay_less_a": 0.585, "relay_less_b": 0.52}),
    record("relay", True, {"a": 0.25, "b": 0.2, "relay_less_a": 0.648, "relay_less_b": 0.6}),
]
QUIET = [  # the same answers on a quiet machine: 0.07-0.09 of the deadline
    record("relay", True, {"a": 0.1, "b": 0.1, "relay_less_a": 0.267, "relay_less_b": 0.2, "signaling": 0.8}),
    record("relay", True, {"a": 0.1, "b": 0.1, "relay_less_a": 0.198, "relay_less_b": 0.15, "coturn": 1.3}),
    record("failed", True, {"browser_a": 0.382, "browser_b": 0.355, "coturn": 1.34, "signaling": 1.22}),
]


@pytest.mark.parametrize("rec", HOG_SPURIOUS)
def test_load_made_failures_are_inconclusive(rec: dict[str, Any]) -> None:
    judged = load.judge(rec, 3.0)
    assert judged["inconclusive"] and judged["share"] is not None and judged["share"] >= 1.0
    assert (judged["rule"], judged["threshold"]) == (load.RULE, load.THRESHOLD)
    assert "waited" in str(judged["reason"]) and "of 3 s" in str(judged["reason"])


@pytest.mark.parametrize("rec", QUIET)
def test_quiet_negative_answers_stand(rec: dict[str, Any]) -> None:
    judged = load.judge(rec, 3.0)
    assert not judged["inconclusive"]
    assert judged["share"] is not None and judged["share"] < load.THRESHOLD


def test_services_waits_are_not_judged() -> None:
    """coturn's and the signaling server's waits are idle wake-ups, as high on a quiet machine."""
    rec = record("failed", True, {"a": 0.1, "b": 0.1, "coturn": 3.0, "signaling": 3.0})
    assert not load.judge(rec, 3.0)["inconclusive"]


def test_a_right_answer_under_load_may_be_retried_and_then_stands() -> None:
    """A relay-less run that failed because it must, under the hog: the retry's doubled deadline makes the
    same wait a smaller share, so it concludes."""
    for rec in HOG_RIGHT:
        first = load.judge(rec, 3.0)
        retry = load.judge(rec, load.retry_deadline(3.0, 1))
        assert first["share"] is not None and retry["share"] is not None
        assert retry["share"] == pytest.approx(first["share"] / 2, abs=1e-4)
        assert not retry["inconclusive"]


def test_positive_answers_are_never_judged() -> None:
    """A pairing that connected did connect, however loaded the machine was."""
    rec = record("direct", False, {"a": 9.0, "b": 9.0, "relay_less_a": 9.0})
    judged = load.judge(rec, 3.0)
    assert (judged["inconclusive"], judged["share"], judged["reason"]) == (False, None, None)


def test_lost_echoes_are_judged_against_the_hold() -> None:
    waits = {"a": 4.0, "b": 1.0}
    dropped = record("direct", False, waits, call={"outcome": "dropped"})
    assert load.judge(dropped, 3.0, hold_s=30.0)["share"] == pytest.approx(4.0 / 33.0, abs=1e-4)
    assert load.judge(dropped, 3.0, hold_s=5.0)["inconclusive"]  # 4 s of 8
    held = record("direct", False, waits, call={"outcome": "held"})
    assert load.judge(held, 3.0, hold_s=5.0)["share"] is None


def test_a_chromium_side_is_judged_by_its_browser() -> None:
    rec = record("failed", None, {"browser_a": 2.0, "b": 0.1})
    judged = load.judge(rec, 3.0)
    assert judged["inconclusive"] and "browser_a" in str(judged["reason"])


def test_a_browser_is_judged_by_its_longest_waiting_thread_not_their_sum() -> None:
    """Recorded in the main job (-n 2, quiet machine): symmetric x symmetric without TURN failed as it must;
    the browsers' ~100 threads waited 1.78 and 1.97 s in all, none of them more than 0.63 s of the 3 s."""
    summed = {"browser_a": 1.782, "browser_b": 1.97, "coturn": 1.3}
    longest = {"browser_a": 0.625, "browser_b": 0.382, "coturn": 0.2}
    rec = record("failed", True, summed, cpu_wait_thread=longest)
    judged = load.judge(rec, 3.0)
    assert not judged["inconclusive"] and judged["share"] == pytest.approx(0.625 / 3, abs=1e-4)
    assert "a thread of browser_a" in str(judged["reason"])
    assert load.judge(record("failed", True, summed), 3.0)["inconclusive"]  # a record without the field
    starved = record("failed", True, summed, cpu_wait_thread={**longest, "browser_b": 1.5})
    assert load.judge(starved, 3.0)["inconclusive"]


def test_no_schedstats_nothing_to_judge() -> None:
    judged = load.judge({"verdict": "failed", "cpu_wait": None}, 3.0)
    assert judged == {
        "rule": load.RULE,
        "threshold": load.THRESHOLD,
        "share": None,
        "inconclusive": False,
        "reason": None,
    }


def test_retry_deadlines_double() -> None:
    assert [load.retry_deadline(3.0, k) for k in range(3)] == [3.0, 6.0, 12.0]


def test_a_peer_that_broke_the_protocol_fails_conclusively() -> None:
    """Garbage on a peer's stdout fails its side whatever the machine did: no retry would change it."""
    waits = {"a": 3.0, "b": 3.0}
    broken = record("failed", None, waits, a={"reason": "peer a (exec:./mine): no record on stdout"})
    assert not load.judge(broken, 3.0)["inconclusive"]
    slow = record("failed", None, waits, a={"reason": "not connected within 3 s (signaling)"})
    assert load.judge(slow, 3.0)["inconclusive"]
