"""Session options: validated on construction, one connect-deadline rule (pure logic)."""

from __future__ import annotations

import pytest

from netsim.session.options import OptionsError, SessionOptions, connect_deadline, from_table


def test_connect_deadline_grows_with_udp_blocked_sides() -> None:
    assert [connect_deadline(n) for n in (0, 1, 2)] == [3.0, 9.0, 14.0]
    assert [connect_deadline(n, "pion") for n in (0, 1)] == [5.0, 11.0]
    assert connect_deadline(0, "chromium") == connect_deadline(0, "exec:./mine") == 3.0


def test_defaults_are_valid_and_serialise() -> None:
    assert SessionOptions().as_dict() == {
        "host_a": "a",
        "host_b": "b",
        "peer_a": "aiortc",
        "peer_b": "aiortc",
        "turn": "udp",
        "policy": "all",
        "glare": False,
        "glare_first": "a",
        "hide_host": False,
        "media": False,
        "deadline_s": 3.0,
        "needs_relay": True,
        "settle_s": 1.0,
        "hold_s": 0.0,
        "interval_s": 1.0,
        "events": [],
        "ipv4_only_a": False,
        "ipv4_only_b": False,
    }


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"turn": "carrier-pigeon"},
            r"turn: unknown value 'carrier-pigeon' \(choose from udp, tcp, tls, none\)",
        ),
        ({"policy": "some"}, r"policy: unknown value 'some'"),
        ({"glare_first": "c"}, r"glare_first: unknown value 'c'"),
        ({"glare": "yes"}, r"glare: expected true or false, got 'yes'"),
        ({"deadline_s": "soon"}, r"deadline_s: expected a number of seconds, got 'soon'"),
        ({"deadline_s": 0}, r"deadline_s: must be > 0"),
        ({"deadline_s": -1.0}, r"deadline_s: must be > 0"),
        ({"deadline_s": True}, r"deadline_s: expected a number"),
        ({"host_a": ""}, r"host_a: expected a host name"),
        (
            {"peer_b": "opera"},
            r"peer_b: unknown value 'opera' \(choose from aiortc, chromium, firefox, pion or exec:COMMAND\)",
        ),
        ({"settle_s": -1}, r"settle_s: expected seconds from 0 to 60, got -1"),
        ({"ipv4_only_b": "yes"}, r"ipv4_only_b: expected true or false, got 'yes'"),
        (
            {"ipv4_only_a": True, "peer_a": "firefox"},
            r"ipv4_only_a: only a chromium peer has an IPv4-only twin, peer_a is firefox",
        ),
        ({"ipv4_only_b": True}, r"ipv4_only_b: only a chromium peer has an IPv4-only twin, peer_b is aiortc"),
    ],
)
def test_bad_values_are_refused_naming_the_option(changes: dict[str, object], message: str) -> None:
    with pytest.raises(OptionsError, match=message):
        SessionOptions(**changes)  # type: ignore[arg-type]


def test_replace_validates_again() -> None:
    opts = SessionOptions(turn="tcp")
    assert opts.replace(turn="none").turn == "none" and opts.turn == "tcp"
    with pytest.raises(OptionsError, match="turn"):
        opts.replace(turn="smoke")


def test_from_table_maps_host_keys_and_keeps_defaults() -> None:
    opts = from_table({"a": "x", "b": "y", "glare": True, "group": "ignored"}, {"deadline_s": 9.0})
    assert (opts.host_a, opts.host_b, opts.glare, opts.deadline_s) == ("x", "y", True, 9.0)


def test_ipv4_only_twin_is_a_chromium_option_per_side() -> None:
    opts = SessionOptions(peer_b="chromium", ipv4_only_b=True)
    assert opts.as_dict()["ipv4_only_b"] is True and opts.as_dict()["ipv4_only_a"] is False
    assert from_table({"peer_a": "chromium", "ipv4_only_a": True}).ipv4_only_a is True
