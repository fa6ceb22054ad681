"""The peer agent: selected-pair internals, configuration, the deadline, a whole peer run (no network)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from types import SimpleNamespace
from typing import Any

import aioice
import pytest
from aioice.candidate import Candidate
from aioice.ice import CandidatePair
from aiortc import RTCPeerConnection
from aiortc.rtcconfiguration import RTCIceTransportPolicy

from netsim.peers.agent import AiortcInternalsError, rtc_configuration, run_peer, selected_pair
from netsim.peers.protocol import PeerConfig, RawPeerRecord, accept_record
from tests.peers.configs import peer_config

# The record run_peer returns: the protocol's RawPeerRecord (docs/peers.md), checked by the session.
RECORD_KEYS = set(RawPeerRecord.__annotations__) - {"call", "launch"}  # call: held only; launch: netsim's
# The config's keys, in the protocol's order (docs/peers.md, "The config").
CONFIG_FIELDS = [f.name for f in dataclasses.fields(PeerConfig)]


class _Protocol:
    """Stands in for aioice's StunProtocol: a CandidatePair reads only `local_candidate` from it."""

    def __init__(self, candidate: Candidate) -> None:
        self.local_candidate = candidate


def _candidate(kind: str, host: str, port: int) -> Candidate:
    return Candidate("1", 1, "udp", 100, host, port, kind)


async def _pc_with_channel() -> RTCPeerConnection:
    pc = RTCPeerConnection(
        rtc_configuration(peer_config(user="a", target="b", polite=False, signaling_url="ws://x"))
    )
    pc.createDataChannel("echo")  # creates the SCTP/DTLS/ICE transports without any network
    return pc


def _ice(pc: RTCPeerConnection) -> Any:
    assert pc.sctp is not None
    return pc.sctp.transport.transport


def test_selected_pair_reads_aioice_nominated_pair() -> None:
    """Fails loudly if an aiortc/aioice upgrade moves the nominated pair (aiortc has no public API for it)."""

    async def main() -> tuple[Any, Any, str]:
        pc = await _pc_with_channel()
        try:
            before = selected_pair(pc)  # raises AiortcInternalsError if the path is gone
            ice = _ice(pc)
            conn = ice._connection
            assert isinstance(conn, aioice.Connection)
            local = _candidate("relay", "198.18.0.2", 50000)
            remote = _candidate("prflx", "198.18.2.1", 40000)
            conn._nominated[1] = CandidatePair(_Protocol(local), remote)  # type: ignore[arg-type]
            conn.turn_ssl, conn.turn_transport = False, "tcp"
            return before, selected_pair(pc), ice.role
        finally:
            await pc.close()

    before, after, role = asyncio.run(main())
    assert before is None
    assert after == {
        "local_type": "relay",
        "remote_type": "prflx",
        "local": "198.18.0.2:50000",
        "remote": "198.18.2.1:40000",
        "role": role,
        "turn_transport": "tcp",
        "family": "ipv4",
    }


def test_selected_pair_tls_and_direct() -> None:
    async def main() -> list[dict[str, Any] | None]:
        pc = await _pc_with_channel()
        try:
            conn = _ice(pc)._connection
            conn.turn_ssl, conn.turn_transport = True, "tcp"
            out = []
            for kind in ("relay", "host"):
                conn._nominated[1] = CandidatePair(
                    _Protocol(_candidate(kind, "10.1.0.2", 1)),  # type: ignore[arg-type]
                    _candidate("srflx", "198.18.2.1", 2),
                )
                out.append(selected_pair(pc))
            return out
        finally:
            await pc.close()

    relayed, direct = asyncio.run(main())
    assert relayed is not None and relayed["turn_transport"] == "tls"
    assert direct is not None and direct["turn_transport"] is None and direct["local_type"] == "host"


