"""What a peer saw, and the PEER record made from it: state changes, time marks, candidates, timings.

The record's keys are the PEER record of docs/DESIGN.md plus the raw details the session reads (`marks`,
`negotiation`, `echo`, `media`, `error`); docs/peers.md explains the marks and timings.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, cast

from netsim.peers.protocol import RawNegotiation, RawPair, RawPeerRecord, RawStateNote, RawTimings


class Trace:
    """State notes, marks and candidates of one peer, on the clock every peer on this machine shares.

    time.monotonic() is system-wide, so the session can compare the marks of two peer processes.
    """

    def __init__(self, t0: float | None = None) -> None:
        self.t0 = t0 if t0 is not None else time.monotonic()
        self.states: list[RawStateNote] = []
        self.marks: dict[str, float] = {}
        self.candidates: dict[str, list[str]] = {"local": [], "remote": []}
        self.gathering_s: float | None = None  # the setLocalDescription of the winning negotiation

    @staticmethod
    def now() -> float:
        return time.monotonic()

    def note(self, what: str, state: str) -> None:
        """A state change (`what` is ice, pc, signaling, channel, remote, ...), stamped relative to t0."""
        self.states.append({"t": round(self.now() - self.t0, 4), "what": what, "state": state})

    def timings(self, rtts_ms: list[float]) -> RawTimings:
        """Per-peer timings: milestones from this side's `offer` mark, RTT median, start to first echo."""
        offer = self.marks.get("offer")

        def since_offer(key: str) -> float | None:
            t = self.marks.get(key)
            return round(t - offer, 4) if t is not None and offer is not None else None

        first = self.marks.get("first_echo")
        return {
            "gathering_s": round(self.gathering_s, 4) if self.gathering_s is not None else None,
            "ice_completed_s": since_offer("ice_completed"),
            "channel_open_s": since_offer("channel_open"),
            "first_echo_s": since_offer("first_echo"),
            "rtt_ms": round(statistics.median(rtts_ms), 3) if rtts_ms else None,
            "start_to_first_echo_s": round(first - self.t0, 4) if first is not None else None,
        }

    def record(
        self,
        *,
        identity: dict[str, Any],
        user: str,
        polite: bool,
        ice_urls: list[Any],
        pair: dict[str, Any] | None,
        pairs: list[RawPair],
        stable: bool,
        hide_host: bool,
        state: str,
        reason: str | None,
        error: str | None,
        negotiation: RawNegotiation,
        rtts_ms: list[float],
        pings_sent: int,
        media_sent: list[str],
        media_received: list[str],
    ) -> RawPeerRecord:
        """The raw record (docs/peers.md, "The record"); `identity` is protocol, stack, version, settings;
        `pair` is selected_pair()'s result, None if never nominated."""
        pair = pair or {}
        record = {
            **identity,
            "user": user,
            "local_type": pair.get("local_type"),
            "remote_type": pair.get("remote_type"),
            "local": pair.get("local"),
            "remote": pair.get("remote"),
            "role": pair.get("role"),
            "polite": polite,
            "turn_transport": pair.get("turn_transport"),
            "family": pair.get("family"),
            "state": state,
            "ice_urls": ice_urls,
            "candidates": {
                "local": list(self.candidates["local"]),
                "remote": list(self.candidates["remote"]),
            },
            "states": self.states,
            "timings": self.timings(rtts_ms),
            "marks": {k: round(v, 6) for k, v in {"start": self.t0, **self.marks}.items()},
            "negotiation": negotiation,
            "echo": {"sent": pings_sent, "received": len(rtts_ms)},
            "media": {"sent": media_sent, "received": media_received},
            "pairs": pairs,
            "stable": stable,
            "hide_host": hide_host,
            "reason": reason,
            "error": error,
        }
        return cast(RawPeerRecord, record)  # the keys above are RawPeerRecord's; the session checks them
