"""Comparing two runs cell by cell (no root)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from netsim.cli import main
from netsim.results.compare import compare, failing, format_changes, pair_label, parse_aspects, write_html
from tests.results.report_fixtures import write_results


def rec(scenario: str, verdict: str, needs_relay: bool | None = False, **kw: Any) -> dict[str, Any]:
    r = {
        "scenario": scenario,
        "group": scenario.split("/")[0],
        "verdict": verdict,
        "needs_relay": needs_relay,
    }
    r["a"] = {"local_type": "host", "remote_type": "srflx"} if verdict == "direct" else {}
    r.update(kw)
    return r


def test_same_shares_are_no_change_whatever_the_repeat_counts() -> None:
    a = [rec("m/x", "direct")] * 3
    b = [rec("m/x", "direct")] * 5
    assert compare(a, b) == []
    assert format_changes([], "A", "B") == "no cell changed between A and B"


def test_changed_verdict_needs_relay_and_presence_with_counts() -> None:
    a = [rec("m/x", "direct"), rec("m/x", "direct"), rec("m/y", "direct"), rec("m/gone", "relay", True)]
    b = [
        rec("m/x", "direct"),
        rec("m/x", "relay", True, relay_side="a"),
        rec("m/y", "direct"),
        rec("m/new", "failed"),
    ]
    changes = compare(a, b)
    assert [(c.cell, c.aspect, c.before, c.after) for c in changes] == [
        ("m/gone", "presence", "present", "-"),
        ("m/new", "presence", "-", "present"),
        ("m/x", "verdict", "direct 2", "direct 1/relay 1"),
        ("m/x", "first_verdict", "direct 2", "direct 1/relay 1"),
        ("m/x", "needs_relay", "false 2", "false 1/true 1"),
        ("m/x", "pair", "host -> srflx 2", "host -> srflx 1/none 1"),
    ]
    text = format_changes(changes, "A", "B")
    assert text.splitlines()[0].split() == ["cell", "aspect", "A", "B"]
    assert text.endswith("3 cell(s) changed")


def test_population_cells_pool_by_nat_pair() -> None:
    a = [
        rec("population/0001__open__symmetric", "direct", group="population", nat_a="open", nat_b="symmetric")
    ]
    b = [
        rec("population/0007__open__symmetric", "direct", group="population", nat_a="open", nat_b="symmetric")
    ]
    assert compare(a, b) == []


def test_html_escapes_and_lists_changes(tmp_path: Path) -> None:
    changes = compare([rec("m/<x>", "direct")], [rec("m/<x>", "failed")])
    path = tmp_path / "cmp.html"
    write_html(changes, "A", "B", path)
    html = path.read_text()
    assert "m/&lt;x&gt;" in html and "<x>" not in html and "1 cell(s) changed" in html


def _relayed(scenario: str, local: str, remote: str) -> dict[str, Any]:
    return rec(scenario, "relay", True, a={"local_type": local, "remote_type": remote})


def test_pairs_tell_a_path_to_one_relay_from_relay_to_relay() -> None:
    """Issue 17: `host -> relay` (a reaches b's relay directly) is not `relay <-> relay`."""
    assert pair_label(_relayed("m/x", "host", "relay")) == "host -> relay"
    assert pair_label(_relayed("m/x", "relay", "relay")) == "relay <-> relay"
    assert pair_label(rec("m/x", "failed")) == "none"
    (change,) = compare([_relayed("m/x", "host", "relay")], [_relayed("m/x", "relay", "relay")])
    assert (change.aspect, change.before, change.after) == ("pair", "host -> relay 1", "relay <-> relay 1")


def test_connect_and_call_aspects() -> None:
    held = rec("t/x", "direct", call={"outcome": "held"})
    dropped = rec("t/x", "direct", call={"outcome": "dropped"})
    assert [(c.aspect, c.before, c.after) for c in compare([held], [dropped])] == [
        ("call", "held 1", "dropped 1")
    ]
    aspects = {c.aspect for c in compare([rec("m/y", "direct")], [rec("m/y", "failed")])}
    assert {"verdict", "connect", "pair"} <= aspects and "needs_relay" not in aspects


def test_fail_on_only_the_aspects_asked_for() -> None:
    changes = compare(
        [rec("m/x", "direct")], [rec("m/x", "direct", a={"local_type": "srflx", "remote_type": "srflx"})]
    )
    assert [c.aspect for c in changes] == ["pair"]  # a nomination race, not a regression
    assert failing(changes, parse_aspects("needs_relay,connect")) == []
    assert failing(changes, parse_aspects("pair")) == changes
    text = format_changes(changes, "A", "B", ("needs_relay", "connect"))
    assert text.endswith("1 cell(s) changed; 0 change(s) in needs_relay, connect") and "FAIL" not in text
    with pytest.raises(ValueError, match="unknown aspect 'winner'"):
        parse_aspects("verdict,winner")


def test_cli_fail_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_results(a, [rec("m/x", "direct", schema_version=2)])
    write_results(
        b, [rec("m/x", "relay", True, schema_version=2, a={"local_type": "host", "remote_type": "relay"})]
    )
    assert main(["compare", str(a), str(b), "--fail-on", "call"]) == 0
    assert main(["compare", str(a), str(b), "--fail-on", "needs_relay,connect"]) == 1
    out = capsys.readouterr().out
    marked = [line.split()[1] for line in out.splitlines() if line.endswith("FAIL")]
    assert marked == ["needs_relay"] and "1 change(s) in needs_relay, connect" in out
    assert main(["compare", str(a), str(b), "--fail-on", "nope"]) == 2
    assert "netsim: error: --fail-on: unknown aspect 'nope'" in capsys.readouterr().err
