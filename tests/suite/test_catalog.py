"""The scenario catalog, the expectations table and the mismatch check (no root)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from netsim.suite import catalog as suite
from netsim.lab.topology import TopologyError


def test_catalog_covers_the_issue_and_ids_are_unique() -> None:
    cat = suite.catalog()
    ids = [s.id for s in cat]
    assert len(ids) == len(set(ids))
    groups = {s.group for s in cat}
    assert {
        "matrix-turn",
        "matrix-noturn",
        "firewall",
        "lan",
        "hairpin",
        "double-nat",
        "policy",
        "glare",
    } <= groups
    assert sum(s.group == "matrix-turn" for s in cat) == 25
    assert sum(s.group == "matrix-noturn" and s.turn == "none" for s in cat) == 25
    assert {s.turn for s in cat if s.group == "firewall"} == {"tcp", "tls"}
    assert {s.glare_first for s in cat if s.glare} == {"a", "b"}


def test_every_scenario_has_an_expectation() -> None:
    table = suite.load_expectations()
    for scn in suite.catalog():
        exp = suite.expectation(scn, table)
        assert exp.needs_relay is not None, scn.id


@pytest.mark.parametrize(
    ("a", "b", "needs"),
    [
        ("open", "symmetric", False),
        ("full-cone", "symmetric", False),
        ("restricted-cone", "symmetric", False),
        ("port-restricted-cone", "symmetric", True),
        ("symmetric", "port-restricted-cone", True),
        ("symmetric", "symmetric", True),
        ("port-restricted-cone", "port-restricted-cone", False),
    ],
)
def test_matrix_expectations_follow_libwebrtc(a: str, b: str, needs: bool) -> None:
    table = suite.load_expectations()
    by_id = {s.id: s for s in suite.catalog()}
    with_turn = suite.expectation(by_id[f"matrix-turn/{a}__{b}"], table)
    without = suite.expectation(by_id[f"matrix-noturn/{a}__{b}"], table)
    assert with_turn.needs_relay is needs and with_turn.connect is True
    assert without.connect is (not needs)


def _record(**kw: Any) -> dict[str, Any]:
    base = {
        "verdict": "direct",
        "needs_relay": False,
        "reason": None,
        "a": {"local_type": "host", "remote_type": "srflx", "turn_transport": None},
        "b": {"local_type": "host", "remote_type": "prflx", "turn_transport": None},
    }
    base.update(kw)
    return base


def test_mismatch_shows_expectation_and_outcome_side_by_side() -> None:
    exp = suite.Expectation(needs_relay=True, verdict="relay", source="matrix[x][y]")
    text = suite.mismatch(_record(), exp)
    assert text is not None
    assert "needs_relay" in text and "True" in text and "False" in text
    assert "verdict" in text and "relay" in text and "direct" in text
    assert "matrix[x][y]" in text and "host->srflx" in text
    assert suite.mismatch(_record(verdict="relay", needs_relay=True), exp) is None


def test_mismatch_checks_connect_and_turn_transport() -> None:
    exp = suite.Expectation(needs_relay=True, turn_transport="tls")
    relayed = _record(verdict="relay", needs_relay=True, a={"local_type": "relay", "turn_transport": "tcp"})
    assert "turn_transport" in (suite.mismatch(relayed, exp) or "")
    failed = _record(verdict="failed", needs_relay=None)
    assert "connects" in (suite.mismatch(failed, suite.Expectation(needs_relay=None)) or "")


def test_missing_expectation_is_an_error_naming_the_scenario(tmp_path: Path) -> None:
    scn = suite.Scenario("mine/x", "mine", suite.standard_topology("open", "open"), "open", "open")
    with pytest.raises(suite.ExpectationError, match='scenario "mine/x"'):
        suite.expectation(scn, {"matrix": {"kinds": [], "needs_relay": []}})


def test_bad_expectation_entries_name_the_key() -> None:
    scn = suite.catalog()[0]
    with pytest.raises(suite.ExpectationError, match="verdict"):
        suite.expectation(scn, {"scenario": {scn.id: {"verdict": "teleport"}}})
    with pytest.raises(suite.ExpectationError, match="colour"):
        suite.expectation(scn, {"scenario": {scn.id: {"colour": 1}}})


def test_scenario_file_session_table(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        'name = "mine"\n[[site]]\nname = "r1"\nnat = "symmetric"\nhosts = ["h1", "h2"]\n'
        '[session]\na = "h2"\nb = "h1"\nturn = "tcp"\ndeadline_s = 7\n'
    )
    scn = suite.load_scenario_file(path)
    assert (scn.id, scn.host_a, scn.host_b, scn.turn, scn.deadline_s) == ("mine/mine", "h2", "h1", "tcp", 7.0)
    assert scn.nat_a == "symmetric"
    path.write_text('[[site]]\nname = "r1"\nhosts = ["h1"]\n[session]\na = "nobody"\n')
    with pytest.raises(TopologyError, match="session.a: unknown host 'nobody'"):
        suite.load_scenario_file(path)
    path.write_text('[[site]]\nname = "r1"\nhosts = ["h1"]\n[session]\nspeed = 1\n')
    with pytest.raises(TopologyError, match="session.speed"):
        suite.load_scenario_file(path)


def test_population_is_deterministic_and_validated() -> None:
    mix = {"full-cone": 1.0, "symmetric": 1.0}
    one = [s.id for s in suite.population(10, mix, seed=3)]
    assert one == [s.id for s in suite.population(10, mix, seed=3)]
    assert all(s.nat_a in mix and s.nat_b in mix for s in suite.population(10, mix, seed=3))
    with pytest.raises(ValueError, match="warp"):
        suite.population(2, {"warp": 1.0}, seed=1)
    with pytest.raises(ValueError, match="size"):
        suite.population(0, mix, seed=1)
