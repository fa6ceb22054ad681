"""netsim.session.faults: the lab's own faults told apart from the NATs' answers (no root)."""

from __future__ import annotations

from netsim.peers.protocol import RawPeerRecord
from netsim.session import faults
from tests.peers.configs import raw_record


def peer(reason: str | None, negotiated: bool = True, stack: str = "aiortc") -> RawPeerRecord:
    return raw_record(
        stack,
        reason=reason,
        candidates={"local": ["c"], "remote": ["c"] if negotiated else []},
        ice_urls=["turn:198.18.0.2:3478"],
    )


def test_a_connected_session_is_never_an_infrastructure_failure() -> None:
    assert faults.infrastructure(peer(None), peer(None), "relay", "coturn exited (-9)") is None


def test_no_offer_through_is_the_signaling_server() -> None:
    why = faults.infrastructure(
        peer("not connected within 3 s (signaling)", False), peer(None, False), "failed", None
    )
    assert why is not None and why.startswith("signaling: no offer and answer got through")
    assert "not connected within 3 s (signaling)" in why


def test_a_browser_crash_and_a_dead_coturn_are_named() -> None:
    crashed = peer("browser crashed: Target page, context or browser has been closed", stack="chromium")
    assert faults.infrastructure(peer(None), crashed, "failed", None) == f"b: {crashed['reason']}"
    assert faults.infrastructure(peer("ICE failed"), peer("ICE failed"), "failed", "coturn exited (-9)") == (
        "coturn exited (-9)"
    )


def test_a_peer_that_broke_the_protocol_is_its_own_fault() -> None:
    """No offer got through because a's program printed garbage: not the lab's, not load's."""
    garbage = peer(
        "peer a (exec:./mine): the last stdout line is not JSON: 'x' (exited with status 0)", False
    )
    assert (
        faults.infrastructure(garbage, peer("not connected within 3 s (signaling)", False), "failed", None)
        is None
    )


def test_an_ice_failure_is_a_nat_answer() -> None:
    assert faults.infrastructure(peer("ICE failed"), peer("ICE failed"), "failed", None) is None


def test_a_dropped_call_says_why() -> None:
    call = {
        "outcome": "dropped",
        "a": {"closed": None},
        "b": {"closed": {"t": 9.0, "reason": "browser crashed: x"}},
    }
    assert faults.call_cause(call, None) == "b: browser crashed: x"
    assert faults.call_cause(call, "coturn exited (-9)") == "coturn exited (-9)"
    assert faults.call_cause({**call, "outcome": "held"}, "coturn exited (-9)") is None
    assert faults.call_cause({"outcome": "dropped", "a": {}, "b": {}}, None) is None  # e.g. a NAT event


def test_an_offer_and_answer_late_in_the_deadline_is_the_signaling_server() -> None:
    """Recorded in CI: the signaling server stopped for 15 s during a population; a pair's exchange ended at
    3.35 s of its 3.4 s deadline and ICE had no time left. Early in the deadline it is a NAT answer."""
    late, early = peer("not connected within 3.4 s"), peer("not connected within 3.4 s")
    late["states"] = [{"t": 3.3028, "what": "signaling", "state": "have-local-offer"}]
    late["states"].append({"t": 3.3469, "what": "signaling", "state": "stable"})
    early["states"] = [{"t": 0.31, "what": "signaling", "state": "stable"}]
    why = faults.infrastructure(late, early, "failed", None, 3.4)
    assert why == "signaling: a's offer and answer got through at 3.35 s of 3.4 s"
    assert faults.infrastructure(early, early, "failed", None, 3.4) is None
    assert faults.infrastructure(late, early, "failed", None) is None  # no deadline known: not judged
