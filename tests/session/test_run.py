"""Sessions: real pairings through emulated NATs and coturn (root), and the peer configuration they use."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from netsim.lab.topology import RELAY_ADDRESS
from netsim.peers.launcher import Launcher
from netsim.peers.protocol import IceServer, PeerConfig
from netsim.session.configs import peer_configs
from netsim.session.options import SessionOptions
from netsim.session.run import run_session


def test_peer_configs_are_whole_and_follow_the_roles() -> None:
    def cfgs(glare: bool, first: str = "a") -> dict[str, PeerConfig]:
        opts = SessionOptions(policy="relay", glare=glare, glare_first=first, deadline_s=7.0, media=True)  # type: ignore[arg-type]
        servers: list[IceServer] = [{"urls": "stun:s"}]
        return peer_configs(
            opts,
            {"a": "a-1", "b": "b-1"},
            signaling_url="ws://s",
            tokens={"a": "ta", "b": "tb"},
            ice_servers={"a": servers, "b": servers},
            ca_file=None,
        )

    a, b = cfgs(False)["a"], cfgs(False)["b"]
    assert (a.polite, a.offer, b.polite, b.offer) == (False, True, True, False)
    assert (a.user, a.target, b.user, b.target, a.token) == ("a-1", "b-1", "b-1", "a-1", "ta")
    assert (a.policy, a.deadline_s, a.media, a.ice_servers) == ("relay", 7.0, True, ({"urls": "stun:s"},))
    assert PeerConfig.from_json(json.dumps(a.to_json())) == a  # every key, as the protocol says
    assert cfgs(True)["a"].offer and cfgs(True)["b"].offer
    assert (cfgs(True, "b")["a"].offer_delay_s, cfgs(True, "b")["b"].offer_delay_s) == (0.5, 0.0)
    assert (cfgs(True, "a")["a"].offer_delay_s, cfgs(True, "a")["b"].offer_delay_s) == (0.0, 0.5)


def test_ice_restart_is_asked_for_only_when_both_stacks_have_it() -> None:
    def restart(peer_a: str, peer_b: str) -> tuple[bool, bool]:
        cfgs = peer_configs(
            SessionOptions(peer_a=peer_a, peer_b=peer_b),
            {"a": "a-1", "b": "b-1"},
            signaling_url="ws://s",
            tokens={"a": "ta", "b": "tb"},
            ice_servers={"a": [], "b": []},
            ca_file=None,
        )
        return cfgs["a"].restart, cfgs["b"].restart

    assert (
        restart("pion", "pion") == restart("pion", "chromium") == restart("chromium", "pion") == (True, True)
    )
    assert restart("chromium", "chromium") == (True, True)
    assert restart("pion", "aiortc") == restart("exec:./mine", "pion") == (False, False)


# --- real sessions ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def launcher() -> Iterator[Launcher]:
    with Launcher() as launcher:
        launcher.wait_ready()
        yield launcher


def _session(nat_a: str, nat_b: str, launcher: Launcher, **kwargs: Any) -> dict[str, Any]:
    from netsim.lab.lab import Lab
    from netsim.lab.topology import standard_topology

    kwargs.setdefault("deadline_s", 10.0)  # generous: these tests assert outcomes, not speed
    with Lab(standard_topology(nat_a, nat_b)) as lab:
        return run_session(lab, SessionOptions(**kwargs), launcher=launcher)


def _check_connected(rec: dict[str, Any]) -> None:
    print("\n" + json.dumps(rec, indent=1, default=str))  # shown by pytest when an assertion below fails
    print({k: rec[k] for k in ("needs_relay", "needs_relay_run", "reason")})
    assert rec["verdict"] != "failed", rec["reason"]
    for side in ("a", "b"):
        peer = rec[side]
        assert peer["state"] == "connected"
        assert peer["local_type"] in ("host", "relay") and peer["remote_type"] in (
            "host",
            "srflx",
            "prflx",
            "relay",
        )
        assert peer["candidates"]["local"] and peer["candidates"]["remote"]
        assert peer["echo"] == {"sent": 5, "received": 5}, peer["echo"]
    assert {rec["a"]["role"], rec["b"]["role"]} == {"controlling", "controlled"}
    assert rec["connect_s"] is not None and rec["connect_s"] < 10
    assert rec["timings"]["first_echo_s"] is not None and rec["timings"]["rtt_ms"] is not None


def _connects_directly(rec: dict[str, Any]) -> bool:
    """A direct path was seen: in the run itself, or in the relay-less rerun when a relay won the race.

    aioice nominates the first pair that works; with a TURN server in reach a relay pair sometimes beats a
    hole-punched one (more often under load), which is the "won is not needed" case of the issue.
    """
    second = rec["needs_relay_run"]
    return rec["verdict"] == "direct" or (rec["verdict"] == "relay" and second["verdict"] == "direct")


root = pytest.mark.root


@root
@pytest.mark.usefixtures("no_leftovers")
def test_full_cone_x_symmetric_connects_directly(launcher: Launcher) -> None:
    rec = _session("full-cone", "symmetric", launcher)
    _check_connected(rec)
    assert _connects_directly(rec) and rec["needs_relay"] is False
    if rec["verdict"] == "direct":  # the symmetric side is only known by its checks: peer-reflexive
        assert "prflx" in (rec["a"]["remote_type"], rec["b"]["remote_type"])


@root
@pytest.mark.usefixtures("no_leftovers")
def test_symmetric_x_symmetric_needs_and_uses_a_relay(launcher: Launcher) -> None:
    rec = _session("symmetric", "symmetric", launcher, deadline_s=5.0)
    _check_connected(rec)
    assert rec["verdict"] == "relay" and rec["relay_side"] in ("a", "b", "both")
    # Usually one side sends from its relay; sometimes each sends from its host to the other's relay.
    peers = (rec["a"], rec["b"])
    relay_ends = [p["local"] for p in peers if p["local_type"] == "relay"]
    relay_ends += [p["remote"] for p in peers if p["remote_type"] == "relay"]
    assert relay_ends and all(end.rsplit(":", 1)[0] == RELAY_ADDRESS for end in relay_ends)
    for p in peers:
        assert p["turn_transport"] == ("udp" if p["local_type"] == "relay" else None)
    assert rec["needs_relay"] is True
    assert rec["needs_relay_run"]["verdict"] == "failed"


@root
@pytest.mark.usefixtures("no_leftovers")
def test_port_restricted_cones_connect_directly(launcher: Launcher) -> None:
    rec = _session("port-restricted-cone", "port-restricted-cone", launcher)
    _check_connected(rec)
    assert _connects_directly(rec) and rec["needs_relay"] is False
    if rec["verdict"] == "direct":
        assert rec["a"]["remote_type"] in ("srflx", "prflx") and rec["b"]["remote_type"] in ("srflx", "prflx")


@root
@pytest.mark.usefixtures("no_leftovers")
def test_udp_blocked_connects_through_turn_over_tcp_443(launcher: Launcher) -> None:
    rec = _session("udp-blocked", "port-restricted-cone", launcher, turn="tcp", needs_relay=False)
    _check_connected(rec)
    assert rec["verdict"] == "relay" and rec["relay_side"] in ("a", "both")
    assert rec["a"]["local_type"] == "relay" and rec["a"]["turn_transport"] == "tcp"
    assert rec["a"]["ice_urls"][-1].endswith(":443?transport=tcp")


@root
@pytest.mark.usefixtures("no_leftovers")
@pytest.mark.parametrize("turn", ["udp", "tls"])
def test_relay_only_policy_relays(launcher: Launcher, turn: str) -> None:
    rec = _session("full-cone", "full-cone", launcher, turn=turn, policy="relay")
    _check_connected(rec)
    assert rec["verdict"] == "relay" and rec["relay_side"] == "both"
    for side in ("a", "b"):
        assert rec[side]["local_type"] == "relay" and rec[side]["remote_type"] == "relay"
        assert rec[side]["turn_transport"] == turn
        assert all("typ relay" in c for c in rec[side]["candidates"]["local"])
    assert rec["needs_relay"] is False  # the relay-less run of two full cones connects directly


@root
@pytest.mark.usefixtures("no_leftovers")
@pytest.mark.parametrize("first", ["a", "b"])
def test_glare_resolves_ten_times_in_a_row(launcher: Launcher, first: str) -> None:
    """Both peers offer; b (polite) rolls back whichever offer is sent first, a (impolite) never does."""
    from netsim.lab.lab import Lab
    from netsim.lab.topology import standard_topology

    with Lab(standard_topology("port-restricted-cone", "full-cone")) as lab:
        for _ in range(10):
            opts = SessionOptions(glare=True, glare_first=first, needs_relay=False, deadline_s=10.0)
            rec = run_session(lab, opts, launcher=launcher)
            _check_connected(rec)
            neg_a, neg_b = rec["a"]["negotiation"], rec["b"]["negotiation"]
            assert neg_b["rollbacks"] == 1 and neg_a["rollbacks"] == 0, (neg_a, neg_b)
            assert neg_a["offerer"] and not neg_b["offerer"]
            assert neg_a["ignored_offers"] == (1 if first == "b" else 0)
            assert neg_b["offers_sent"] == (1 if first == "b" else 0)
            assert rec["a"]["role"] == "controlling"


@root
@pytest.mark.usefixtures("no_leftovers")
def test_unconnectable_pairing_fails_at_the_deadline(launcher: Launcher) -> None:
    """No relay and two symmetric NATs: both peers give up at the deadline, nobody waits for aioice."""
    t0 = time.monotonic()
    rec = _session("symmetric", "symmetric", launcher, turn="none", deadline_s=3.0)
    elapsed = time.monotonic() - t0
    assert rec["verdict"] == "failed" and rec["needs_relay"] is True
    assert "not connected within 3 s" in rec["reason"]
    assert rec["a"]["state"] == rec["b"]["state"] == "failed"
    assert rec["a"]["candidates"]["remote"] and rec["b"]["candidates"]["remote"]  # negotiation did happen
    assert elapsed < 3.0 + 6.0, elapsed  # lab build, peers' close, process exit


@root
@pytest.mark.usefixtures("no_leftovers")
def test_synthetic_media_flows_both_ways(launcher: Launcher) -> None:
    rec = _session("full-cone", "port-restricted-cone", launcher, media=True, glare=True)
    _check_connected(rec)
    for side in ("a", "b"):
        assert sorted(rec[side]["media"]["received"]) == ["audio", "video"]


@root
@pytest.mark.usefixtures("no_leftovers")
def test_records_carry_no_secret(launcher: Launcher) -> None:
    """A relayed session's record holds no TURN secret, REST password or signaling secret/token."""
    from netsim.lab.lab import Lab
    from netsim.lab.topology import standard_topology
    from netsim.services.coturn import rest_password

    with Lab(standard_topology("symmetric", "symmetric")) as lab:
        rec = run_session(lab, SessionOptions(turn="udp", deadline_s=10.0), launcher=launcher)
        assert lab.coturn is not None
        secrets = [lab.coturn.secret, lab.signaling_secret]
    assert rec["verdict"] == "relay"
    text = json.dumps(rec)
    for secret in secrets:
        assert secret not in text
    assert "token=" not in text and "credential" not in text
    users = {
        line.split("user <")[1].split(">")[0]
        for line in (rec["coturn_log"] or "").splitlines()
        if "user <" in line
    }
    assert users  # coturn logged the REST usernames it saw
    for user in users:  # the REST password of every user coturn saw is derived from the secret
        assert rest_password(secrets[0], user) not in text
