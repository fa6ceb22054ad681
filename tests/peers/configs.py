"""A complete PeerConfig for tests: the session's values, any field changed by keyword."""

from __future__ import annotations

import time
from typing import Any

from netsim.peers.protocol import PROTOCOL, PeerConfig, RawPeerRecord, failed_record


def peer_config(**changes: Any) -> PeerConfig:
    values: dict[str, Any] = {
        "protocol": PROTOCOL,
        "user": "a",
        "target": "b",
        "polite": False,
        "offer": False,
        "offer_delay_s": 0.0,
        "signaling_url": "ws://x",
        "token": "",
        "ice_servers": (),
        "ca_file": None,
        "policy": "all",
        "deadline_s": 10.0,
        "echo_count": 5,
        "echo_interval_s": 0.005,
        "linger_s": 2.0,
        "settle_s": 1.0,
        "hold_s": 0.0,
        "interval_s": 1.0,
        "hide_host": False,
        "media": False,
        "restart": False,
        "connected_file": None,
        "t0": time.monotonic(),
    }
    values.update(changes)
    if isinstance(values["ice_servers"], list):
        values["ice_servers"] = tuple(values["ice_servers"])
    return PeerConfig(**values)


TIMINGS = (
    "gathering_s",
    "ice_completed_s",
    "channel_open_s",
    "first_echo_s",
    "rtt_ms",
    "start_to_first_echo_s",
)
NEGOTIATION = {"offers_sent": 0, "ignored_offers": 0, "rollbacks": 0, "stale_answers": 0, "offerer": False}


def raw_record(stack: str = "aiortc", **fields: Any) -> RawPeerRecord:
    """A complete raw record (what accept_record lets into the session) with some fields given; partial
    `timings` and `negotiation` are completed with nulls and zeros."""
    rec = failed_record(peer_config(), stack, "failed")
    rec.update(reason=None, error=None, marks={})  # type: ignore[typeddict-item]
    if "timings" in fields and fields["timings"] is not None:
        fields["timings"] = {**dict.fromkeys(TIMINGS), **fields["timings"]}
    if "negotiation" in fields and fields["negotiation"] is not None:
        fields["negotiation"] = {**NEGOTIATION, **fields["negotiation"]}
    if "pairs" in fields:
        fields["pairs"] = [
            {"family": "ipv4", "role": None, "turn_transport": None, **p} for p in fields["pairs"]
        ]
    if fields.get("local_type") is not None:
        fields.setdefault("family", "ipv4")
    rec.update(fields)  # type: ignore[typeddict-item]
    return rec
