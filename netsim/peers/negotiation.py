"""Perfect negotiation (the W3C pattern) on aiortc, which has no working rollback.

- An incoming offer *collides* when we are making an offer or are not in `stable`.
- The impolite peer ignores a colliding offer; the polite peer answers it.
- aiortc cannot roll back (a `rollback` description silently corrupts state, and setRemoteDescription(offer)
  in `have-local-offer` raises), so the polite peer *replaces its connection*: it retires the
  RTCPeerConnection holding its pending offer and answers on a fresh one. That costs one more candidate
  gathering. The retired connection is closed in the background once its own offer task has finished.
- A peer that has answered never sends an offer of its own: one negotiation carries the whole session.

Half-trickle: setLocalDescription waits for gathering and the SDP carries every candidate. docs/peers.md has
the whole story, including why glare is detected every time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiortc import AudioStreamTrack, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from aiortc.sdp import candidate_from_sdp

from netsim.peers.echo import Echo
from netsim.peers.trace import Trace

if TYPE_CHECKING:
    from netsim.peers.protocol import PeerConfig, RawNegotiation

CLOSE_TIMEOUT_S = 3.0  # aiortc's close can hang; a peer must still end


def sdp_candidates(sdp: str) -> list[str]:
    """The candidate lines of an SDP, without the `a=` prefix."""
    return [line[2:] for line in sdp.splitlines() if line.startswith("a=candidate:")]


def outgoing_sdp(sdp: str, hide_host: bool) -> str:
    """The SDP as sent; with hide_host, without host candidates, as browsers that publish only mDNS names
    look to a peer that can't resolve them (peers behind one NAT then need hairpinning or a relay)."""
    if not hide_host:
        return sdp
    lines = sdp.split("\r\n")
    return "\r\n".join(ln for ln in lines if not (ln.startswith("a=candidate:") and " typ host" in ln))


def sdp_ufrag(sdp: str) -> str | None:
    """The first `a=ice-ufrag:` of an SDP (bundled: one for the whole session)."""
    for line in sdp.splitlines():
        if line.startswith("a=ice-ufrag:"):
            return line.split(":", 1)[1].strip()
    return None


def add_media(pc: RTCPeerConnection) -> None:
    """aiortc's synthetic audio and video tracks (PeerConfig.media)."""
    pc.addTrack(AudioStreamTrack())
    pc.addTrack(VideoStreamTrack())


