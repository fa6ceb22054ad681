"""Perfect negotiation between real aiortc connections, in-process (no network, no root).

The peers have no ICE servers and hide their host candidates, so every description carries no candidates:
the connections negotiate but never send a packet.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiortc import RTCPeerConnection

from netsim.peers.agent import rtc_configuration
from netsim.peers.echo import Echo
from netsim.peers.negotiation import Negotiation, outgoing_sdp, sdp_candidates
from netsim.peers.trace import Trace
from tests.peers.configs import peer_config

SDP = "\r\n".join(
    [
        "v=0",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "a=candidate:1 1 udp 2130706431 10.1.0.2 41000 typ host",
        "a=candidate:2 1 udp 1694498815 198.18.1.1 41000 typ srflx raddr 10.1.0.2 rport 41000",
        "a=candidate:3 1 udp 16777215 198.18.0.2 50000 typ relay raddr 198.18.1.1 rport 41000",
        "a=end-of-candidates",
        "",
    ]
)


def test_sdp_candidates_lists_every_candidate_line() -> None:
    assert sdp_candidates(SDP) == [
        "candidate:1 1 udp 2130706431 10.1.0.2 41000 typ host",
        "candidate:2 1 udp 1694498815 198.18.1.1 41000 typ srflx raddr 10.1.0.2 rport 41000",
        "candidate:3 1 udp 16777215 198.18.0.2 50000 typ relay raddr 198.18.1.1 rport 41000",
    ]


def test_outgoing_sdp_hides_only_host_candidates() -> None:
    assert outgoing_sdp(SDP, hide_host=False) == SDP
    hidden = SDP.replace("a=candidate:1 1 udp 2130706431 10.1.0.2 41000 typ host\r\n", "")
    assert outgoing_sdp(SDP, hide_host=True) == hidden


class _Side:
    """One peer's negotiation with a recording signaling channel."""

    def __init__(self, *, polite: bool, offer: bool, media: bool = False) -> None:
        self.cfg = peer_config(
            media=media,
            user="me",
            target="them",
            polite=polite,
            signaling_url="ws://x",
            offer=offer,
            hide_host=True,
            deadline_s=2.0,
        )
        self.trace = Trace()
        self.sent: list[dict[str, Any]] = []
        self.failures: list[str] = []
        self.pcs: list[RTCPeerConnection] = []
        echo = Echo(self.trace, count=1, interval_s=0.0, linger_s=1.0, on_open=lambda: True)
        self.neg = Negotiation(
            self.cfg, self.trace, echo, new_pc=self._new_pc, send=self._send, fail=self.failures.append
        )
        self.neg.start()

    def _new_pc(self) -> RTCPeerConnection:
        pc = RTCPeerConnection(rtc_configuration(self.cfg))
        self.pcs.append(pc)
        return pc

    async def _send(self, payload: dict[str, Any]) -> None:
        self.sent.append(payload)

    async def offer(self) -> dict[str, Any]:
        """Learn the other is present and let the offer go out; returns the offer sent."""
        self.neg.on_present()
        assert self.neg.offer_task is not None
        await self.neg.offer_task
        return self.sent[-1]

    async def close(self) -> None:
        await asyncio.gather(*self.neg.retiring, return_exceptions=True)
        for pc in self.pcs:
            await pc.close()


def _run(main: Any) -> Any:
    return asyncio.run(asyncio.wait_for(main(), timeout=10.0))


def test_offer_then_answer() -> None:
    async def main() -> tuple[_Side, _Side, list[str]]:
        a, b = _Side(polite=False, offer=True), _Side(polite=True, offer=False)
        try:
            offer = await a.offer()
            await b.neg.on_offer(offer)
            await a.neg.on_answer(b.sent[-1])
            return a, b, [pc.signalingState for pc in (*a.pcs, *b.pcs)]
        finally:
            await a.close()
            await b.close()

    a, b, states = _run(main)
    assert states == ["stable", "stable"]
    assert [(m["type"], m["id"]) for m in a.sent] == [("offer", 1)]
    assert [(m["type"], m["id"]) for m in b.sent] == [("answer", 1)]
    assert a.neg.summary() == {
        "offers_sent": 1,
        "ignored_offers": 0,
        "rollbacks": 0,
        "stale_answers": 0,
        "offerer": True,
    }
    assert b.neg.summary()["offerer"] is False
    assert "typ host" not in a.sent[0]["sdp"] and a.trace.candidates["local"] == []
    assert a.trace.gathering_s is not None and "offer" in a.trace.marks and "offer" in b.trace.marks
    assert a.failures == [] and b.failures == []


def test_an_answer_to_another_offer_is_dropped() -> None:
    async def main() -> tuple[_Side, str]:
        a, b = _Side(polite=False, offer=True), _Side(polite=True, offer=False)
        try:
            await b.neg.on_offer(await a.offer())
            await a.neg.on_answer({**b.sent[-1], "id": 99})
            return a, a.pcs[0].signalingState
        finally:
            await a.close()
            await b.close()

    a, state = _run(main)
    assert state == "have-local-offer" and a.neg.counts["stale_answers"] == 1


