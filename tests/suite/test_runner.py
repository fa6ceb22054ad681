"""netsim.suite.runner: expected session durations and the order a run starts its sessions in (no root)."""

from __future__ import annotations

from pathlib import Path

from netsim.suite.catalog import firewall, matrix, pairing
from netsim.suite.expectations import Expectation, load_expectations
from netsim.suite.runner import BROWSER_S, SESSION_S, expectation_or_none, expected_seconds, schedule
from netsim.suite.scenario import Scenario
from netsim.vocab import AIORTC, CHROMIUM, FIREFOX, NO_TURN

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
TABLE = load_expectations(SCENARIOS / "expected.toml")
PRC, SYM = "port-restricted-cone", "symmetric"


def _cost(scn_id: str, scenarios: list[Scenario]) -> float:
    scn = next(s for s in scenarios if s.id == scn_id)
    return expected_seconds(scn, expectation_or_none(scn, TABLE))


def test_a_pairing_that_needs_a_relay_waits_its_deadline() -> None:
    cells = matrix("udp")
    direct = _cost("matrix-turn/full-cone__full-cone", cells)
    relayed = _cost(f"matrix-turn/{PRC}__{SYM}", cells)
    assert direct == SESSION_S
    assert relayed == SESSION_S + 3.0  # the relay-less run fails only at the deadline


def test_a_pairing_that_fails_waits_its_deadline_even_without_the_relay_less_run() -> None:
    cells = matrix(NO_TURN)
    assert _cost(f"matrix-noturn/{SYM}__{SYM}", cells) == SESSION_S + 3.0
    assert _cost("matrix-noturn/open__open", cells) == SESSION_S
    scn = pairing("x/fail", "x", SYM, SYM, turn=NO_TURN, needs_relay=False)
    assert expected_seconds(scn, Expectation(None, connect=False)) == SESSION_S + 3.0
    # Without the relay-less run, a pairing that connects waits for nothing, whatever a relay would need.
    quiet = pairing("x/ok", "x", PRC, SYM, needs_relay=False)
    assert expected_seconds(quiet, Expectation(True, connect=True)) == SESSION_S


def test_browsers_holds_and_unknown_expectations_add_up() -> None:
    chromium = pairing("x/c", "x", "open", "open", peer_a=CHROMIUM, peer_b=CHROMIUM)
    assert expected_seconds(chromium, Expectation(False)) == SESSION_S + 2 * BROWSER_S[CHROMIUM]
    mixed = pairing("x/f", "x", "open", "open", peer_a=FIREFOX, peer_b=AIORTC)
    assert expected_seconds(mixed, Expectation(False)) == SESSION_S + BROWSER_S[FIREFOX]
    assert BROWSER_S[FIREFOX] > BROWSER_S[CHROMIUM]  # a Firefox starts and closes slower
    held = pairing("x/h", "x", "open", "open", hold_s=30)
    assert expected_seconds(held, Expectation(False)) == SESSION_S + 30
    assert expected_seconds(held, None) == SESSION_S + 30 + 3.0  # unknown: assume it waits


def test_schedule_starts_the_longest_first() -> None:
    scenarios = [*matrix("udp"), *firewall()]
    tasks = schedule(scenarios, 2, TABLE)
    assert len(tasks) == 2 * len(scenarios)
    first = [scn.id for scn, _ in tasks[:4]]
    assert (
        first
        == ["firewall/udp-blocked__udp-blocked__tcp"] * 2 + ["firewall/udp-blocked__udp-blocked__tls"] * 2
    )
    costs = [expected_seconds(scn, expectation_or_none(scn, TABLE)) for scn, _ in tasks]
    assert costs == sorted(costs, reverse=True)
    assert {scn.id for scn, _ in tasks[-50:]} <= {s.id for s in matrix("udp")}


def test_schedule_without_a_table_orders_by_deadline() -> None:
    scenarios = [*matrix("udp", kinds=("open",)), *firewall()]
    tasks = schedule(scenarios, 1)
    assert [scn.options.deadline_s for scn, _ in tasks] == [14.0, 14.0, 9.0, 9.0, 3.0]
