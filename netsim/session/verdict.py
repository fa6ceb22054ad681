"""Verdict rules: what two raw peer records say about a session (pure logic, no lab).

"Won" is not "needed": aioice nominates the first pair that works, so a relay can win where a direct path
exists. The verdict says which pair won; whether a relay was needed is answered by a relay-less second run
(see run.py). The records are `RawPeerRecord`s checked at the boundary (netsim.peers.protocol).
"""

from __future__ import annotations

import ipaddress
from typing import TypedDict

from netsim.peers.protocol import RawPair, RawPeerRecord, parse_candidate
from netsim.records import TIMING_KEYS, Families, PeerRecord, SelectedPair, Timings
from netsim.vocab import BOTH, DIRECT, DIRECT_HOST, FAILED, FAMILIES, HOST, RELAY, Family, RelaySide, Verdict

IPV4, IPV6 = FAMILIES

# A selected pair as the record keeps it (`first` and `settled`: a timeline entry without its time).
PAIR_KEYS = ("local_type", "remote_type", "local", "remote", "turn_transport", "family")


class Winner(TypedDict):
    """The winner over time, for the session record."""

    first_verdict: Verdict
    disagreement: str | None
    settled_s: float | None


def _relayed(local_type: str | None, other_remote_type: str | None) -> bool:
    return local_type == RELAY or other_remote_type == RELAY


def verdict(a: RawPeerRecord, b: RawPeerRecord) -> tuple[Verdict, RelaySide | None]:
    """(verdict, relay_side) from both records' settled pairs.

    A side relayed if its own local candidate is a relay, or the other side sees a relay as remote.
    """
    if a["state"] != "connected" or b["state"] != "connected":
        return FAILED, None
    return pair_verdict(_pair_of(a), _pair_of(b))


def pair_verdict(a: SelectedPair, b: SelectedPair) -> tuple[Verdict, RelaySide | None]:
    """(verdict, relay_side) of two connected sides' pairs."""
    relayed = {
        "a": _relayed(a["local_type"], b["remote_type"]),
        "b": _relayed(b["local_type"], a["remote_type"]),
    }
    if relayed["a"] and relayed["b"]:
        return RELAY, BOTH
    if relayed["a"] or relayed["b"]:
        return RELAY, "a" if relayed["a"] else "b"
    types = {a["local_type"], a["remote_type"], b["local_type"], b["remote_type"]}
    if types == {HOST} and _same_link(a):
        return DIRECT_HOST, None
    return DIRECT, None


def _same_link(pair: SelectedPair) -> bool:
    """direct-host means a shared LAN. Over IPv4 a host pair can be nothing else here; an IPv6 host pair
    also connects two sites through their firewalls (global addresses): then it is `direct`, with its family.
    """
    if pair.get("family") != "ipv6" or not pair["local"] or not pair["remote"]:
        return True
    try:
        local, remote = (ipaddress.ip_address(_host(e)) for e in (pair["local"], pair["remote"]))
    except ValueError:
        return True  # a name (mDNS): as before
    return ipaddress.ip_network(f"{local}/64", strict=False) == ipaddress.ip_network(
        f"{remote}/64", strict=False
    )


def _host(endpoint: str) -> str:
    """The address of `[v6]:port`, `v4:port` or a bare address."""
    if endpoint.startswith("["):
        return endpoint[1 : endpoint.index("]")]
    return endpoint.rsplit(":", 1)[0] if endpoint.count(":") == 1 else endpoint


def _pair_of(rec: RawPeerRecord | RawPair, t: float | None = None) -> SelectedPair:
    return {
        "t": t,
        "local_type": rec["local_type"],
        "remote_type": rec["remote_type"],
        "local": rec["local"],
        "remote": rec["remote"],
        "role": rec["role"],
        "turn_transport": rec["turn_transport"],
        "family": rec["family"],
    }


def offer_time(a: RawPeerRecord, b: RawPeerRecord) -> float | None:
    """The winning offer's creation (the offerer's `offer` mark): the time origin of a session's record."""
    offerer = next((p for p in (a, b) if p["negotiation"] is not None and p["negotiation"]["offerer"]), None)
    return offerer["marks"].get("offer") if offerer is not None else None


