"""Comparing two runs cell by cell (no root)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from netsim.results.compare import compare, format_changes, write_html


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
        ("m/x", "needs_relay", "false 2", "false 1/true 1"),
        ("m/x", "pair", "direct host/srflx 2", "direct host/srflx 1/relay(a) 1"),
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
