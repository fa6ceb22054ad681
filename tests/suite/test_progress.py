"""Run progress: plain lines when the output is not a terminal (no root)."""

from __future__ import annotations

import io

from netsim.suite.progress import RunProgress


def test_plain_lines_count_verdicts_and_outcomes_to_look_at() -> None:
    out = io.StringIO()
    with RunProgress(3, stream=out) as progress:
        assert not progress.live
        progress.session("one direct", "direct", "passed")
        progress.session("two failed", "failed", "violated", "expected connect\nactual failed")
        progress.session("three", "relay", "unchecked")
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[1/3] one direct  (elapsed ") and lines[0].endswith("; direct 1)")
    assert lines[1].startswith("[2/3] two failed") and lines[1].endswith("; direct 1 failed 1 | violated 1)")
    assert lines[2:4] == ["    expected connect", "    actual failed"]
    assert lines[4].endswith("ETA 0s; direct 1 failed 1 relay 1 | violated 1 unchecked 1)")
    assert len(lines) == 5  # a long line is never wrapped into two


def test_inconclusive_sessions_are_counted_as_such_never_as_a_verdict_word() -> None:
    out = io.StringIO()
    with RunProgress(2, stream=out) as progress:
        progress.session("a", "failed", "inconclusive", "inconclusive: verdict failed while a waited 3 s")
        progress.session("b", "failed", "violated")
    last = out.getvalue().splitlines()[-1]
    assert last.endswith("; failed 2 | violated 1 inconclusive 1)")  # `failed`: verdicts only


def test_eta_from_the_pace_so_far() -> None:
    progress = RunProgress(4, stream=io.StringIO())
    assert progress.eta_s() is None
    progress.started -= 10.0
    progress.session("x", "direct", "passed")
    eta = progress.eta_s()
    assert eta is not None and 29.0 < eta < 31.5
