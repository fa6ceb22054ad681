"""Realistic synthetic result records (records.ResultRecord) for results tests and bench/report.py.

`sample_records()` is a fixed, hand-shaped run of ~60 sessions that exercises every corner the report must
handle: failed sessions without a selected pair, repeats with differing winners, relay on side b, null
needs_relay, an unexpected outcome (mismatch), a NAT kind outside the known order, a pcap.
`synthetic_records(n)` scales the same model up for benchmarks.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from netsim.records import TIMING_KEYS

RUN_ID = "20261129-043500-ab12"
VERSIONS = {
    "aiortc": "1.16.0",
    "aioice": "0.13.0",
    "coturn": "4.6.1",
    "kernel": "6.18.44",
    "python": "3.11.7",
}
KINDS = ["open", "full-cone", "restricted-cone", "port-restricted-cone", "symmetric", "udp-blocked"]
SITE_WAN = {"a": "198.18.1.1", "b": "198.18.2.1"}
SITE_LAN = {"a": "10.1.0.2", "b": "10.2.0.2"}
OPEN_LAN = {"a": "198.19.1.2", "b": "198.19.2.2"}
TURN_IP = "198.18.0.2"


def truth_needs_relay(nat_a: str, nat_b: str) -> bool:
    """Textbook answer: UDP blocked anywhere, or symmetric against symmetric / port-restricted."""
    if "udp-blocked" in (nat_a, nat_b):
        return True
    hard = ("symmetric", "port-restricted-cone")
    return (nat_a == "symmetric" and nat_b in hard) or (nat_b == "symmetric" and nat_a in hard)


def _relay_side(nat_a: str, nat_b: str) -> str:
    if nat_a == "udp-blocked" and nat_b == "udp-blocked":
        return "both"
    if nat_b == "udp-blocked":
        return "b"
    if nat_a == "udp-blocked":
        return "a"
    return "both" if nat_a == nat_b else "a"


def _host(side: str, nat: str) -> str:
    return OPEN_LAN[side] if nat == "open" else SITE_LAN[side]


def _candidates(side: str, nat: str, rng: random.Random, turn: bool) -> list[str]:
    host = _host(side, nat)
    port = rng.randint(40000, 60000)
    cands = [f"candidate:{rng.getrandbits(32):x} 1 udp 2130706431 {host} {port} typ host"]
    if nat not in ("open", "udp-blocked"):
        cands.append(
            f"candidate:{rng.getrandbits(32):x} 1 udp 1694498815 {SITE_WAN[side]} {port + 7} typ srflx "
            f"raddr {host} rport {port}"
        )
    if turn:
        cands.append(
            f"candidate:{rng.getrandbits(32):x} 1 udp 16777215 {TURN_IP} {rng.randint(49152, 65535)} "
            f"typ relay "
            f"raddr {SITE_WAN[side]} rport {port + 9}"
        )
    return cands


def _states(rng: random.Random, ok: bool, connect_s: float) -> list[dict[str, Any]]:
    t_check = round(rng.uniform(0.01, 0.08), 3)
    states = [
        {"t": 0.0, "what": "signaling", "state": "have-local-offer"},
        {"t": round(t_check / 2, 3), "what": "gathering", "state": "gathering"},
        {"t": t_check, "what": "ice", "state": "checking"},
    ]
    if ok:
        states += [
            {"t": round(connect_s * 0.8, 3), "what": "ice", "state": "completed"},
            {"t": round(connect_s * 0.85, 3), "what": "dtls", "state": "connected"},
            {"t": connect_s, "what": "datachannel", "state": "open"},
        ]
    else:
        states.append({"t": round(t_check + 30.0, 3), "what": "ice", "state": "failed"})
    return states


def _timings(rng: random.Random, connect_s: float | None) -> dict[str, float | None]:
    if connect_s is None:
        gathering = round(rng.uniform(0.05, 0.3), 3)
        return dict.fromkeys(TIMING_KEYS, None) | {"gathering_s": gathering}
    return {
        "gathering_s": round(connect_s * 0.2, 3),
        "ice_completed_s": round(connect_s * 0.8, 3),
        "channel_open_s": connect_s,
        "first_echo_s": round(connect_s + 0.004, 3),
        "rtt_ms": round(rng.uniform(0.2, 3.0), 2),
    }


def _peer(
    side: str,
    nat: str,
    other: str,
    verdict: str,
    relay_side: str | None,
    rng: random.Random,
    turn: bool,
    t: float,
) -> dict[str, Any]:
    ok = verdict != "failed"
    peer_side = "b" if side == "a" else "a"
    urls = [f"stun:{TURN_IP}:3478"] + ([f"turn:{TURN_IP}:3478?transport=udp"] if turn else [])
    peer: dict[str, Any] = {
        "local_type": None,
        "remote_type": None,
        "local": None,
        "remote": None,
        "role": None,
        "polite": side == "b",
        "turn_transport": None,
        "state": "connected" if ok else "failed",
        "ice_urls": urls,
        "candidates": {
            "local": _candidates(side, nat, rng, turn),
            "remote": _candidates(peer_side, other, rng, turn),
        },
        "states": _states(rng, ok, t),
        "timings": _timings(rng, t if ok else None),
        "negotiation": {
            "offers_sent": int(side == "a"),
            "ignored_offers": 0,
            "rollbacks": 0,
            "stale_answers": 0,
            "offerer": side == "a",
        },
        "media": {"sent": [], "received": []},
        "echo": {"sent": 5 if ok else 0, "received": 5 if ok else 0},
        "launch": {
            "ready_ms": round(rng.uniform(2.0, 9.0), 3),
            "pid": rng.randint(1000, 99999),
            "netns_inode": 4026532000,
        },
        "reason": None if ok else "ICE failed",
        "peer": "aiortc",
        "pairs": [],
        "first": None,
        "settled": None,
        "hide_host": False,
        "browser": None,
    }
    if not ok:
        return peer  # failed sessions have no selected pair
    me_relay = relay_side in (side, "both")
    other_relay = relay_side in (peer_side, "both")
    if verdict == "direct-host":
        local_type, remote_type = "host", "host"
    elif verdict == "relay":
        local_type = "relay" if me_relay else ("host" if nat == "open" else "srflx")
        remote_type = "relay" if other_relay else "prflx"
    else:
        local_type = "host" if nat == "open" else "srflx"
        remote_type = rng.choice(["srflx", "prflx"]) if other != "open" else "host"
    port = rng.randint(40000, 60000)
    peer.update(
        role="controlling" if side == "a" else "controlled",
        turn_transport="udp" if local_type == "relay" else None,
        local_type=local_type,
        remote_type=remote_type,
        local=f"{TURN_IP if local_type == 'relay' else _host(side, nat)}:{port}",
        remote=f"{TURN_IP if remote_type == 'relay' else SITE_WAN[peer_side]}:{port + 11}",
    )
    pair = {k: peer[k] for k in ("local_type", "remote_type", "local", "remote", "role", "turn_transport")}
    peer.update(pairs=[{"t": round(t, 3), **pair}], first={"t": round(t, 3), **pair})
    peer["settled"] = peer["first"]
    return peer


def _needs_relay_run(rng: random.Random, verdict: str, needs_relay: bool | None) -> dict[str, Any] | None:
    """The relay-less run: only when the main run did not connect directly and it decided something."""
    if verdict in ("direct", "direct-host") or needs_relay is None:
        return None
    if needs_relay:
        return {"verdict": "failed", "connect_s": None, "reason": "a: ICE failed; b: ICE failed"}
    return {"verdict": "direct", "connect_s": round(rng.uniform(0.3, 0.6), 3), "reason": None}


def make_record(
    rng: random.Random,
    group: str,
    nat_a: str,
    nat_b: str,
    *,
    repeat: int = 0,
    turn: str = "udp",
    policy: str = "all",
    verdict: str | None = None,
    relay_side: str | None = None,
    needs_relay: bool | None | str = "truth",
    expected: dict[str, Any] | None = None,
    reason: str | None = None,
    pcap: str | None = None,
    scenario: str | None = None,
    index: int = 0,
) -> dict[str, Any]:
    """One record; by default the textbook outcome for the NAT pair, overridable field by field."""
    truth = group != "lan" and truth_needs_relay(nat_a, nat_b)  # same site: host candidates always work
    has_turn = turn != "none"
    if verdict is None:
        if group == "lan":
            verdict = "direct-host"
        elif truth or policy == "relay":
            verdict = "relay" if has_turn else "failed"
        else:
            verdict = "direct"
    if verdict == "relay" and relay_side is None:
        relay_side = "both" if policy == "relay" else _relay_side(nat_a, nat_b)
    nr: bool | None = truth if needs_relay == "truth" else needs_relay  # type: ignore[assignment]
    expected = {"needs_relay": truth, "connect": has_turn or not truth, "verdict": None, **(expected or {})}
    connect_s = (
        None
        if verdict == "failed"
        else round(rng.lognormvariate(-0.9 if verdict != "relay" else -0.4, 0.35), 3)
    )
    got_connect = verdict != "failed"
    mismatch = None
    if expected.get("connect") != got_connect:
        mismatch = f"expected connect={str(expected.get('connect')).lower()}, got {str(got_connect).lower()}"
    elif nr is not None and expected.get("needs_relay") is not None and expected["needs_relay"] != nr:
        mismatch = f"expected needs_relay={str(expected['needs_relay']).lower()}, got {str(nr).lower()}"
    if verdict == "failed" and reason is None:
        reason = "ICE failed: all candidate pairs failed (no relay configured)"
    t = connect_s or 0.0
    record: dict[str, Any] = {
        "schema_version": 3,
        "run_id": RUN_ID,
        "scenario": scenario or f"{group}/{nat_a}__{nat_b}",
        "group": group,
        "nat_a": nat_a,
        "nat_b": nat_b,
        "turn": turn,
        "policy": policy,
        "glare": group == "glare",
        "repeat": repeat,
        "verdict": verdict,
        "relay_side": relay_side if verdict == "relay" else None,
        "first_verdict": verdict,
        "disagreement": None,
        "settled_s": connect_s,
        "needs_relay": nr,
        "expected": expected,
        "outcome": "passed" if mismatch is None else "violated",
        "passed": mismatch is None,
        "mismatch": mismatch,
        "reason": reason,
        "connect_s": connect_s,
        "timings": _timings(rng, connect_s),
        "a": _peer("a", nat_a, nat_b, verdict, relay_side, rng, has_turn, t),
        "b": _peer("b", nat_b, nat_a, verdict, relay_side, rng, has_turn, t),
        "needs_relay_run": _needs_relay_run(rng, verdict, nr),
        "launch": {"ready_ms": [4.2, 5.1], "start_to_first_echo_s": None if connect_s is None else t + 0.01},
        "versions": dict(VERSIONS),
        "coturn_log": None,
        "pcap": pcap,
        "started_at": f"2026-11-29T04:{35 + index // 60 % 20:02d}:{index % 60:02d}Z",
    }
    if has_turn:
        record["coturn_log"] = (
            f"0: : session 00{index:04d}: realm <netsim> user <1764390900:peer-a>: incoming packet ALLOCATE "
            f"processed, success\n0: : session 00{index:04d}: peer {SITE_WAN['b']} lifetime updated: 300\n"
            f"0: : session 00{index:04d}: closed (2nd stage), user <1764390900:peer-a> "
            "<script>alert(1)</script>"
        )
    return record


def sample_records() -> list[dict[str, Any]]:
    """~60 hand-shaped sessions across all groups (deterministic)."""
    rng = random.Random(6)
    out: list[dict[str, Any]] = []

    def add(*args: Any, **kw: Any) -> None:
        out.append(make_record(rng, *args, index=len(out), **kw))

    turn_kinds = KINDS
    for a in turn_kinds:
        for b in turn_kinds:
            if (a, b) == ("full-cone", "symmetric"):
                # Repeats with differing winners: aioice nominated the relay pair twice though direct works.
                for rep, v in enumerate(["direct", "relay", "direct", "relay", "direct"]):
                    add("matrix-turn", a, b, repeat=rep, verdict=v, relay_side="a" if v == "relay" else None)
            elif (a, b) == ("open", "udp-blocked"):
                add("matrix-turn", a, b, pcap="pcap/matrix-turn__open__udp-blocked.pcap")  # relay(b)
            elif (a, b) == ("udp-blocked", "udp-blocked"):
                add("matrix-turn", a, b, verdict="failed", reason="TURN allocation timed out (udp 3478)")
            else:
                add("matrix-turn", a, b)
    noturn_kinds = ["full-cone", "port-restricted-cone", "symmetric"]
    for a in noturn_kinds:
        for b in noturn_kinds:
            add("matrix-noturn", a, b, turn="none")
    # A NAT kind outside the known order (sorts last) and a mismatch: expected direct, relay won and needed.
    add(
        "matrix-turn",
        "cgn-symmetric",
        "full-cone",
        verdict="relay",
        needs_relay=True,
        expected={"needs_relay": False, "connect": True},
    )
    add("firewall", "open", "open", scenario="firewall/udp-only-3478", needs_relay=None)
    add("firewall", "full-cone", "full-cone", turn="tcp", scenario="firewall/tcp-443-only", verdict="relay")
    add("firewall", "full-cone", "full-cone", turn="tls", scenario="firewall/tls-443-only", verdict="failed",
        needs_relay=None, reason="TLS handshake to TURN failed: certificate verify failed")  # fmt: skip
    add("lan", "port-restricted-cone", "port-restricted-cone", scenario="lan/same-site")
    add("lan", "symmetric", "symmetric", scenario="lan/same-site-symmetric", needs_relay=False)
    add("hairpin", "full-cone", "full-cone", scenario="hairpin/full-cone", verdict="direct")
    add("hairpin", "symmetric", "symmetric", scenario="hairpin/symmetric", turn="none", needs_relay=None,
        expected={"needs_relay": None, "connect": False})  # fmt: skip
    add("double-nat", "full-cone", "symmetric", scenario="double-nat/cgn-full-cone__symmetric")
    add("double-nat", "port-restricted-cone", "port-restricted-cone", scenario="double-nat/cgn-prc__prc")
    add("policy", "full-cone", "full-cone", policy="relay", scenario="policy/relay-only", needs_relay=False)
    add("policy", "open", "symmetric", policy="relay", turn="tcp", scenario="policy/relay-only-tcp",
        needs_relay=False)  # fmt: skip
    for rep in range(3):
        add("glare", "full-cone", "restricted-cone", repeat=rep, scenario="glare/both-offer")
    return out


def synthetic_records(n: int, seed: int = 1) -> list[dict[str, Any]]:
    """n sessions spread over the matrix groups with noise (random failures, relay wins), for benchmarks."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    groups = ["matrix-turn", "matrix-noturn", "firewall", "hairpin", "glare"]
    while len(out) < n:
        group = rng.choices(groups, weights=[6, 3, 1, 1, 1])[0]
        a, b = rng.choice(KINDS), rng.choice(KINDS)
        turn = "none" if group == "matrix-noturn" else rng.choice(["udp", "udp", "tcp", "tls"])
        verdict = None
        roll = rng.random()
        if roll < 0.05:
            verdict = "failed"
        elif roll < 0.1 and turn != "none":
            verdict = "relay"
        out.append(
            make_record(rng, group, a, b, turn=turn, verdict=verdict, repeat=len(out) % 3, index=len(out))
        )
    return out


def write_results(run_dir: Path, records: list[dict[str, Any]]) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "results.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path