def test_an_ipv6_pair_is_written_with_brackets_and_its_family() -> None:
    async def main() -> dict[str, Any] | None:
        pc = await _pc_with_channel()
        try:
            conn = _ice(pc)._connection
            conn._nominated[1] = CandidatePair(
                _Protocol(_candidate("host", "2001:db8:1::2", 5000)),  # type: ignore[arg-type]
                _candidate("host", "2001:db8:2::2", 6000),
            )
            return selected_pair(pc)
        finally:
            await pc.close()

    pair = asyncio.run(main())
    assert pair is not None
    assert (pair["local"], pair["remote"], pair["family"]) == (
        "[2001:db8:1::2]:5000",
        "[2001:db8:2::2]:6000",
        "ipv6",
    )


def test_selected_pair_raises_when_internals_move() -> None:
    moved = SimpleNamespace(sctp=SimpleNamespace(transport=SimpleNamespace(transport=SimpleNamespace())))
    with pytest.raises(AiortcInternalsError, match="_connection"):
        selected_pair(moved)  # type: ignore[arg-type]

    async def main() -> None:
        pc = await _pc_with_channel()
        conn = _ice(pc)._connection
        saved = conn._nominated
        conn._nominated = []
        try:
            selected_pair(pc)
        finally:
            conn._nominated = saved
            await pc.close()

    with pytest.raises(AiortcInternalsError, match="not dict"):
        asyncio.run(main())


def testrtc_configuration_is_explicit() -> None:
    servers = [
        {"urls": "stun:198.18.0.2:3478"},
        {"urls": "turn:198.18.0.2:3478", "username": "u", "credential": "p"},
    ]
    cfg = rtc_configuration(
        peer_config(
            user="a", target="b", polite=False, signaling_url="ws://x", ice_servers=servers, policy="relay"
        )
    )
    assert cfg.iceTransportPolicy == RTCIceTransportPolicy.RELAY
    assert cfg.iceServers is not None and [s.urls for s in cfg.iceServers] == [s["urls"] for s in servers]
    assert cfg.iceServers[1].username == "u" and cfg.iceServers[1].credential == "p"
    empty = rtc_configuration(peer_config(user="a", target="b", polite=False, signaling_url="ws://x"))
    assert empty.iceServers == []  # never None: aiortc would then use a public Google STUN server


def test_peer_config_keys_are_the_protocols() -> None:
    cfg = peer_config(polite=True, token="t", offer=True, offer_delay_s=0.2, deadline_s=3)
    assert list(cfg.to_json()) == CONFIG_FIELDS
    assert PeerConfig.from_json(json.dumps(cfg.to_json())) == cfg


class _SilentSignaling:
    """A signaling channel on which the target never shows up."""

    async def send(self, payload: dict[str, Any]) -> None:
        pass

    async def recv(self) -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def close(self) -> None:
        pass


def test_peer_ends_failed_at_the_deadline() -> None:
    async def factory(cfg: PeerConfig) -> _SilentSignaling:
        return _SilentSignaling()

    cfg = peer_config(user="a", target="b", polite=False, signaling_url="ws://x", offer=True, deadline_s=0.5)
    t0 = time.monotonic()
    rec = asyncio.run(run_peer(cfg, factory))
    elapsed = time.monotonic() - t0
    assert rec["state"] == "failed"
    assert "not connected within 0.5 s" in rec["reason"] and "signaling" in rec["reason"]
    assert elapsed < 0.5 + 1.5, elapsed
    assert set(rec) == RECORD_KEYS
    assert accept_record(rec, side="a", stack="aiortc", cfg=cfg) == rec  # it keeps the protocol
    assert rec["local_type"] is None and rec["timings"]["first_echo_s"] is None
    assert rec["negotiation"] == {
        "offers_sent": 0,
        "ignored_offers": 0,
        "rollbacks": 0,
        "stale_answers": 0,
        "offerer": False,
    }
    assert rec["echo"] == {"sent": 0, "received": 0} and rec["media"] == {"sent": [], "received": []}
    notes = [(s["what"], s["state"]) for s in rec["states"]]
    assert notes[0] == ("signaling", "connected") and ("signaling", "peer-present") not in notes, notes


