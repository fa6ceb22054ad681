"""One pairing in a lab: run both peers, decide the verdict, and whether a relay was needed.

"Won" is not "needed": aioice nominates the first pair that works, so a relay can win where a direct path
exists. Alongside the run, a second pair of peers negotiates the same pairing with relay candidates
unavailable (STUN only, policy all); `needs_relay` is whether that run fails. A run that connects without a
relay already answers the question (`needs_relay = false`), so the relay-less run is then ended at once.
Both runs share the lab; their peers have their own sockets, hence their own NAT mappings.

This module does not import aiortc: the peers run in processes forked by netsim.launcher.
"""

from __future__ import annotations

import argparse
import functools
import json
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from netsim.results import store as results
from netsim.peers.launcher import Launcher, PeerProcess

TURN_CHOICES = ("udp", "tcp", "tls", "none")
POLICIES = ("all", "relay")
GLARE_DELAY_S = 0.5  # the second offerer holds its ready offer this long; both offers still collide
WAIT_MARGIN_S = 12.0  # beyond the deadline: echo linger, closing, process exit
DEFAULT_DEADLINE_S = 10.0
UDP_BLOCKED_EXTRA_S = 5.0  # aioice's STUN timeout, waited out by every gathering behind the UDP firewall
TIMING_KEYS = ("gathering_s", "ice_completed_s", "channel_open_s", "first_echo_s", "rtt_ms")


def verdict(a: dict[str, Any], b: dict[str, Any]) -> tuple[str, str | None]:
    """(verdict, relay_side) from both PEER records.

    A side relayed if its own local candidate is a relay, or the other side sees a relay as remote.
    """
    if a.get("state") != "connected" or b.get("state") != "connected":
        return "failed", None
    relayed = {
        "a": a.get("local_type") == "relay" or b.get("remote_type") == "relay",
        "b": b.get("local_type") == "relay" or a.get("remote_type") == "relay",
    }
    if relayed["a"] and relayed["b"]:
        return "relay", "both"
    if relayed["a"] or relayed["b"]:
        return "relay", "a" if relayed["a"] else "b"
    types = {a.get("local_type"), a.get("remote_type"), b.get("local_type"), b.get("remote_type")}
    if types == {"host"}:
        return "direct-host", None
    return "direct", None


def negotiated(peer: dict[str, Any]) -> bool:
    """Whether the peer applied the other side's description (it then holds its remote candidates)."""
    return bool(peer.get("candidates", {}).get("remote"))


def session_timings(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float | None]:
    """Session timings from the winning offer's creation (both peers share CLOCK_MONOTONIC).

    A milestone counts when both peers reached it; gathering is the slower side's.
    """
    peers = (a, b)
    offerer = next((p for p in peers if p.get("negotiation", {}).get("offerer")), None)
    offer = (offerer or {}).get("marks", {}).get("offer")

    def both(key: str) -> float | None:
        marks = [p.get("marks", {}).get(key) for p in peers]
        if offer is None or any(m is None for m in marks):
            return None
        return round(max(marks) - offer, 4)

    gathering = [p.get("timings", {}).get("gathering_s") for p in peers]
    rtts = [p.get("timings", {}).get("rtt_ms") for p in peers]
    return {
        "gathering_s": max((g for g in gathering if g is not None), default=None),
        "ice_completed_s": both("ice_completed"),
        "channel_open_s": both("channel_open"),
        "first_echo_s": both("first_echo"),
        "rtt_ms": min((r for r in rtts if r is not None), default=None),
    }


def _peer_view(rec: dict[str, Any]) -> dict[str, Any]:
    """The PEER record of DESIGN.md (the raw record keeps marks, negotiation and launch details too)."""
    keys = (
        "local_type",
        "remote_type",
        "local",
        "remote",
        "role",
        "polite",
        "turn_transport",
        "state",
        "ice_urls",
    )
    out = {k: rec.get(k) for k in keys}
    out.update(
        candidates=rec.get("candidates", {"local": [], "remote": []}),
        states=rec.get("states", []),
        timings={k: rec.get("timings", {}).get(k) for k in TIMING_KEYS},
        negotiation=rec.get("negotiation"),
        media=rec.get("media"),
        echo=rec.get("echo"),
        launch=rec.get("launch"),
        reason=rec.get("reason"),
    )
    return out


