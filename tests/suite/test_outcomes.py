"""How a session's record becomes an outcome: passed, violated, unchecked or inconclusive
(netsim.suite.runner), the run's counts and exit code, and the parallel scheduler's browser cap."""

from __future__ import annotations

from typing import Any

from netsim.cli.common import EXIT_INCONCLUSIVE, EXIT_MISMATCH, EXIT_OK, exit_code
from netsim.suite import parallel
from netsim.suite.catalog import matrix
from netsim.suite.expectations import Expectation
from netsim.suite.runner import Counts, Done, attempt_entry, label

SCN = matrix("udp", ("full-cone",))[0]
RELAY = Expectation(needs_relay=True, connect=True, verdict="relay", source="test")


def rec(verdict: str, needs_relay: bool | None, inconclusive: bool = False) -> dict[str, Any]:
    judged = {
        "rule": "r",
        "threshold": 0.25,
        "share": 1.1 if inconclusive else 0.1,
        "inconclusive": inconclusive,
    }
    judged["reason"] = "verdict failed while a waited 3.30 s for a CPU, 110% of 3 s" if inconclusive else None
    return {
        "verdict": verdict,
        "needs_relay": needs_relay,
        "reason": None,
        "connect_s": 0.5,
        "timings": {"cpu_wait_s": 3.5},
        "started_at": "2026-12-07T16:00:00Z",
        "load": judged,
        "a": {},
        "b": {},
    }


def test_outcomes() -> None:
    cases = [
        (rec("relay", True), RELAY, "passed", None),
        (rec("direct", False), RELAY, "violated", "needs_relay"),
        (rec("direct", False), None, "unchecked", None),
        (rec("failed", True, inconclusive=True), RELAY, "inconclusive", "inconclusive: verdict failed"),
        (rec("failed", True, inconclusive=True), None, "inconclusive", "inconclusive"),
    ]
    for record, expected, outcome, problem in cases:
        got = label(record, SCN, "R", 0, expected, {})  # type: ignore[arg-type]
        assert record["outcome"] == outcome
        assert (got is None) == (problem is None) and (problem is None or problem in str(got))
        if outcome == "inconclusive":  # never a NAT answer: no pass, no mismatch
            assert record["passed"] is None and record["mismatch"] is None
            assert "3.30 s" in str(got)


def test_every_attempt_is_kept_with_its_wait() -> None:
    record = rec("failed", True, inconclusive=True)
    record["attempts"] = [attempt_entry(record, 3.0), attempt_entry(rec("relay", True), 6.0)]  # type: ignore[arg-type]
    assert [
        (a["verdict"], a["deadline_s"], a["inconclusive"], a["cpu_wait_s"]) for a in record["attempts"]
    ] == [
        ("failed", 3.0, True, 3.5),
        ("relay", 6.0, False, 3.5),
    ]


def test_counts_and_exit_codes() -> None:
    counts = Counts()
    for outcome, attempts in [("passed", 1), ("passed", 2), ("inconclusive", 3), ("violated", 1)]:
        counts.add(Done("s", 0, "relay", True, outcome, None, attempts))
    assert (counts.sessions, counts.violated, counts.inconclusive, counts.retried, counts.recovered) == (
        4,
        1,
        1,
        2,
        1,
    )
    assert exit_code(1, 1) == EXIT_MISMATCH  # a violation wins over inconclusive
    assert exit_code(0, 2) == EXIT_INCONCLUSIVE == 4
    assert exit_code(0, 0) == EXIT_OK


def test_browser_cap_lets_aiortc_run_wider() -> None:
    cost = {"chromium-1": 2, "chromium-2": 2, "aiortc": 0}.__getitem__
    pending = ["chromium-1", "chromium-2", "aiortc"]
    assert parallel.pick(pending, cost, in_flight=0, cap=2) == 0  # nothing in flight: the longest goes
    assert parallel.pick(pending, cost, in_flight=2, cap=2) == 2  # two browsers running: aiortc next
    assert parallel.pick(["chromium-1"], cost, in_flight=2, cap=2) is None  # wait for a browser to end
    assert parallel.pick(["chromium-1"], cost, in_flight=2, cap=4) == 0


def test_auto_jobs_fit_the_machine(monkeypatch: Any) -> None:
    monkeypatch.setattr(parallel, "cores", lambda: 2)
    monkeypatch.setattr(parallel, "available_gib", lambda: 22.0)
    assert parallel.auto_jobs() == (4, 2)  # two sessions per core, one browser per core
    # memory-bound: a worker's session and the two browsers it may keep alive (netsim.suite.keep)
    monkeypatch.setattr(parallel, "available_gib", lambda: 2.6)
    assert parallel.auto_jobs() == (2, 2)
    monkeypatch.setattr(parallel, "available_gib", lambda: 0.6)
    assert parallel.auto_jobs() == (1, 1)
    monkeypatch.setattr(parallel, "available_gib", lambda: 0.1)
    assert parallel.auto_jobs() == (1, 1)


def test_a_worker_takes_the_task_its_kept_lab_serves_first() -> None:
    from netsim.suite.catalog import matrix
    from netsim.suite.runner import _near

    no_browsers = {"x1": 0, "y1": 0, "x2": 0}.__getitem__
    y_first = lambda first, task: task.startswith("y")  # noqa: E731
    assert parallel.pick(["x1", "y1", "x2"], no_browsers, 0, 2, y_first) == 1
    assert parallel.pick(["x1", "x2"], no_browsers, 0, 2, y_first) == 0  # none near: the longest
    cells = {s.id: (s, 0) for s in matrix("udp")}
    near = _near([t[0] for t in cells.values()], {})
    last, first = cells["matrix-turn/full-cone__full-cone"], cells["matrix-turn/open__open"]
    assert near(last, first, cells["matrix-turn/symmetric__restricted-cone"])  # the same lab
    assert not near(last, first, cells["matrix-turn/full-cone__open"])  # b's LAN is public: another lab