def with_timelines(a: RawPeerRecord, b: RawPeerRecord) -> tuple[RawPeerRecord, RawPeerRecord]:
    """Copies of both records whose `pairs` timelines (absolute monotonic times, as peers record them)
    are in seconds from the winning offer, the one time origin of a record (null without an offer)."""
    origin = offer_time(a, b)

    def shifted(rec: RawPeerRecord) -> RawPeerRecord:
        pairs: list[RawPair] = [
            {**p, "t": round(p["t"] - origin, 4) if origin is not None and p["t"] is not None else None}
            for p in rec["pairs"]
        ]
        return {**rec, "pairs": pairs}

    return shifted(a), shifted(b)


def first_pair(rec: RawPeerRecord) -> SelectedPair | None:
    """The pair at connect: the first of the timeline (a peer without one: its only pair)."""
    if rec["pairs"]:
        return _pair_of(rec["pairs"][0], rec["pairs"][0]["t"])
    return _pair_of(rec) if rec["local_type"] else None


def settled_pair(rec: RawPeerRecord) -> SelectedPair | None:
    """The pair at the end (the record's own pair, which peers read last); null for a peer that failed."""
    if rec["state"] != "connected" or not rec["local_type"]:
        return None
    pair = _pair_of(rec)
    # Its time is when the timeline last changed to it (the timeline and the record's pair are one view).
    last = rec["pairs"][-1] if rec["pairs"] else None
    if last is not None and _pair_of(last) == pair:
        return _pair_of(rec, last["t"])
    return pair


def first_verdict(a: RawPeerRecord, b: RawPeerRecord) -> tuple[Verdict, RelaySide | None]:
    """The verdict of both sides' first pairs (`verdict` is the settled one: the records' own pairs)."""
    firsts = (first_pair(a), first_pair(b))
    if firsts[0] is None or firsts[1] is None or a["state"] != "connected" or b["state"] != "connected":
        return verdict(a, b)  # failed, or records without a pair: the same rules apply
    return pair_verdict(firsts[0], firsts[1])


def families(a: RawPeerRecord, b: RawPeerRecord) -> Families:
    """Which families each side gathered (its own candidates), the settled pair's, and whether an IPv6 pair
    was ever selected: the relay-less twin keeps both families, so needs_relay answers for the network."""

    def gathered(rec: RawPeerRecord) -> list[Family]:
        found = {parse_candidate(line)["family"] for line in rec["candidates"]["local"]}
        return [f for f in (IPV4, IPV6) if f in found]

    connected = a["state"] == "connected" and b["state"] == "connected"
    chosen = [p["family"] for rec in (a, b) for p in rec["pairs"]] + [a["family"], b["family"]]
    return {
        "a": gathered(a),
        "b": gathered(b),
        "won": a["family"] if connected else None,
        "ipv6_pair": IPV6 in chosen,
    }


def pair_view(pair: SelectedPair) -> Verdict:
    """What one side's pair alone says: relay (a relay at either end), direct-host, or direct."""
    types = {pair["local_type"], pair["remote_type"]}
    if RELAY in types:
        return RELAY
    return DIRECT_HOST if types == {HOST} and _same_link(pair) else DIRECT


def disagreement(a: RawPeerRecord, b: RawPeerRecord) -> str | None:
    """Where the two sides' settled pairs tell different stories (one relays, the other not; or one sees
    host to host, the other a NAT), or None. Addresses are not compared: each side sees the other's
    through its NAT, and the stacks label types differently (docs/peers.md)."""
    pa, pb = settled_pair(a), settled_pair(b)
    if pa is None or pb is None or pair_view(pa) == pair_view(pb):
        return None

    def told(side: str, p: SelectedPair) -> str:
        ends = f"{p['local_type']} {p['local']} -> {p['remote_type']} {p['remote']}"
        return f"{side} ends {pair_view(p)} ({ends})"

    return f"{told('a', pa)}; {told('b', pb)}"


