"""When load makes a session's answer inconclusive (pure logic on a record; figures in docs/load.md).

Only a negative answer can be an artefact of load: a pairing that connected did connect, whatever the
machine did meanwhile, and a session that failed because a peer broke the protocol failed for that. A
session failed (verdict `failed`), answered needs_relay = true (its relay-less run
failed), or lost echoes in a held call (outcome `dropped` or `recovered`) is inconclusive when a peer of the
run that gave that answer had a thread that waited for a CPU for THRESHOLD or more of that run's budget: its
connect deadline (plus the hold, for a held call). A Chromium peer's threads are its whole browser's (both
runs' pages live in it). The longest-waiting thread, not the sum over threads: a browser's ~100 threads each
wait a little at every wake-up, and their sum grew past the threshold in relay-needing cells of the main job
on a quiet machine (25-115 % of 12 s), while no one thread waited more than a fifth.
The services' waits are recorded but not judged: they are mostly idle wake-ups (coturn's threads, the
in-process signaling server's hand-offs of the interpreter lock) and are as high on a quiet machine.

A retry of an inconclusive session gets RETRY_GROWTH times the deadline of the attempt before: a pairing
that fails only for want of CPU then connects, and one that cannot connect fails again with a wait that is
a smaller share of its longer deadline (a failing peer's wait comes with its start and its checks, not
with the time it waits for an answer).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from netsim.peers.protocol import broke_protocol
from netsim.records import LoadJudgement
from netsim.vocab import DROPPED, RECOVERED, SIDES

RULE = "longest peer thread cpu wait / deadline"
THRESHOLD = 0.25
RETRY_GROWTH = 2.0
MAIN_PARTS = ("a", "b", "browser_a", "browser_b")
RELAY_LESS_PARTS = ("relay_less_a", "relay_less_b", "browser_a", "browser_b")


def _worst(waits: Mapping[str, Any], parts: tuple[str, ...]) -> tuple[str | None, float]:
    """The part of `parts` that waited longest, and its wait in seconds."""
    known = [(p, float(waits[p])) for p in parts if isinstance(waits.get(p), int | float)]
    return max(known, key=lambda kv: kv[1]) if known else (None, 0.0)


def negatives(
    record: Mapping[str, Any], deadline_s: float, hold_s: float
) -> list[tuple[str, tuple[str, ...], float]]:
    """The session's negative answers: (what, the parts of the run that gave it, that run's budget s)."""
    out: list[tuple[str, tuple[str, ...], float]] = []
    if record.get("verdict") == "failed" and not _broken(record):
        out.append(("verdict failed", MAIN_PARTS, deadline_s))
    second = record.get("needs_relay_run")
    if record.get("needs_relay") is True and isinstance(second, Mapping):
        out.append(("the relay-less run failed", RELAY_LESS_PARTS, deadline_s))
    call = record.get("call")
    outcome = call.get("outcome") if isinstance(call, Mapping) else None
    if outcome in (DROPPED, RECOVERED):
        out.append((f"call {outcome}", MAIN_PARTS, deadline_s + hold_s))
    return out


def _broken(record: Mapping[str, Any]) -> bool:
    """A side's peer broke the protocol (printed garbage, no record): a failure no CPU would have saved."""
    sides = [(side, record.get(side)) for side in SIDES]
    return any(isinstance(peer, Mapping) and broke_protocol(side, peer.get("reason")) for side, peer in sides)


def judge(record: Mapping[str, Any], deadline_s: float, hold_s: float = 0.0) -> LoadJudgement:
    """Whether load makes the record's answer inconclusive; the record keeps the judgement as `load`."""
    # The longest-waiting thread of each part; a record from before that field has only the parts' sums.
    waits = record.get("cpu_wait_thread", record.get("cpu_wait"))
    out: LoadJudgement = {
        "rule": RULE,
        "threshold": THRESHOLD,
        "share": None,
        "inconclusive": False,
        "reason": None,
    }
    if not isinstance(waits, Mapping):
        return out  # no schedstats on this kernel: nothing to judge by
    worst: tuple[float, str] | None = None
    for what, parts, budget in negatives(record, deadline_s, hold_s):
        part, wait = _worst(waits, parts)
        share = wait / budget if budget > 0 else 0.0
        if part is not None and (worst is None or share > worst[0]):
            worst = (
                share,
                f"{what} while a thread of {part} waited {wait:.2f} s for a CPU, {share:.0%} of {budget:g} s",
            )
    if worst is not None:
        out["share"] = round(worst[0], 4)
        out["inconclusive"] = worst[0] >= THRESHOLD
        out["reason"] = worst[1]
    return out


def retry_deadline(deadline_s: float, attempt: int) -> float:
    """The connect deadline of attempt `attempt` (0: the first, as the scenario says)."""
    return deadline_s * RETRY_GROWTH**attempt