async def _glare(polite: bool) -> tuple[_Side, _Side]:
    """Both offer; `me` learns of the other's offer before its own offer task first ran."""
    other = _Side(polite=not polite, offer=True)
    me = _Side(polite=polite, offer=True)
    try:
        their_offer = await other.offer()
        me.neg.on_present()  # making_offer is set at once: the offer below collides
        await me.neg.on_offer(their_offer)
        if me.neg.offer_task is not None:
            await me.neg.offer_task
        return me, other
    finally:
        await me.close()
        await other.close()


def test_impolite_ignores_a_colliding_offer_and_sends_its_own() -> None:
    me, _ = _run(lambda: _glare(polite=False))
    assert [m["type"] for m in me.sent] == ["offer"]
    assert me.neg.counts["ignored_offers"] == 1 and me.neg.counts["rollbacks"] == 0
    assert len(me.pcs) == 1 and not me.neg.answered


def test_polite_replaces_its_connection_and_answers() -> None:
    me, other = _run(lambda: _glare(polite=True))
    assert [(m["type"], m["id"]) for m in me.sent] == [("answer", other.sent[0]["id"])]
    assert me.neg.counts["rollbacks"] == 1 and me.neg.counts["offers_sent"] == 0
    old, new = me.pcs
    assert me.neg.pc is new and old.signalingState == "closed"
    assert me.neg.summary()["offerer"] is False
    assert ("signaling", "rolled-back") in [(s["what"], s["state"]) for s in me.trace.states]


def test_a_peer_that_answered_never_offers() -> None:
    async def main() -> _Side:
        other = _Side(polite=False, offer=True)
        me = _Side(polite=True, offer=True)
        try:
            await me.neg.on_offer(await other.offer())  # the offer arrives before the presence
            me.neg.on_present()
            return me
        finally:
            await me.close()
            await other.close()

    me = _run(main)
    assert me.neg.offer_task is None and [m["type"] for m in me.sent] == ["answer"]


def test_a_failed_offer_is_reported() -> None:
    async def main() -> _Side:
        side = _Side(polite=False, offer=True)
        try:
            pc = side.neg.pc
            assert pc is not None
            await pc.close()  # createDataChannel on a closed connection raises
            side.neg.on_present()
            assert side.neg.offer_task is not None
            await side.neg.offer_task
            return side
        finally:
            await side.close()

    side = _run(main)
    assert len(side.failures) == 1 and side.failures[0].startswith("offer failed: ")
    assert not side.neg.making_offer and side.sent == []


@pytest.mark.parametrize("media", [False, True])
def test_answer_carries_media_when_asked(media: bool) -> None:
    async def main() -> str:
        a, b = _Side(polite=False, offer=True, media=media), _Side(polite=True, offer=False, media=media)
        try:
            await b.neg.on_offer(await a.offer())
            return str(b.sent[-1]["sdp"])
        finally:
            await a.close()
            await b.close()

    sdp = _run(main)
    assert ("m=audio" in sdp and "m=video" in sdp) is media


# --- trickled candidates from a browser peer ---------------------------------------------------------------

TRICKLED = {"type": "candidate", "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "ufA"}
SRFLX = "candidate:2 1 udp 1694498815 198.18.2.1 41000 typ srflx raddr 10.2.0.2 rport 41000"


class _Described:
    """A connection that has a remote description (ufrag ufA) and records what is added to it.

    A real RTCPeerConnection would start ICE checks towards the candidate, i.e. send packets from this
    test's namespace; the sessions in tests/peers/test_chromium.py cover the real path.
    """

    def __init__(self) -> None:
        self.remoteDescription = type("D", (), {"sdp": "v=0\r\na=ice-ufrag:ufA\r\na=ice-pwd:x\r\n"})()
        self.added: list[Any] = []

    async def addIceCandidate(self, candidate: Any) -> None:  # noqa: N802 (aiortc's name)
        self.added.append(candidate)


def test_trickled_candidates_wait_for_their_description() -> None:
    async def go() -> None:
        side = _Side(polite=True, offer=False)
        await side.neg.on_candidate({**TRICKLED, "candidate": SRFLX})
        assert side.neg.remote_queue == [{**TRICKLED, "candidate": SRFLX}]
        assert side.trace.candidates["remote"] == []
        await side.close()

    asyncio.run(go())


def test_trickled_candidates_are_added_unless_stale_mdns_or_end() -> None:
    async def go() -> None:
        side = _Side(polite=True, offer=False)
        pc = _Described()
        await side.neg.add_remote(pc, {**TRICKLED, "candidate": SRFLX})  # type: ignore[arg-type]
        await side.neg.add_remote(pc, {**TRICKLED, "candidate": SRFLX, "usernameFragment": "old"})  # type: ignore[arg-type]
        mdns = "candidate:1 1 udp 2113937151 3f1c-uuid.local 41000 typ host"
        await side.neg.add_remote(pc, {**TRICKLED, "candidate": mdns})  # type: ignore[arg-type]
        await side.neg.add_remote(pc, {**TRICKLED, "candidate": None})  # type: ignore[arg-type]
        assert [(c.type, c.ip, c.port, c.sdpMid, c.sdpMLineIndex) for c in pc.added] == [
            ("srflx", "198.18.2.1", 41000, "0", 0)
        ]
        assert side.trace.candidates["remote"] == [SRFLX]
        assert [n["state"] for n in side.trace.states if n["what"] == "candidate"] == ["mdns-unresolved"]
        await side.close()

    asyncio.run(go())