def test_peer_reports_remote_bye() -> None:
    class _Bye(_SilentSignaling):
        def __init__(self) -> None:
            self.sent: list[dict[str, Any]] = []
            self.msgs = [{"type": "presence", "status": "online"}, {"type": "bye", "reason": "gave up"}]

        async def recv(self) -> dict[str, Any]:
            if self.msgs:
                return self.msgs.pop(0)
            return await super().recv()

    async def factory(cfg: PeerConfig) -> _Bye:
        return _Bye()

    rec = asyncio.run(
        run_peer(
            peer_config(user="a", target="b", polite=True, signaling_url="ws://x", deadline_s=5), factory
        )
    )
    assert rec["state"] == "failed" and rec["reason"] == "remote gave up: gave up"


def test_bad_policy_is_rejected() -> None:
    with pytest.raises(ValueError, match="policy must be one of all, relay, not 'any'"):
        asyncio.run(
            run_peer(peer_config(user="a", target="b", polite=False, signaling_url="ws://x", policy="any"))
        )


class _Scripted(_SilentSignaling):
    """Delivers the target's presence and its offer back to back, then stays silent; records what we send."""

    def __init__(self, offer_sdp: str) -> None:
        self.sent: list[dict[str, Any]] = []
        self.msgs: list[dict[str, Any]] = [
            {"type": "presence", "status": "online"},
            {"type": "offer", "sdp": offer_sdp, "id": 7},
        ]

    async def send(self, payload: dict[str, Any]) -> None:
        self.sent.append(payload)

    async def recv(self) -> dict[str, Any]:
        if self.msgs:
            return self.msgs.pop(0)  # no suspension in between: the offer lands before our offer task runs
        return await super().recv()


async def _remote_offer_without_candidates() -> str:
    """A real aiortc offer, stripped of its candidates so that nobody ever sends a connectivity check."""
    pc = RTCPeerConnection(
        rtc_configuration(peer_config(user="b", target="a", polite=False, signaling_url="ws://x"))
    )
    try:
        pc.createDataChannel("echo")
        await pc.setLocalDescription(await pc.createOffer())  # host candidates only: binds, sends nothing
        sdp = pc.localDescription.sdp
    finally:
        await pc.close()
    return "".join(line + "\r\n" for line in sdp.splitlines() if not line.startswith("a=candidate:"))


@pytest.mark.parametrize("polite", [True, False])
def test_glare_when_the_offer_arrives_with_the_presence(polite: bool) -> None:
    """Both sides offer. Polite: discard our offer and answer theirs. Impolite: ignore theirs, send ours."""
    scripted: list[_Scripted] = []

    async def main() -> dict[str, Any]:
        offer = await _remote_offer_without_candidates()

        async def factory(cfg: PeerConfig) -> _Scripted:
            scripted.append(_Scripted(offer))
            return scripted[0]

        cfg = peer_config(
            user="a", target="b", polite=polite, signaling_url="ws://x", offer=True, deadline_s=1.0
        )
        rec: dict[str, Any] = await run_peer(cfg, factory)
        return rec

    rec = asyncio.run(main())
    sent = [m["type"] for m in scripted[0].sent if m["type"] != "bye"]
    neg = rec["negotiation"]
    # No candidates on purpose: it can only end at the deadline, with nothing broken on the way.
    assert rec["state"] == "failed" and rec["reason"].startswith("not connected within 1 s"), rec["reason"]
    if polite:
        assert neg["rollbacks"] == 1 and neg["ignored_offers"] == 0 and neg["offers_sent"] == 0
        assert sent == ["answer"] and scripted[0].sent[0]["id"] == 7
        signaling = [s["state"] for s in rec["states"] if s["what"] == "signaling"]
        after = signaling[signaling.index("rolled-back") + 1 :]
        assert after[:2] == ["have-remote-offer", "stable"] and "have-local-offer" not in after, signaling
        assert (
            "a=setup:active" in scripted[0].sent[0]["sdp"] or "a=setup:passive" in scripted[0].sent[0]["sdp"]
        )
    else:
        assert neg["rollbacks"] == 0 and neg["ignored_offers"] == 1 and neg["offers_sent"] == 1
        assert sent == ["offer"] and "a=setup:actpass" in scripted[0].sent[0]["sdp"]