def _reason(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    parts = [f"{side}: {rec.get('reason')}" for side, rec in (("a", a), ("b", b)) if rec.get("reason")]
    return "; ".join(parts) or None


def _ice_servers(lab: Any, turn: str, user: str) -> list[dict[str, Any]]:
    if lab.coturn is None:
        return []  # explicit: never aiortc's default public STUN server
    return list(lab.coturn.ice_servers(turn, user))


def peer_config(
    side: str,
    user: str,
    target: str,
    url: str,
    token: str,
    ice_servers: list[dict[str, Any]],
    *,
    policy: str,
    glare: bool,
    glare_first: str,
    deadline_s: float,
    media: bool,
    hide_host: bool = False,
) -> dict[str, Any]:
    """PeerConfig fields as a dict (this module must not import aiortc through netsim.peer).

    a is impolite and always offers; b is polite and offers only for glare. The peer not sending first holds
    its ready offer for GLARE_DELAY_S.
    """
    return {
        "user": user,
        "target": target,
        "polite": side == "b",
        "signaling_url": url,
        "token": token,
        "ice_servers": ice_servers,
        "policy": policy,
        "deadline_s": deadline_s,
        "offer": side == "a" or glare,
        "offer_delay_s": GLARE_DELAY_S if glare and side != glare_first else 0.0,
        "media": media,
        "hide_host": hide_host,
    }


def start_peers(
    lab: Any,
    launcher: Launcher,
    url: str,
    *,
    turn: str,
    policy: str,
    glare: bool,
    glare_first: str = "a",
    deadline_s: float,
    host_a: str,
    host_b: str,
    media: bool = False,
    hide_host: bool = False,
) -> dict[str, PeerProcess]:
    """Fork peers a (impolite) and b (polite) for one negotiation; fresh user names every time."""
    from netsim.services.signaling import make_token

    tag = secrets.token_hex(3)
    users = {"a": f"a-{tag}", "b": f"b-{tag}"}
    hosts = {"a": host_a, "b": host_b}
    env = {"SSL_CERT_FILE": str(lab.coturn.ca_file)} if lab.coturn is not None and turn == "tls" else {}
    peers_dir = Path(lab.workdir) / "peers"
    peers_dir.mkdir(parents=True, exist_ok=True)
    procs = {}
    for side, other in (("a", "b"), ("b", "a")):
        cfg = peer_config(
            side,
            users[side],
            users[other],
            url,
            make_token(lab.signaling_secret, users[side]),
            _ice_servers(lab, turn, users[side]),
            policy=policy,
            glare=glare,
            glare_first=glare_first,
            deadline_s=deadline_s,
            media=media,
            hide_host=hide_host,
        )
        name = users[side]
        procs[side] = launcher.spawn(
            lab.netns(hosts[side]), cfg, peers_dir / f"{name}.json", peers_dir / f"{name}.log", env
        )
    return procs


def wait_peers(procs: dict[str, PeerProcess], timeout_s: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both raw peer records; a peer still running after timeout_s is killed (0 ends them now)."""
    return procs["a"].wait(timeout_s), procs["b"].wait(timeout_s)


@functools.cache
def _versions() -> dict[str, str | None]:
    """aiortc, aioice, coturn, kernel and Python versions: once per process (coturn's costs a subprocess)."""
    return results.versions()


def run_session(
    lab: Any,
    *,
    turn: str = "udp",
    policy: str = "all",
    glare: bool = False,
    glare_first: str = "a",
    deadline_s: float = 10.0,
    host_a: str = "a",
    host_b: str = "b",
    determine_needs_relay: bool = True,
    media: bool = False,
    hide_host: bool = False,
    launcher: Launcher | None = None,
) -> dict[str, Any]:
    """Run one pairing in `lab` and return a result record (DESIGN.md) without the run/scenario fields."""
    if turn not in TURN_CHOICES or policy not in POLICIES or glare_first not in ("a", "b"):
        raise ValueError(f"bad session options: turn={turn!r} policy={policy!r} glare_first={glare_first!r}")
    own = launcher is None
    launcher = launcher or Launcher()
    started_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    log_offset = lab.coturn.log_size() if lab.coturn is not None else 0
    try:
        url = str(lab.start_signaling())  # TCP 443, reachable through the udp-blocked firewall too
        common: dict[str, Any] = dict(
            deadline_s=deadline_s, host_a=host_a, host_b=host_b, media=media, hide_host=hide_host
        )
        main = start_peers(
            lab, launcher, url, turn=turn, policy=policy, glare=glare, glare_first=glare_first, **common
        )
        # The relay-less run goes alongside (fresh sockets, so fresh NAT mappings): a pairing that needs a
        # relay costs one deadline, not two. It is ended at once when the main run connects without a relay.
        probe = None
        if determine_needs_relay and not (turn == "none" and policy == "all"):
            probe = start_peers(lab, launcher, url, turn="none", policy="all", glare=False, **common)
        a, b = wait_peers(main, deadline_s + WAIT_MARGIN_S)
        result, relay_side = verdict(a, b)
        needs_relay, second = _needs_relay(result, turn, policy, probe, deadline_s)
    finally:
        if own:
            launcher.close()
    timings = session_timings(a, b)
    return {
        "nat_a": _nat_kind(lab, host_a),
        "nat_b": _nat_kind(lab, host_b),
        "turn": turn,
        "policy": policy,
        "glare": glare,
        "verdict": result,
        "relay_side": relay_side,
        "needs_relay": needs_relay,
        "needs_relay_run": second,
        "reason": _reason(a, b) if result == "failed" else None,
        "connect_s": timings["channel_open_s"],
        "timings": timings,
        "a": _peer_view(a),
        "b": _peer_view(b),
        "launch": _launch_figures(a, b),
        "versions": _versions(),
        "coturn_log": _coturn_excerpt(lab, log_offset),
        "started_at": started_at,
    }


def _needs_relay(
    result: str, turn: str, policy: str, probe: dict[str, PeerProcess] | None, deadline_s: float
) -> tuple[bool | None, dict[str, Any] | None]:
    """(needs_relay, summary of the relay-less run or None when it was not needed)."""
    if result in ("direct", "direct-host"):
        if probe is not None:
            wait_peers(probe, 0)  # the main run answered the question: end the probe now
        return False, None
    if turn == "none" and policy == "all":
        return result == "failed", None  # this run already had no relay candidates
    if probe is None:
        return None, None
    a, b = wait_peers(probe, deadline_s + WAIT_MARGIN_S)
    second, _ = verdict(a, b)
    if second == "failed" and not (negotiated(a) and negotiated(b)):
        # No offer/answer got through (e.g. signaling unreachable): this says nothing about ICE.
        return None, {"verdict": second, "connect_s": None, "reason": _reason(a, b)}
    connect_s = session_timings(a, b)["channel_open_s"]
    summary = {"verdict": second, "connect_s": connect_s, "reason": _reason(a, b)}
    return second == "failed", summary


def _launch_figures(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Peer-ready latency (request to child in its namespace) and process start to first echo."""
    ready = [(p.get("launch") or {}).get("ready_ms") for p in (a, b)]
    first = [p.get("timings", {}).get("start_to_first_echo_s") for p in (a, b)]
    return {
        "ready_ms": [r for r in ready if r is not None],
        "start_to_first_echo_s": max(f for f in first if f is not None) if None not in first else None,
    }


def _coturn_excerpt(lab: Any, offset: int) -> str | None:
    """What coturn logged during this session (its tail, if long)."""
    if lab.coturn is None:
        return None
    return lab.coturn.log_since(offset)[-4000:] or None


def _nat_kind(lab: Any, host: str) -> str | None:
    """The NAT preset in front of `host`, when the lab's topology says so."""
    for site in getattr(lab.topology, "sites", ()):
        if host in getattr(site, "hosts", ()):
            return str(getattr(site.nat, "kind", None))
    return None


# --- command line ----------------------------------------------------------------------------------------


def add_cli(sub: Any) -> None:
    p = sub.add_parser("pair", help="run one WebRTC session between two NATed hosts in a fresh lab")
    p.add_argument("--nat-a", required=True, help="NAT type in front of host a (e.g. full-cone)")
    p.add_argument("--nat-b", required=True, help="NAT type in front of host b")
    p.add_argument("--turn", choices=TURN_CHOICES, default="udp", help="TURN transport (default udp)")
    p.add_argument("--policy", choices=POLICIES, default="all", help="ICE transport policy (default all)")
    p.add_argument("--glare", action="store_true", help="both peers offer at once (perfect negotiation)")
    p.add_argument("--glare-first", choices=("a", "b"), default="a", help="whose offer is sent first")
    p.add_argument(
        "--deadline",
        type=float,
        default=None,
        help="connect deadline in seconds (default 10, plus 5 for each udp-blocked side, whose gathering "
        "waits out the STUN timeout)",
    )
    p.add_argument("--media", action="store_true", help="also send a synthetic audio and video track")
    p.add_argument("--no-needs-relay", action="store_true", help="skip the relay-less second run")
    for side in ("a", "b"):
        p.add_argument(f"--loss-{side}", type=float, default=0.0, help=f"random loss at nat-{side}, percent")
        p.add_argument(f"--rate-{side}", type=int, default=None, help=f"rate limit at nat-{side}, kbit/s")
    p.add_argument("--json", action="store_true", help="print the result record as JSON")
    p.set_defaults(func=cli_pair)


def cli_pair(args: argparse.Namespace) -> int:
    """Exit status 0 when the session connected, 1 when it failed."""
    from netsim.lab.impair import Impairment
    from netsim.lab.lab import Lab
    from netsim.lab.topology import standard_topology

    impairs = {
        side: Impairment(getattr(args, f"loss_{side}"), getattr(args, f"rate_{side}")) for side in "ab"
    }
    topo = standard_topology(args.nat_a, args.nat_b, impair_a=impairs["a"], impair_b=impairs["b"])
    with Launcher() as launcher, Lab(topo) as lab:  # the launcher imports while the lab builds
        record = run_session(
            lab,
            turn=args.turn,
            policy=args.policy,
            glare=args.glare,
            glare_first=args.glare_first,
            deadline_s=_pair_deadline(args),
            determine_needs_relay=not args.no_needs_relay,
            media=args.media,
            launcher=launcher,
        )
    if args.json:
        json.dump(record, sys.stdout, indent=2)
        print()
    else:
        print(format_record(record))
    return 0 if record["verdict"] != "failed" else 1


def _pair_deadline(args: argparse.Namespace) -> float:
    if args.deadline is not None:
        return float(args.deadline)
    blocked = [args.nat_a, args.nat_b].count("udp-blocked")
    return DEFAULT_DEADLINE_S + UDP_BLOCKED_EXTRA_S * blocked


def format_record(rec: dict[str, Any]) -> str:
    lines = [
        f"{rec['nat_a']} x {rec['nat_b']}  turn={rec['turn']} policy={rec['policy']} glare={rec['glare']}",
        f"verdict: {rec['verdict']}"
        + (f" (relayed by {rec['relay_side']})" if rec["relay_side"] else "")
        + f"  needs_relay: {rec['needs_relay']}  connect_s: {rec['connect_s']}",
    ]
    for side in ("a", "b"):
        p = rec[side]
        via = f" via TURN/{p['turn_transport']}" if p["turn_transport"] else ""
        lines.append(
            f"  {side}: {p['local_type']} {p['local']} -> {p['remote_type']} {p['remote']} ({p['role']}){via}"
        )
    lines.append("  timings: " + ", ".join(f"{k}={v}" for k, v in rec["timings"].items()))
    if rec["reason"]:
        lines.append(f"  reason: {rec['reason']}")
    return "\n".join(lines)
