"""run.json: the run as a whole (`RunInfo`): the commit under test, start, finish and wall time; for a
merged run also the runs it was made of (`MergedInput`) and what the merge warned about."""

# No `from __future__ import annotations` here: TypedDict needs real annotations at runtime to tell
# NotRequired keys (__optional_keys__) on Python 3.11.
from typing import NotRequired, TypedDict


class MergedInput(TypedDict):
    """One run (e.g. a CI shard) that went into a merged run."""

    run: str  # its directory's name
    sessions: int
    commit: str | None
    started: str | None  # UTC, like ResultRecord.started_at
    finished: str | None
    wall_s: float | None
    wall_is_lower_bound: bool  # the run had no run.json: the span of its sessions' starts only


class RunInfo(TypedDict):
    """run.json. A run's start is its first session's start; its finish when its summary was written."""

    commit: str | list[str] | None  # the netsim commit ("-dirty": with uncommitted changes); a list when
    # merged runs came from different commits
    started: str | None
    finished: str | None
    wall_s: float | None
    merged_from: NotRequired[list[MergedInput]]  # a merged run: its inputs, in the order merged
    warnings: NotRequired[list[str]]  # differences the merge kept (a kernel, a commit), one line each
    overridden: NotRequired[list[str]]  # refusals merged anyway with --force
