"""aiortc peer agent: perfect negotiation, an echo data channel, the selected candidate pair and timings.

One peer runs per process, inside a host's network namespace (see launcher.py). It connects to the lab's
signaling server, negotiates one WebRTC session and returns the PEER record of docs/DESIGN.md.

Perfect negotiation (W3C pattern) with aiortc, which has no working rollback:
- the impolite peer ignores an offer that collides with its own;
- the polite peer "rolls back" by retiring its whole RTCPeerConnection (the one holding its pending offer)
  and answering the impolite offer on a fresh one. That costs one more candidate gathering on the polite side.
  The retired connection is closed in the background once its own offer task has finished.
A peer that has answered an offer never sends one of its own: one negotiation carries the whole session.

Every phase until the first echo runs under the connect deadline, so no peer waits for aioice's 63 s ICE
failure (or forever, for an offer without candidates).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol

from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.rtcconfiguration import RTCIceTransportPolicy

CLOSE_TIMEOUT_S = 3.0


@dataclass
class PeerConfig:
    user: str
    target: str
    polite: bool
    signaling_url: str
    token: str = ""
    ice_servers: list[dict[str, Any]] = field(default_factory=list)
    policy: str = "all"  # "all" | "relay"
    deadline_s: float = 10.0
    offer: bool = False  # whether this peer starts by offering (both do for glare)
    offer_delay_s: float = 0.0  # pause between a ready offer and sending it (orders glare)
    echo_count: int = 5
    echo_interval_s: float = 0.005
    linger_s: float = 2.0  # after connecting: how long to finish echoes and wait for the remote's
    media: bool = False
    hide_host: bool = (
        False  # send no host candidates (a browser whose mDNS names the other side can't resolve)
    )
    t0: float | None = None  # time.monotonic() when the peer was requested; defaults to run_peer start

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PeerConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


class AiortcInternalsError(RuntimeError):
    """aiortc/aioice no longer expose the selected pair where selected_pair() looks for it."""


def selected_pair(pc: RTCPeerConnection) -> dict[str, Any] | None:
    """The nominated candidate pair of the connection, or None before nomination.

    aiortc has no public API for it (getStats has no candidate-pair stats, aiortc #1435): it lives in the
    aioice Connection behind the ICE transport, `RTCIceTransport._connection._nominated[component]`. Checked
    against aiortc 1.16 / aioice 0.13. Raises AiortcInternalsError if an upgrade moved any of it.
    """
    try:
        sctp = pc.sctp  # bundled: the data channel's ICE transport carries everything
        ice = sctp.transport.transport if sctp else pc.getTransceivers()[0].receiver.transport.transport
        conn = ice._connection
        nominated = conn._nominated
        turn_ssl, turn_transport = conn.turn_ssl, conn.turn_transport
    except (AttributeError, IndexError) as exc:
        raise AiortcInternalsError(f"aiortc internals moved: {exc!r}") from exc
    if not isinstance(nominated, dict):
        raise AiortcInternalsError(f"aioice Connection._nominated is {type(nominated).__name__}, not dict")
    pair = nominated.get(1)
    if pair is None:
        return None
    try:
        local, remote = pair.local_candidate, pair.remote_candidate
        info: dict[str, Any] = {
            "local_type": local.type,
            "remote_type": remote.type,
            "local": f"{local.host}:{local.port}",
            "remote": f"{remote.host}:{remote.port}",
            "role": ice.role,
        }
    except AttributeError as exc:
        raise AiortcInternalsError(f"aioice CandidatePair moved: {exc!r}") from exc
    relayed = info["local_type"] == "relay"
    info["turn_transport"] = ("tls" if turn_ssl else str(turn_transport)) if relayed else None
    return info


class Signaling(Protocol):
    """Messages to and from the target peer through the lab's signaling server."""

    async def send(self, payload: dict[str, Any]) -> None: ...

    async def recv(self) -> dict[str, Any]: ...

    async def close(self) -> None: ...


SignalingFactory = Callable[[PeerConfig], Awaitable[Signaling]]


async def connect_signaling(cfg: PeerConfig) -> Signaling:
    """The lab's signaling server (netsim.signaling, protocol in docs/signaling.md)."""
    return await _LabSignaling.open(cfg)


class _LabSignaling:
    """Adapts SignalingClient to the peer: frames to/from the target only, presence as messages.

    The server forwards offer/answer/candidate/bye frames (extra keys pass through) and announces presence.
    Whether the target is already connected comes from the welcome, later arrivals as `presence` frames;
    the server sends a newcomer's presence to us before any frame from it, which is what makes glare
    detection reliable (see _Peer.on_present).
    """

    def __init__(self, client: Any, target: str) -> None:
        self.client = client
        self.target = target
        self.pending: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, cfg: PeerConfig) -> _LabSignaling:
        from netsim.services.signaling_client import SignalingClient

        client = SignalingClient()
        welcome = await client.connect(cfg.signaling_url, cfg.user, cfg.token, timeout=cfg.deadline_s)
        self = cls(client, cfg.target)
        status = welcome.get("presence", {}).get(cfg.target)
        if status is not None:
            self.pending.append({"type": "presence", "status": status})
        return self

    async def send(self, payload: dict[str, Any]) -> None:
        await self.client.send({**payload, "target": self.target})

    async def recv(self) -> dict[str, Any]:
        while not self.pending:
            msg = await self.client.recv()
            kind = msg.get("type")
            if kind == "presence" and msg.get("user") == self.target:
                self.pending.append({"type": "presence", "status": msg.get("status")})
            elif kind == "error" or msg.get("sender") == self.target:
                self.pending.append(msg)
        return self.pending.pop(0)

    async def close(self) -> None:
        await self.client.close()