class Negotiation:
    """One peer's side of perfect negotiation; `pc` is the current connection, the only one that counts.

    Every handler runs on the event loop and checks, after each await, that the connection it works on is
    still `pc`: the polite peer may have replaced it meanwhile.
    """

    def __init__(
        self,
        cfg: PeerConfig,
        trace: Trace,
        echo: Echo,
        *,
        new_pc: Callable[[], RTCPeerConnection],
        send: Callable[[dict[str, Any]], Awaitable[None]],
        fail: Callable[[str], None],
        add_channels: Callable[[RTCPeerConnection], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.trace = trace
        self.echo = echo
        self.new_pc = new_pc
        self.send = send
        self.fail = fail
        self.add_channels = add_channels  # more channels beside `echo` in our offer (the hold channel)
        self.pc: RTCPeerConnection | None = None
        self.making_offer = False
        self.present = False  # the target is on the signaling server
        self.answered = False
        self.offer_id = 0  # of our latest offer; an answer must echo it
        self.offer_task: asyncio.Task[None] | None = None
        self.retiring: list[asyncio.Task[None]] = []
        self.counts = {"offers_sent": 0, "ignored_offers": 0, "rollbacks": 0, "stale_answers": 0}
        self.remote_queue: list[dict[str, Any]] = []  # trickled candidates that came before their description

    def start(self) -> None:
        """Open the first connection (once signaling is up)."""
        self.pc = self.new_pc()

    def on_present(self) -> None:
        """The target is present: an offering peer that has not answered starts its offer.

        Invariant: runs once; afterwards an offering peer has `making_offer` set and an offer task bound to
        the current connection.
        """
        if self.present:
            return
        self.present = True
        self.trace.note("signaling", "peer-present")
        if self.cfg.offer and not self.answered:
            # Set synchronously: an offer processed after this point is a collision. The signaling server
            # sends a newcomer's presence before anything from it, so a glare offer always finds this set.
            self.making_offer = True
            assert self.pc is not None
            self.offer_task = asyncio.get_running_loop().create_task(self.make_offer(self.pc))

    async def make_offer(self, pc: RTCPeerConnection) -> None:
        """Gather, then send our offer (after offer_delay_s) with a fresh id; a task, it reports via fail().

        Invariant: only sends while `pc` is still the current connection in `have-local-offer`; an offer of
        a replaced connection is never sent.
        """
        # `pc` is bound when the task is created: a replacement may happen before the task first runs.
        if pc is not self.pc:
            return
        try:
            self.echo.attach(pc.createDataChannel("echo"))
            if self.add_channels is not None:
                self.add_channels(pc)
            if self.cfg.media:
                add_media(pc)
            started = self.trace.now()
            await pc.setLocalDescription(await pc.createOffer())  # waits for gathering (half-trickle)
            if pc is not self.pc:
                return  # replaced while gathering
            self.trace.gathering_s = self.trace.now() - started
            self.trace.marks["offer"] = started
            self.offer_id += 1
            if self.cfg.offer_delay_s > 0:
                paused = self.trace.now()
                await asyncio.sleep(self.cfg.offer_delay_s)
                # The deliberate delay is not negotiation time.
                self.trace.marks["offer"] += self.trace.now() - paused
            if pc is not self.pc or pc.signalingState != "have-local-offer":
                return
            sdp = outgoing_sdp(pc.localDescription.sdp, self.cfg.hide_host)
            self.trace.candidates["local"] = sdp_candidates(sdp)
            await self.send({"type": "offer", "sdp": sdp, "id": self.offer_id})
            self.counts["offers_sent"] += 1
        except Exception as exc:  # nobody awaits this task: report instead of raising
            if pc is self.pc:
                self.fail(f"offer failed: {exc!r}")
        finally:
            if pc is self.pc:
                self.making_offer = False

    def replace_connection(self) -> None:
        """The polite peer's rollback: retire the connection holding our offer, continue on a fresh one.

        Invariant: no await inside, so no handler ever sees the old connection as current once it starts;
        afterwards `pc` is fresh (stable, no offer, no channel) and the old one is closed in the background.
        """
        old, task = self.pc, self.offer_task
        self.pc = self.new_pc()
        self.making_offer = False
        self.offer_task = None
        self.echo.detach()
        self.trace.marks.pop("offer", None)
        self.trace.gathering_s = None
        self.trace.candidates["local"] = []
        self.counts["rollbacks"] += 1
        self.trace.note("signaling", "rolled-back")
        assert old is not None
        self.retiring.append(asyncio.get_running_loop().create_task(self._retire(old, task)))

    async def _retire(self, pc: RTCPeerConnection, task: asyncio.Task[None] | None) -> None:
        """Close a replaced connection once its offer task has finished.

        Invariant: `pc` is no longer current, so its offer task sends nothing and its events are ignored.
        """
        # Let the old offer finish gathering: aiortc is not written to be cancelled in setLocalDescription.
        if task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=self.cfg.deadline_s)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(pc.close(), timeout=CLOSE_TIMEOUT_S)

    async def on_offer(self, msg: dict[str, Any]) -> None:
        """An offer from the target: ignore it (impolite, collision) or answer it (replacing our connection
        first if polite and colliding).

        Invariant: afterwards either nothing changed but the ignored count, or `answered` is set (this peer
        will never offer) and our answer, carrying the offer's id, was sent on the current connection.
        """
        assert self.pc is not None
        collision = self.making_offer or self.pc.signalingState != "stable"
        if collision and not self.cfg.polite:
            self.counts["ignored_offers"] += 1
            self.trace.note("signaling", "ignored-offer")
            return
        if collision:
            self.replace_connection()
        pc = self.pc
        assert pc is not None
        self.answered = True
        self.trace.marks["offer"] = self.trace.now()  # the answerer's negotiation starts here
        await pc.setRemoteDescription(RTCSessionDescription(sdp=msg["sdp"], type="offer"))
        self.trace.candidates["remote"] = sdp_candidates(msg["sdp"])
        await self.flush_remote(pc)
        if self.cfg.media:
            add_media(pc)
        started = self.trace.now()
        await pc.setLocalDescription(await pc.createAnswer())
        self.trace.gathering_s = self.trace.now() - started
        sdp = outgoing_sdp(pc.localDescription.sdp, self.cfg.hide_host)
        self.trace.candidates["local"] = sdp_candidates(sdp)
        await self.send({"type": "answer", "sdp": sdp, "id": msg["id"]})

    async def on_answer(self, msg: dict[str, Any]) -> None:
        """An answer from the target: applied only if it answers our current offer.

        Invariant: an answer is applied only in `have-local-offer` and with our latest offer's id; any other
        (to an offer of a replaced connection, say) is counted as stale and dropped.
        """
        pc = self.pc
        assert pc is not None
        if pc.signalingState != "have-local-offer" or msg.get("id") != self.offer_id:
            self.counts["stale_answers"] += 1
            return
        await pc.setRemoteDescription(RTCSessionDescription(sdp=msg["sdp"], type="answer"))
        self.trace.candidates["remote"] = sdp_candidates(msg["sdp"])
        await self.flush_remote(pc)

    async def on_candidate(self, msg: dict[str, Any]) -> None:
        """A trickled candidate (a browser peer trickles; aiortc itself puts all of its own in the SDP).

        Invariant: a candidate is added only to a connection holding the remote description it belongs to
        (same ICE ufrag); earlier ones wait in remote_queue. End-of-candidates and `.local` (mDNS) names,
        which this peer cannot resolve, are not added.
        """
        pc = self.pc
        assert pc is not None
        if pc.remoteDescription is None:
            self.remote_queue.append(msg)
            return
        await self.add_remote(pc, msg)

    async def flush_remote(self, pc: RTCPeerConnection) -> None:
        queued, self.remote_queue = self.remote_queue, []
        for msg in queued:
            await self.add_remote(pc, msg)

    async def add_remote(self, pc: RTCPeerConnection, msg: dict[str, Any]) -> None:
        line = msg.get("candidate") or ""
        ufrag = msg.get("usernameFragment")
        remote = pc.remoteDescription
        if not line or (ufrag and remote is not None and ufrag != sdp_ufrag(remote.sdp)):
            return  # end of candidates, or a candidate of an offer we ignored
        candidate = candidate_from_sdp(line.removeprefix("candidate:"))
        if candidate.ip.endswith(".local"):
            self.trace.note("candidate", "mdns-unresolved")
            return
        candidate.sdpMid = msg.get("sdpMid")
        candidate.sdpMLineIndex = msg.get("sdpMLineIndex")
        try:
            await pc.addIceCandidate(candidate)
        except Exception as exc:  # a malformed or unmatched candidate must not end the session
            self.trace.note("candidate", f"refused: {exc!r}")
            return
        self.trace.candidates["remote"].append(line)

    def summary(self) -> RawNegotiation:
        """The record's `negotiation`: the counts, and whether this side's offer carried the session."""
        c = self.counts
        return {
            "offers_sent": c["offers_sent"],
            "ignored_offers": c["ignored_offers"],
            "rollbacks": c["rollbacks"],
            "stale_answers": c["stale_answers"],
            "offerer": not self.answered and "offer" in self.trace.marks,
        }

    def cancel(self) -> None:
        """Cancel the offer task and the retirements still running (the peer is shutting down)."""
        for task in [self.offer_task, *self.retiring]:
            if task is not None:
                task.cancel()
