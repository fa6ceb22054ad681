"""The expectations table and the mismatch check (no root)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from netsim.lab.topology import standard_topology
from netsim.suite.catalog import catalog
from netsim.suite.expectations import (
    Expectation,
    ExpectationError,
    MissingExpectation,
    expectation,
    from_entry,
    load_expectations,
    mismatch,
)
from netsim.suite.scenario import Scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


@pytest.fixture(scope="module")
def table() -> dict[str, Any]:
    return load_expectations(SCENARIOS / "expected.toml")


def test_every_scenario_has_an_expectation(table: dict[str, Any]) -> None:
    for scn in catalog(SCENARIOS):
        exp = expectation(scn, table)
        # A session pairing is checked for needs_relay; a held call (timeline group) for its outcome.
        assert exp.needs_relay is not None or (scn.group == "timeline" and exp.call is not None), scn.id


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
def test_matrix_expectations_follow_libwebrtc(table: dict[str, Any], a: str, b: str, needs: bool) -> None:
    by_id = {s.id: s for s in catalog(SCENARIOS)}
    with_turn = expectation(by_id[f"matrix-turn/{a}__{b}"], table)
    without = expectation(by_id[f"matrix-noturn/{a}__{b}"], table)
    assert (with_turn.needs_relay, with_turn.connect, with_turn.verdict) == (
        needs,
        True,
        "relay" if needs else None,
    )
    assert (without.needs_relay, without.connect, without.verdict) == (
        needs,
        not needs,
        "failed" if needs else None,
    )


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
    exp = Expectation(needs_relay=True, verdict="relay", source="matrix[x][y]")
    assert mismatch(_record(), exp) == (
        "                expected     actual\n"
        "needs_relay     True         False\n"
        "verdict         relay        direct\n"
        "(expectation from matrix[x][y]; selected pairs a: host->srflx / b: host->prflx; reason: None)"
    )
    assert mismatch(_record(verdict="relay", needs_relay=True), exp) is None


def test_mismatch_checks_connect_and_turn_transport() -> None:
    exp = Expectation(needs_relay=True, turn_transport="tls")
    relayed = _record(verdict="relay", needs_relay=True, a={"local_type": "relay", "turn_transport": "tcp"})
    assert "turn_transport  tls          ['None', 'tcp']" in (mismatch(relayed, exp) or "")
    failed = _record(verdict="failed", needs_relay=None)
    assert "connects        True         False" in (mismatch(failed, Expectation(needs_relay=None)) or "")


def test_missing_expectation_is_an_error_naming_the_scenario() -> None:
    scn = Scenario("mine/x", "mine", standard_topology("open", "open"), "open", "open")
    with pytest.raises(ExpectationError, match=r'no entry for scenario "mine/x"'):
        expectation(scn, {"matrix": {"kinds": [], "needs_relay": []}})


def test_bad_expectation_entries_name_the_key() -> None:
    scn = catalog(SCENARIOS)[0]
    with pytest.raises(ExpectationError, match=rf"scenario.\"{scn.id}\".verdict: unknown verdict 'teleport'"):
        expectation(scn, {"scenario": {scn.id: {"verdict": "teleport"}}})
    with pytest.raises(ExpectationError, match=r"\.colour: unknown key"):
        expectation(scn, {"scenario": {scn.id: {"colour": 1}}})


def test_unreadable_table_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ExpectationError, match=r"expectations file not found: .*none.toml"):
        load_expectations(tmp_path / "none.toml")


def test_call_expectations_one_outcome_or_any_of_several() -> None:
    held = _record(call={"outcome": "held"})
    recovered = _record(call={"outcome": "recovered"})
    one = from_entry({"call": "held"}, "t.toml: expect")
    assert mismatch(held, one) is None
    assert "call            held         recovered" in (mismatch(recovered, one) or "")
    either = from_entry({"call": ["held", "recovered"]}, "t.toml: expect")
    assert mismatch(held, either) is None and mismatch(recovered, either) is None
    assert "held|recovered" in (mismatch(_record(call={"outcome": "dropped"}), either) or "")
    with pytest.raises(ExpectationError, match=r"t.toml: expect.call: unknown call outcome 'gone'"):
        from_entry({"call": "gone"}, "t.toml: expect")
    with pytest.raises(ExpectationError, match=r"unknown call outcome 'held\|gone'"):
        from_entry({"call": ["held", "gone"]}, "t.toml: expect")


def test_expectations_follow_the_scenario_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 17: run from another directory, shipped scenarios turned `unchecked` (exit 0)."""
    from netsim.suite.expectations import SHIPPED_TABLE, beside_its_file, shipped_table
    from netsim.suite.scenario import load_scenario_file

    monkeypatch.chdir(tmp_path)  # no scenarios/ here
    assert SHIPPED_TABLE == SCENARIOS / "expected.toml" and "matrix" in shipped_table()
    shipped = beside_its_file(load_scenario_file(SCENARIOS / "double-nat-cone-cgn.toml"))
    assert shipped.expect is not None and shipped.expect.source.startswith("expected.toml: scenario.")
    mine = tmp_path / "lab" / "mine.toml"
    mine.parent.mkdir()
    mine.write_text('[[site]]\nname = "s"\nnat = "full-cone"\nhosts = ["a", "b"]\n[session]\ngroup = "g"\n')
    assert beside_its_file(load_scenario_file(mine)).expect is None  # no table beside it: unchecked
    (mine.parent / "expected.toml").write_text('[scenario."g/mine"]\nneeds_relay = false\n')
    tables: dict[Path, Any] = {}
    found = beside_its_file(load_scenario_file(mine), tables)
    assert (
        found.expect is not None
        and found.expect.needs_relay is False
        and list(tables) == [mine.parent.resolve() / "expected.toml"]
    )