def winner(a: RawPeerRecord, b: RawPeerRecord) -> Winner:
    """The winner over time, for the session record: first verdict, disagreement at the end, and when the
    later side's pair last changed (seconds from the offer; records from with_timelines)."""
    last = [p["pairs"][-1]["t"] for p in (a, b) if p["pairs"]]
    known = [t for t in last if t is not None]
    return {
        "first_verdict": first_verdict(a, b)[0],
        "disagreement": disagreement(a, b),
        "settled_s": max(known) if len(known) == 2 else None,
    }


def negotiated(peer: RawPeerRecord) -> bool:
    """Whether the peer applied the other side's description (it then holds its remote candidates)."""
    return bool(peer["candidates"]["remote"])


def session_timings(a: RawPeerRecord, b: RawPeerRecord) -> Timings:
    """Session timings from the winning offer's creation (both peers share CLOCK_MONOTONIC).

    A milestone counts when both peers reached it; gathering is the slower side's.
    """
    offer = offer_time(a, b)

    def both(key: str) -> float | None:
        marks = [p["marks"].get(key) for p in (a, b)]
        if offer is None or marks[0] is None or marks[1] is None:
            return None
        return round(max(marks[0], marks[1]) - offer, 4)

    gathering = [p["timings"]["gathering_s"] for p in (a, b) if p["timings"] is not None]
    rtts = [p["timings"]["rtt_ms"] for p in (a, b) if p["timings"] is not None]
    return {
        "gathering_s": max((g for g in gathering if g is not None), default=None),
        "ice_completed_s": both("ice_completed"),
        "channel_open_s": both("channel_open"),
        "first_echo_s": both("first_echo"),
        "rtt_ms": min((r for r in rtts if r is not None), default=None),
    }


def peer_record(rec: RawPeerRecord) -> PeerRecord:
    """The PEER record of docs/DESIGN.md from a raw record; where the record leaves the session, its
    candidate lines are taken apart (each with its family) and a browser's settings become `browser`."""
    raw_timings = rec["timings"]
    timings = Timings(**{k: raw_timings[k] if raw_timings is not None else None for k in TIMING_KEYS})  # type: ignore[typeddict-item]
    cands = rec["candidates"]
    settings = rec["settings"]
    flags = settings.get("flags")
    out: PeerRecord = {
        "local_type": rec["local_type"],
        "remote_type": rec["remote_type"],
        "local": rec["local"],
        "remote": rec["remote"],
        "role": rec["role"],
        "polite": rec["polite"],
        "turn_transport": rec["turn_transport"],
        "state": rec["state"],
        "ice_urls": [u if isinstance(u, str) else ",".join(u) for u in rec["ice_urls"]],
        "candidates": {
            "local": cands["local"],
            "remote": cands["remote"],
            "parsed": {end: [parse_candidate(line) for line in cands[end]] for end in ("local", "remote")},
        },
        "states": [{"t": n["t"], "what": n["what"], "state": n["state"]} for n in rec["states"]],
        "timings": timings,
        "negotiation": rec["negotiation"],
        "media": rec["media"],
        "echo": rec["echo"],
        "launch": rec.get("launch"),
        "reason": rec["reason"],
        "peer": rec["stack"],
        "pairs": [_pair_of(p, p["t"]) for p in rec["pairs"]],
        "first": first_pair(rec) if rec["state"] == "connected" else None,
        "settled": settled_pair(rec),
        "hide_host": rec["hide_host"],
        "browser": (
            {"version": rec["version"], "flags": [str(f) for f in flags], "mdns": bool(settings.get("mdns"))}
            if isinstance(flags, list)
            else None
        ),
        "version": rec["version"],
        "settings": settings,
    }
    return out


def failure_reason(a: RawPeerRecord, b: RawPeerRecord) -> str | None:
    parts = [f"{side}: {rec['reason']}" for side, rec in (("a", a), ("b", b)) if rec["reason"]]
    return "; ".join(parts) or None
