"""The peer protocol (docs/peers.md, "Peer protocol") and its Python side agree, and the boundary check
names the peer and the field of a record that breaks it (no root)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from netsim.peers.protocol import (
    PROTOCOL,
    PeerConfig,
    ProtocolError,
    RawPeerRecord,
    accept_record,
    failed_record,
    family_of,
    parse_candidate,
)
from tests.peers.configs import peer_config

DOC = Path(__file__).resolve().parents[2] / "docs" / "peers.md"


def _table_keys(heading: str) -> list[str]:
    """The backticked keys in the first column of the table under a `### heading` of the spec."""
    text = DOC.read_text().split("## Peer protocol", 1)[1]
    section = text.split(f"### {heading}", 1)[1].split("\n### ", 1)[0]
    keys: list[str] = []
    for line in section.splitlines():
        if line.startswith("| `"):
            keys += re.findall(r"`(\w+)`", line.split("|")[1])
    return keys


def test_the_spec_names_every_config_key_in_order() -> None:
    assert _table_keys("The config (`PeerConfig`)") == [f.name for f in dataclasses.fields(PeerConfig)]


def test_the_spec_names_every_record_key() -> None:
    documented = set(_table_keys("The record (`RawPeerRecord`)"))
    # `launch` is netsim's own (the adapter adds it); the rest is the peer's to write.
    assert documented == set(RawPeerRecord.__annotations__) - {"launch"}


def test_the_page_requires_every_config_key() -> None:
    page = (Path(__file__).resolve().parents[2] / "netsim" / "peers" / "page" / "util.js").read_text()
    keys = re.findall(r'"(\w+)"', page.split("CONFIG_KEYS = [", 1)[1].split("];", 1)[0])
    assert keys == [*(f.name for f in dataclasses.fields(PeerConfig)), "clock_offset"]


def test_config_round_trips_and_refuses_missing_unknown_or_ill_typed_keys() -> None:
    cfg = peer_config(ice_servers=[{"urls": "stun:198.18.0.2:3478"}], ca_file="/x/ca.pem")
    text = json.dumps(cfg.to_json())
    assert PeerConfig.from_json(text) == cfg
    data = json.loads(text)
    with pytest.raises(ProtocolError, match="config: missing deadline_s"):
        PeerConfig.from_json(json.dumps({k: v for k, v in data.items() if k != "deadline_s"}))
    with pytest.raises(ProtocolError, match="config: unknown dealine_s"):
        PeerConfig.from_json(json.dumps({**data, "dealine_s": 3}))
    with pytest.raises(ProtocolError, match=r"config: polite: Input should be a valid boolean, got \"yes\""):
        PeerConfig.from_json(json.dumps({**data, "polite": "yes"}))
    with pytest.raises(ProtocolError, match="config: protocol 2, this peer speaks 1"):
        PeerConfig.from_json(json.dumps({**data, "protocol": 2}))


def _record(**changes: Any) -> dict[str, Any]:
    pair = {
        "t": 12.5,
        "local_type": "host",
        "remote_type": "srflx",
        "local": "10.1.0.2:4000",
        "remote": "198.18.2.1:5000",
        "role": "controlling",
        "turn_transport": None,
        "family": "ipv4",
    }
    rec: dict[str, Any] = {
        **failed_record(peer_config(), "pion", "x"),
        **{k: v for k, v in pair.items() if k != "t"},
        "state": "connected",
        "reason": None,
        "error": None,
        "version": "4.0.1",
        "pairs": [pair],
        "stable": True,
    }
    rec.update(changes)
    return rec


def test_a_good_record_passes_unchanged() -> None:
    rec = _record()
    assert accept_record(rec, side="a", stack="pion", cfg=peer_config()) == rec


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"protocol": 2}, "protocol 2, netsim speaks 1"),
        ({"stack": "chromium"}, "stack: expected 'pion', got 'chromium'"),
        ({"user": "z"}, "user: expected 'a', got 'z'"),
        ({"state": "done"}, "state: Input should be 'connected' or 'failed', got \"done\""),
        (
            {"pairs": [{**_record()["pairs"][0], "family": None}]},
            "pairs[0].family: Input should be 'ipv4' or",
        ),
        ({"pairs": [{**_record()["pairs"][0], "family": "ipv6"}]}, "pairs[0].family: 'ipv6' but local is"),
        ({"marks": {"start": "soon"}}, "marks.start: Input should be a valid number"),
    ],
)
def test_a_record_that_breaks_the_protocol_fails_its_peer_naming_the_field(
    change: dict[str, Any], reason: str
) -> None:
    got = accept_record(_record(**change), side="b", stack="pion", cfg=peer_config())
    assert got["state"] == "failed"
    assert got["reason"] is not None and got["reason"].startswith(f"peer b (pion): {reason}"), got["reason"]


def test_a_missing_key_and_a_held_call_without_call() -> None:
    rec = _record()
    del rec["stable"]
    got = accept_record(rec, side="a", stack="pion", cfg=peer_config())
    assert got["reason"] == "peer a (pion): stable: Field required"
    held = accept_record(_record(), side="a", stack="pion", cfg=peer_config(hold_s=5.0))
    assert held["reason"] == "peer a (pion): call: missing (the call was held)"


def test_not_an_object_is_refused() -> None:
    got = accept_record("oops", side="a", stack="pion", cfg=peer_config())
    assert (
        got["state"] == "failed" and got["reason"] is not None and got["reason"].startswith("peer a (pion): ")
    )
    assert got["protocol"] == PROTOCOL


def test_family_and_candidates_at_the_boundary() -> None:
    assert family_of("10.1.0.2:4000") == "ipv4"
    assert family_of("[2001:db8::1]:4000") == "ipv6"
    assert family_of("2001:db8::1") == "ipv6"
    assert family_of("1c2f-uuid.local:4000") is None and family_of(None) is None
    assert parse_candidate("candidate:1 1 udp 2122260223 10.1.0.2 41000 typ host generation 0") == {
        "type": "host",
        "protocol": "udp",
        "address": "10.1.0.2",
        "port": 41000,
        "family": "ipv4",
    }
    assert parse_candidate("candidate:2 1 UDP 1 2001:db8::2 9 typ srflx raddr :: rport 0")["family"] == "ipv6"
    assert parse_candidate("candidate:3 1 udp 1 abcd.local 9 typ host")["family"] is None
