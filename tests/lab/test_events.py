"""Network events: parsing, checks against a topology, the timeline (no root); in a real lab (root)."""

from __future__ import annotations

import pytest

from netsim.lab import events
from netsim.lab.events import Event, EventError, parse_spec
from netsim.lab.topology import standard_topology


def test_cli_form_round_trips() -> None:
    for text in (
        "3:down:nat-a:3",
        "2:flush:nat-b",
        "2.5:nat:nat-a:symmetric",
        "1:move:a:nat-b",
        "4:turn-restart",
    ):
        assert parse_spec(text).label() == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3", "expected AT:ACTION"),
        ("3:reboot:nat-a", "unknown action 'reboot'"),
        ("3:down:nat-a", "down takes 2 argument"),
        ("x:flush:nat-a", "must be numbers"),
        ("-1:flush:nat-a", "at_s: must be from 0"),
        ("3:nat:nat-a:bogus", "unknown NAT preset 'bogus'"),
        ("3:down:nat-a:0", "seconds: expected seconds > 0"),
    ],
)
def test_bad_cli_events_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(EventError, match=message):
        parse_spec(text)


def test_tables_take_only_their_action_arguments() -> None:
    ev = events.from_table({"at_s": 2, "action": "down", "node": "nat-a", "seconds": 3})
    assert ev == Event(2.0, "down", node="nat-a", seconds=3.0)
    assert ev.as_dict() == {"at_s": 2.0, "action": "down", "node": "nat-a", "seconds": 3.0}
    with pytest.raises(EventError, match=r"event\.kind: unknown key for 'down'"):
        events.from_table({"at_s": 2, "action": "down", "node": "nat-a", "seconds": 3, "kind": "open"})
    with pytest.raises(EventError, match="at_s: missing"):
        events.from_table({"action": "turn-restart"})


def test_check_against_the_topology() -> None:
    topo = standard_topology("full-cone", "symmetric")
    events.check((parse_spec("1:flush:nat-a"), parse_spec("1:down:a:2")), topo)
    for text, message in (
        ("1:flush:a", "is not a NAT router"),
        ("1:down:nat-z:1", "is not a router or host"),
        ("1:move:a:nat-a", "already in site"),
        ("1:move:z:nat-b", "is not a host"),
    ):
        with pytest.raises(EventError, match=message):
            events.check((parse_spec(text),), topo)


def test_down_is_followed_by_up_in_time_order() -> None:
    evs = (parse_spec("3:down:nat-a:3"), parse_spec("4:flush:nat-b"))
    assert [(t, a) for t, a, _ in events.steps(evs)] == [(3.0, "down"), (4.0, "flush"), (6.0, "up")]


def test_timeline_applies_on_time_and_records_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    applied: list[str] = []

    def fake_apply(lab: object, ev: Event, moves: int = 0) -> dict[str, str]:
        applied.append(ev.action)
        if ev.action == "flush":
            raise RuntimeError("conntrack missing")
        return {"ok": "yes"}

    monkeypatch.setattr(events, "apply", fake_apply)
    monkeypatch.setattr(events.actions, "up", lambda lab, node: {"interface": "wan"})

    def sleep(s: float) -> None:
        now[0] += s

    done = events.run_timeline(
        object(),  # type: ignore[arg-type]
        (parse_spec("1:down:nat-a:2"), parse_spec("2:flush:nat-b")),
        100.0,
        clock=lambda: now[0],
        sleep=sleep,
    )
    assert [(d["action"], round(d["t"], 6)) for d in done] == [
        ("down", 101.0),
        ("flush", 102.0),
        ("up", 103.0),
    ]
    assert done[1]["error"] == "RuntimeError: conntrack missing" and done[0]["error"] is None
    assert applied == ["down", "flush"]
