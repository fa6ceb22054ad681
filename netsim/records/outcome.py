"""The record schema's version, the outcome vocabulary of a checked session, and how load was judged."""

# No `from __future__ import annotations` here: TypedDict needs real annotations at runtime.
from typing import Final, NotRequired, TypedDict

from netsim.vocab import OUTCOMES, Outcome

__all__ = ["OLD_VIOLATED", "OUTCOMES", "SCHEMA_VERSION", "Attempt", "LoadJudgement", "Outcome"]

# 3: outcome `violated` (was `failed`) and `inconclusive`, `load`, `attempts`, `cpu_wait`.
# 2: outcome (passed/failed/unchecked), experiment, schema_version. 1: the records before (no version key).
SCHEMA_VERSION: Final = 3
OLD_VIOLATED: Final = "failed"  # schema 2's word for violated (read as violated)


class LoadJudgement(TypedDict):
    """The rule that judged whether load made the session's answer inconclusive, and what it found."""

    rule: str  # e.g. "longest peer thread cpu wait / deadline"
    threshold: float  # the share of the budget at or above which a negative answer is inconclusive
    share: float | None  # the worst share among the negative answers; null when there was none
    inconclusive: bool
    reason: str | None  # which answer, which process, how long, of what budget


class Attempt(TypedDict):
    """One run of a session; a record keeps every attempt, and only its last counts."""

    verdict: str
    needs_relay: bool | None
    reason: str | None
    connect_s: float | None
    cpu_wait_s: float | None
    deadline_s: float
    share: float | None  # LoadJudgement.share
    inconclusive: bool
    started_at: str
    call: NotRequired[str | None]  # a held call's outcome
    infrastructure: NotRequired[str | None]  # the service or browser that broke the attempt