def _sdp_candidates(sdp: str) -> list[str]:
    return [line[2:] for line in sdp.splitlines() if line.startswith("a=candidate:")]


def outgoing_sdp(sdp: str, hide_host: bool) -> str:
    """The SDP as sent; with hide_host, without host candidates, as browsers that publish only mDNS names
    look to a peer that can't resolve them (peers behind one NAT then need hairpinning or a relay)."""
    if not hide_host:
        return sdp
    lines = sdp.split("\r\n")
    return "\r\n".join(ln for ln in lines if not (ln.startswith("a=candidate:") and " typ host" in ln))


def _rtc_config(cfg: PeerConfig) -> RTCConfiguration:
    # Always an explicit list: with none, aiortc would contact a public Google STUN server.
    servers = [
        RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
        for s in cfg.ice_servers
    ]
    policy = {"all": RTCIceTransportPolicy.ALL, "relay": RTCIceTransportPolicy.RELAY}[cfg.policy]
    # Default (balanced) bundling: aiortc peers bundle anyway, and with MAX_BUNDLE plus media tracks aiortc
    # 1.16 left the offerer's ICE in `new` (the session never connected).
    return RTCConfiguration(iceServers=servers, iceTransportPolicy=policy)


class _Peer:
    def __init__(self, cfg: PeerConfig, signaling: SignalingFactory) -> None:
        self.cfg = cfg
        self.signaling_factory = signaling
        self.t0 = cfg.t0 if cfg.t0 is not None else time.monotonic()
        self.sig: Signaling | None = None
        self.pc: RTCPeerConnection | None = None
        self.making_offer = False
        self.present = False
        self.answered = False
        self.offer_id = 0
        self.offer_task: asyncio.Task[None] | None = None
        self.retiring: list[asyncio.Task[None]] = []
        self.channel: RTCDataChannel | None = None
        self.connected = asyncio.Event()  # first echo received
        self.remote_done = asyncio.Event()
        self.failed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.pongs: dict[int, asyncio.Future[float]] = {}
        self.rtts_ms: list[float] = []
        self.marks: dict[str, float] = {}
        self.states: list[dict[str, Any]] = []
        self.candidates: dict[str, list[str]] = {"local": [], "remote": []}
        self.gathering_s: float | None = None
        self.stats = {"offers_sent": 0, "ignored_offers": 0, "rollbacks": 0, "stale_answers": 0}
        self.pair: dict[str, Any] | None = None
        self.ice_state = "new"
        self.reader: asyncio.Task[None] | None = None
        self.tracks_received: list[str] = []
        self.echo_task: asyncio.Task[None] | None = None

    def now(self) -> float:
        return time.monotonic()

    def note(self, what: str, state: str) -> None:
        self.states.append({"t": round(self.now() - self.t0, 4), "what": what, "state": state})

    def fail(self, reason: str) -> None:
        if not self.failed.done():
            self.failed.set_result(reason)

    # --- peer connection -------------------------------------------------------------------------------

    def new_pc(self) -> RTCPeerConnection:
        pc = RTCPeerConnection(_rtc_config(self.cfg))

        def current() -> bool:
            return pc is self.pc

        @pc.on("iceconnectionstatechange")
        def _ice() -> None:
            if not current():
                return
            self.ice_state = pc.iceConnectionState
            self.note("ice", pc.iceConnectionState)
            if pc.iceConnectionState == "completed":
                self.marks.setdefault("ice_completed", self.now())
            elif pc.iceConnectionState == "failed":
                self.fail("ICE failed")

        @pc.on("connectionstatechange")
        def _conn() -> None:
            if current():
                self.note("pc", pc.connectionState)

        @pc.on("signalingstatechange")
        def _signaling() -> None:
            if current():
                self.note("signaling", pc.signalingState)

        @pc.on("track")
        def _track(track: Any) -> None:
            if current():
                self.tracks_received.append(track.kind)

        @pc.on("datachannel")
        def _channel(channel: RTCDataChannel) -> None:
            if current():
                self.attach(channel)

        return pc

    def add_media(self, pc: RTCPeerConnection) -> None:
        from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

        pc.addTrack(AudioStreamTrack())
        pc.addTrack(VideoStreamTrack())

    def attach(self, channel: RTCDataChannel) -> None:
        self.channel = channel

        @channel.on("message")
        def _message(raw: Any) -> None:
            if channel is self.channel:
                self.on_channel_message(channel, raw)

        def _open() -> None:
            if channel is self.channel:
                self.on_open()

        if channel.readyState == "open":  # a received channel is already open
            self.on_open()
        else:
            channel.on("open", _open)

    def on_open(self) -> None:
        if "channel_open" in self.marks:
            return
        self.marks["channel_open"] = self.now()
        self.note("channel", "open")
        assert self.pc is not None
        try:
            self.pair = selected_pair(self.pc) or self.pair
        except AiortcInternalsError as exc:
            self.fail(str(exc))  # a session without its selected pair must not pass as connected
            return
        self.echo_task = asyncio.get_running_loop().create_task(self.echo())

    def on_channel_message(self, channel: RTCDataChannel, raw: Any) -> None:
        msg = json.loads(raw)
        if msg["t"] == "ping":
            channel.send(json.dumps({"t": "pong", "seq": msg["seq"], "ts": msg["ts"]}))
        elif msg["t"] == "pong":
            fut = self.pongs.get(msg["seq"])
            if fut is not None and not fut.done():
                fut.set_result(self.now())
        elif msg["t"] == "done":
            self.remote_done.set()

    async def echo(self) -> None:
        """Send pings one at a time; the first pong marks the session connected."""
        channel = self.channel
        assert channel is not None
        for seq in range(self.cfg.echo_count):
            fut = asyncio.get_running_loop().create_future()
            self.pongs[seq] = fut
            sent = self.now()
            channel.send(json.dumps({"t": "ping", "seq": seq, "ts": sent}))
            try:
                got = await asyncio.wait_for(fut, timeout=max(self.cfg.linger_s, 1.0))
            except TimeoutError:
                continue
            self.rtts_ms.append((got - sent) * 1000)
            if not self.connected.is_set():
                self.marks["first_echo"] = got
                self.connected.set()
            await asyncio.sleep(self.cfg.echo_interval_s)
        if channel.readyState == "open":
            channel.send(json.dumps({"t": "done"}))

    # --- negotiation ----------------------------------------------------------------------------------

    async def send(self, payload: dict[str, Any]) -> None:
        assert self.sig is not None
        await self.sig.send(payload)

    async def make_offer(self, pc: RTCPeerConnection) -> None:
        # `pc` is bound when the task is created: a rollback may replace self.pc before the task first runs.
        if pc is not self.pc:
            return
        try:
            self.attach(pc.createDataChannel("echo"))
            if self.cfg.media:
                self.add_media(pc)
            started = self.now()
            await pc.setLocalDescription(await pc.createOffer())  # waits for gathering (half-trickle)
            if pc is not self.pc:
                return  # rolled back while gathering
            self.gathering_s = self.now() - started
            self.marks["offer"] = started
            self.offer_id += 1
            if self.cfg.offer_delay_s > 0:
                paused = self.now()
                await asyncio.sleep(self.cfg.offer_delay_s)
                self.marks["offer"] += self.now() - paused  # the deliberate delay is not negotiation time
            if pc is not self.pc or pc.signalingState != "have-local-offer":
                return
            sdp = outgoing_sdp(pc.localDescription.sdp, self.cfg.hide_host)
            self.candidates["local"] = _sdp_candidates(sdp)
            await self.send({"type": "offer", "sdp": sdp, "id": self.offer_id})
            self.stats["offers_sent"] += 1
        except Exception as exc:  # a task: nobody awaits it, so report instead of raising
            if pc is self.pc:
                self.fail(f"offer failed: {exc!r}")
        finally:
            if pc is self.pc:
                self.making_offer = False

    def on_present(self) -> None:
        if self.present:
            return
        self.present = True
        self.note("signaling", "peer-present")
        if self.cfg.offer and not self.answered:
            # Set synchronously: an offer processed after this point is a collision.
            self.making_offer = True
            assert self.pc is not None
            self.offer_task = asyncio.get_running_loop().create_task(self.make_offer(self.pc))

    async def rollback(self) -> None:
        """The polite side's rollback: retire the connection holding our offer, continue on a fresh one."""
        old, task = self.pc, self.offer_task
        self.pc = self.new_pc()
        self.making_offer = False
        self.offer_task = None
        self.channel = None
        self.marks.pop("offer", None)
        self.gathering_s = None
        self.candidates["local"] = []
        self.stats["rollbacks"] += 1
        self.note("signaling", "rolled-back")
        assert old is not None
        self.retiring.append(asyncio.get_running_loop().create_task(self.retire(old, task)))

    async def retire(self, pc: RTCPeerConnection, task: asyncio.Task[None] | None) -> None:
        # Let the old offer finish gathering rather than cancel it mid-way inside aiortc, then close it.
        if task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=self.cfg.deadline_s)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(pc.close(), timeout=CLOSE_TIMEOUT_S)

    async def on_offer(self, msg: dict[str, Any]) -> None:
        assert self.pc is not None
        collision = self.making_offer or self.pc.signalingState != "stable"
        if collision and not self.cfg.polite:
            self.stats["ignored_offers"] += 1
            self.note("signaling", "ignored-offer")
            return
        if collision:
            await self.rollback()
        pc = self.pc
        assert pc is not None
        self.answered = True
        self.marks["offer"] = self.now()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=msg["sdp"], type="offer"))
        self.candidates["remote"] = _sdp_candidates(msg["sdp"])
        if self.cfg.media:
            self.add_media(pc)
        started = self.now()
        await pc.setLocalDescription(await pc.createAnswer())
        self.gathering_s = self.now() - started
        sdp = outgoing_sdp(pc.localDescription.sdp, self.cfg.hide_host)
        self.candidates["local"] = _sdp_candidates(sdp)
        await self.send({"type": "answer", "sdp": sdp, "id": msg["id"]})

    async def on_answer(self, msg: dict[str, Any]) -> None:
        pc = self.pc
        assert pc is not None
        if pc.signalingState != "have-local-offer" or msg.get("id") != self.offer_id:
            self.stats["stale_answers"] += 1
            return
        await pc.setRemoteDescription(RTCSessionDescription(sdp=msg["sdp"], type="answer"))
        self.candidates["remote"] = _sdp_candidates(msg["sdp"])

    async def read_loop(self) -> None:
        assert self.sig is not None
        while True:
            msg = await self.sig.recv()
            kind = msg.get("type")
            if kind == "presence":
                self.note("remote", str(msg.get("status")))
                if msg.get("status") in ("online", "busy"):
                    self.on_present()
            elif kind == "error":
                self.note("signaling-error", f"{msg.get('code')}: {msg.get('message')}")
            elif kind == "offer":
                await self.on_offer(msg)
            elif kind == "answer":
                await self.on_answer(msg)
            elif kind == "bye":
                self.fail(f"remote gave up: {msg.get('reason')}")

    # --- lifecycle ------------------------------------------------------------------------------------

    async def connect(self) -> None:
        self.sig = await self.signaling_factory(self.cfg)
        self.note("signaling", "connected")
        self.pc = self.new_pc()
        self.reader = reader = asyncio.get_running_loop().create_task(self.read_loop())
        echoed: asyncio.Future[Any] = asyncio.ensure_future(self.connected.wait())
        try:
            waiters: list[asyncio.Future[Any]] = [reader, self.failed, echoed]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            echoed.cancel()
        if self.failed.done():
            raise _Failed(self.failed.result())
        if reader.done():
            reader.result()  # raises what broke the signaling
            raise _Failed("signaling closed")

    async def finish(self) -> None:
        """Complete our echoes and give the remote time to complete its own before closing."""

        async def both_done() -> None:
            if self.echo_task is not None:
                await self.echo_task
            await self.remote_done.wait()

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(both_done(), timeout=self.cfg.linger_s)

    def reason_for_timeout(self) -> str:
        pc = self.pc
        where = "signaling" if not self.present else ("negotiation" if pc is None else "")
        if pc is not None and self.present:
            where = f"ice={pc.iceConnectionState} signaling={pc.signalingState}"
            where += f" gathering={pc.iceGatheringState}"
        if "channel_open" in self.marks:
            where = "data channel open but no echo"
        return f"not connected within {self.cfg.deadline_s:g} s ({where})"

    async def run(self) -> dict[str, Any]:
        state, reason, error = "failed", None, None
        try:
            await asyncio.wait_for(self.connect(), timeout=self.cfg.deadline_s)
            state = "connected"
            await self.finish()
        except TimeoutError:
            reason = self.reason_for_timeout()
        except _Failed as exc:
            reason = str(exc)
        except Exception as exc:  # a peer always returns a record
            reason, error = f"error: {exc!r}", repr(exc)
        finally:
            await self.shutdown(state != "connected", reason)
        return self.record(state, reason, error)

    async def shutdown(self, tell_remote: bool, reason: str | None) -> None:
        if self.pc is not None:
            with contextlib.suppress(Exception):
                self.pair = selected_pair(self.pc) or self.pair
        if tell_remote and self.sig is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.send({"type": "bye", "reason": reason}), timeout=1.0)
        if self.reader is not None:
            self.reader.cancel()
        for task in [self.offer_task, self.echo_task, *self.retiring]:
            if task is not None:
                task.cancel()
        if self.pc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.pc.close(), timeout=CLOSE_TIMEOUT_S)
        if self.sig is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.sig.close(), timeout=1.0)

    def timings(self) -> dict[str, float | None]:
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
            "rtt_ms": round(statistics.median(self.rtts_ms), 3) if self.rtts_ms else None,
            "start_to_first_echo_s": round(first - self.t0, 4) if first is not None else None,
        }

    def record(self, state: str, reason: str | None, error: str | None) -> dict[str, Any]:
        pair = self.pair or {}
        return {
            "user": self.cfg.user,
            "local_type": pair.get("local_type"),
            "remote_type": pair.get("remote_type"),
            "local": pair.get("local"),
            "remote": pair.get("remote"),
            "role": pair.get("role"),
            "polite": self.cfg.polite,
            "turn_transport": pair.get("turn_transport"),
            "state": state,
            "ice_urls": [s["urls"] for s in self.cfg.ice_servers],  # credentials stay out of records
            "candidates": dict(self.candidates),
            "states": self.states,
            "timings": self.timings(),
            "marks": {k: round(v, 6) for k, v in {"start": self.t0, **self.marks}.items()},
            "negotiation": {**self.stats, "offerer": not self.answered and "offer" in self.marks},
            "echo": {"sent": len(self.pongs), "received": len(self.rtts_ms)},
            "media": {"sent": ["audio", "video"] if self.cfg.media else [], "received": self.tracks_received},
            "reason": reason,
            "error": error,
        }


class _Failed(Exception):
    pass


async def run_peer(cfg: PeerConfig, signaling: SignalingFactory | None = None) -> dict[str, Any]:
    """Run one peer to completion (connected or failed); always returns the PEER record."""
    if cfg.policy not in ("all", "relay"):
        raise ValueError(f"policy must be 'all' or 'relay', not {cfg.policy!r}")
    peer = _Peer(cfg, signaling or connect_signaling)
    return await peer.run()