def test_ipv6_matrix_cells_are_expected_by_ip_mode(table: dict[str, Any]) -> None:
    from netsim.suite.catalog import matrix

    none_dual, _, dual_dual = matrix("udp", ("symmetric",), modes=("none", "dual"))[1:]
    both = expectation(dual_dual, table)
    assert (both.needs_relay, both.connect) == (False, True)  # IPv6 on both sides: no relay needed
    one = expectation(none_dual, table)
    assert one.needs_relay is True and one.source == "matrix[symmetric][symmetric]"  # no common IPv6


def _with_site_b(scn: Scenario, site: Any) -> Scenario:
    import dataclasses

    topo = dataclasses.replace(scn.topology, sites=(scn.topology.sites[0], site))
    return dataclasses.replace(scn, topology=topo)


def test_a_clat_host_has_ipv6_and_a_blocking_ipv6_firewall_leaves_the_ipv4_oracle(
    table: dict[str, Any],
) -> None:
    import dataclasses

    from netsim.lab.fw6 import Fw6Spec
    from netsim.suite.catalog import matrix

    cells = matrix("udp", ("symmetric",), modes=("none", "dual", "clat"))
    by_modes = {(c.topology.sites[0].ipv6, c.topology.sites[1].ipv6): c for c in cells}
    assert expectation(by_modes["clat", "dual"], table).needs_relay is False  # IPv6 host pair
    assert expectation(by_modes["clat", "clat"], table).needs_relay is False
    assert expectation(by_modes["clat", "none"], table).needs_relay is True  # IPv4 via the NAT44
    dual = by_modes["dual", "dual"]
    blocked = dataclasses.replace(dual.topology.sites[1], fw6=Fw6Spec("block-udp"))
    shut = _with_site_b(dual, blocked)
    assert expectation(shut, table).needs_relay is True  # no IPv6 UDP: the IPv4 oracle
    own = dataclasses.replace(dual.topology.sites[1], fw6=Fw6Spec("custom", "mine.nft"))
    mine = _with_site_b(dual, own)
    with pytest.raises(MissingExpectation):  # a researcher's own IPv6 ruleset: no table says
        expectation(mine, table)


def test_a_family_expectation_is_checked() -> None:
    exp = from_entry({"needs_relay": False, "family": "ipv6"}, "t")
    assert mismatch({"verdict": "direct", "needs_relay": False, "families": {"won": "ipv6"}}, exp) is None
    assert "family" in str(
        mismatch({"verdict": "direct", "needs_relay": False, "families": {"won": "ipv4"}}, exp)
    )
    with pytest.raises(ExpectationError, match=r"^t\.family: unknown family 'ipv5'"):
        from_entry({"family": "ipv5"}, "t")
