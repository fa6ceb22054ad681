"""Network events: parsing, checks against a topology, the timeline (no root); in a real lab (root)."""

from __future__ import annotations

import socket

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
    monkeypatch.setattr(events, "up", lambda lab, node: {"interface": "wan"})

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


def test_down_ruleset_drops_both_ways_before_conntrack() -> None:
    text = events.down_ruleset("wan")
    assert 'iifname "wan" drop' in text and text.count('oifname "wan" drop') == 2
    assert "priority raw - 10" in text and "fwd" not in text  # fwd is an nft keyword
    several = events.down_ruleset(["eth0", "eth1"], events.MOVE_TABLE)
    assert f"table inet {events.MOVE_TABLE}" in several and 'iifname { "eth0", "eth1" } drop' in several


@pytest.mark.root
def test_down_and_up_in_a_real_router() -> None:
    from netsim.lab.lab import Lab
    from netsim.lab.netns import run

    with Lab(standard_topology("port-restricted-cone", "full-cone"), coturn=False) as lab:
        events.down(lab, "nat-a")
        listed = run(lab.netns("nat-a"), ["nft", "list", "tables"], capture_output=True, text=True).stdout
        assert events.DOWN_TABLE in listed
        events.up(lab, "nat-a")
        listed = run(lab.netns("nat-a"), ["nft", "list", "tables"], capture_output=True, text=True).stdout
        assert events.DOWN_TABLE not in listed
        flushed = events.flush(lab, "nat-b")
        assert "map mapping" in flushed["flushed"]


@pytest.mark.root
def test_nat_event_changes_the_routers_behaviour_live() -> None:
    """A `nat` event loads another preset into a running router: the mapping a probe measures changes."""
    from netsim.lab import probe
    from netsim.lab.lab import Lab
    from netsim.vocab import APDM, EIM

    with Lab(standard_topology("port-restricted-cone", "open"), coturn=False) as lab:
        server_ips = (lab.addresses("server")[0], lab.addresses("server")[1])

        def mapping() -> str | None:
            return probe.mapping_behaviour(lab.netns("a"), lab.netns("server"), server_ips)

        assert mapping() == EIM
        assert events.change_nat(lab, "nat-a", "symmetric") == {"kind": "symmetric", "lifetime_s": 30}
        assert mapping() == APDM


@pytest.mark.root
def test_move_puts_the_host_behind_the_other_site() -> None:
    """After a move the host has only its new LAN address, its traffic leaves through the new site's NAT, and
    a socket bound to the old address (as aiortc's ICE sockets are) can send nothing any more; it can move
    again."""
    import contextlib

    from netsim.lab.lab import Lab
    from netsim.lab.netns import run, socket_in
    from netsim.lab.topology import from_dict

    sites = [{"name": f"nat-{h}", "nat": "port-restricted-cone", "hosts": [h]} for h in "abc"]
    with Lab(from_dict({"site": sites}), coturn=False) as lab, contextlib.ExitStack() as stack:
        server = stack.enter_context(socket_in(lab.netns("server")))
        server.bind((lab.address("server"), 0))
        server.settimeout(3)
        to = server.getsockname()

        def seen_from(sock: socket.socket) -> str:
            sock.sendto(b"x", to)
            return str(server.recvfrom(16)[1][0])

        stale = stack.enter_context(socket_in(lab.netns("a")))
        stale.bind((lab.address("a"), 0))
        assert seen_from(stale) == lab.address("nat-a")

        detail = events.move(lab, "a", "nat-c")
        assert (detail["address"], detail["gateway"]) == ("10.3.0.200", "10.3.0.1")
        assert 0 <= detail["cut_s"] <= detail["gone_s"] <= detail["took_s"] < 5
        tables = run(lab.netns("a"), ["nft", "list", "tables"], capture_output=True, text=True).stdout
        assert events.MOVE_TABLE not in tables  # the cut lasts only until the old link is gone
        listed = run(lab.netns("a"), ["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
        assert [line.split()[3] for line in listed.splitlines() if " lo " not in line] == ["10.3.0.200/24"]
        assert seen_from(stack.enter_context(socket_in(lab.netns("a")))) == lab.address("nat-c")
        with pytest.raises(OSError):
            stale.sendto(b"x", to)

        # And on again (cellular back to another Wi-Fi): the link of the first move goes the same way.
        again = events.move(lab, "a", "nat-b", index=1)
        assert (again["address"], again["gateway"]) == ("10.2.0.201", "10.2.0.1")
        listed = run(lab.netns("a"), ["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
        assert [line.split()[3] for line in listed.splitlines() if " lo " not in line] == ["10.2.0.201/24"]
        assert seen_from(stack.enter_context(socket_in(lab.netns("a")))) == lab.address("nat-b")
