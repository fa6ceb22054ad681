"""The call section's outcome rules (pure logic, no root)."""

from __future__ import annotations

from netsim.peers.protocol import RawHoldEcho, RawPeerRecord
from netsim.session.call import Judged, call_outcome, call_section, side_outcome
from tests.peers.configs import raw_record


def echoes(pattern: str) -> list[RawHoldEcho]:
    """'1' answered (0.01 s later), '0' lost; one per second from t = 10."""
    return [
        {"seq": i, "sent": 10.0 + i, "answered": 10.01 + i if c == "1" else None}
        for i, c in enumerate(pattern)
    ]


def test_no_loss_is_held() -> None:
    assert side_outcome(echoes("11111"), closed=False)["outcome"] == "held"


def test_one_lost_echo_is_tolerated() -> None:
    out = side_outcome(echoes("11011"), closed=False)
    assert out["outcome"] == "held" and out["first_lost"] == 12.0


def test_outage_then_answers_is_recovered_from_first_lost_send_to_first_answer() -> None:
    out = side_outcome(echoes("1100011"), closed=False)
    assert out["outcome"] == "recovered"
    assert out["recovery_s"] == 3.01  # sent 12.0, next answered at 15.01
    assert out["back"] == 15.01


def test_outage_to_the_end_is_dropped() -> None:
    assert side_outcome(echoes("11000"), closed=False)["outcome"] == "dropped"
    assert side_outcome(echoes("1100110000"), closed=False)["outcome"] == "dropped"


def test_closed_connection_is_dropped() -> None:
    assert side_outcome(echoes("11111"), closed=True)["outcome"] == "dropped"


def test_session_outcome_takes_the_worse_side() -> None:
    held: Judged = {"outcome": "held", "recovery_s": None, "first_lost": None, "back": None}
    rec: Judged = {"outcome": "recovered", "recovery_s": 2.5, "first_lost": None, "back": None}
    dropped: Judged = {"outcome": "dropped", "recovery_s": None, "first_lost": None, "back": None}
    assert call_outcome([held, rec]) == ("recovered", 2.5)
    assert call_outcome([rec, dropped]) == ("dropped", None)
    assert call_outcome([held, held]) == ("held", None)


def _peer(offerer: bool, pattern: str) -> RawPeerRecord:
    call = {"hold_s": 7.0, "interval_s": 1.0, "echoes": echoes(pattern), "sent": len(pattern)}
    call.update(answered=pattern.count("1"), closed=None, restart="unsupported", restarts=[])
    return raw_record(
        state="connected",
        marks={"start": 0.0, "offer": 9.0},
        negotiation={"offerer": offerer},
        states=[
            {"t": 9.5, "what": "ice", "state": "completed"},
            {"t": 9.6, "what": "channel", "state": "open"},
        ],
        call=call,
        pairs=[],
    )


def test_section_times_are_from_the_offer() -> None:
    a, b = _peer(True, "1100011"), _peer(False, "1111111")
    event = {"at_s": 2.0, "action": "down", "node": "nat-a", "t": 12.0, "detail": None, "error": None}
    section = call_section(a, b, hold_s=7, interval_s=1, connected=10.0, events=[event], keepalive=None)
    assert section["outcome"] == "recovered" and section["recovery_s"] == 3.01
    assert section["connected_s"] == 1.0 and section["first_lost_s"] == 3.0
    assert section["events"][0]["t"] == 3.0
    assert section["a"]["echoes"][2] == [3.0, None]
    assert section["a"]["states"] == [
        {"t": 0.5, "what": "ice", "state": "completed"}
    ]  # channel notes left out
