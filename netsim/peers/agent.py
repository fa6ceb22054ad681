"""The aiortc peer agent: wiring, the selected candidate pair, and `run_peer`.

One peer runs per process, inside a host's network namespace (forked there by netsim.peers.launcher). It
connects to the lab's signaling server, negotiates one WebRTC session and returns the PEER record of
docs/DESIGN.md. The concerns live beside this module: config.py (what the peer does), lab_signaling.py (its
side of the signaling server), negotiation.py (perfect negotiation), echo.py (the echo data channel),
trace.py (state notes, marks, timings, the record); docs/peers.md explains them.

Every phase until the first echo runs under the connect deadline, so no peer waits for aioice's 63 s ICE
failure (or forever, for an offer without candidates).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any, cast

import aioice
import aiortc
from aiortc import RTCConfiguration, RTCDataChannel, RTCIceServer, RTCPeerConnection
from aiortc.rtcconfiguration import RTCIceTransportPolicy

from netsim.peers.echo import Echo
from netsim.peers.hold import LABEL, MAX_RETRANSMITS, ORDERED, Hold
from netsim.peers.lab_signaling import Signaling, SignalingFactory, connect_signaling
from netsim.peers.negotiation import CLOSE_TIMEOUT_S, Negotiation
from netsim.peers.protocol import (
    PROTOCOL,
    PeerConfig,
    RawClosed,
    RawPair,
    RawPeerRecord,
    family_of,
    write_json_atomically,
)
from netsim.peers.trace import Trace
from netsim.vocab import AIORTC, POLICIES, RELAY, TLS

PAIR_POLL_S = 0.1
# What else a rerun needs to know of this stack (docs/peers.md, the record's `settings`).
SETTINGS = {
    "aioice": aioice.__version__,
    "nomination": "aggressive",
    "trickle": "half (all candidates in the SDP)",
}


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
            "local": _endpoint(local.host, local.port),
            "remote": _endpoint(remote.host, remote.port),
            "role": ice.role,
            "family": family_of(local.host) or ("ipv6" if ":" in str(local.host) else "ipv4"),
        }
    except AttributeError as exc:
        raise AiortcInternalsError(f"aioice CandidatePair moved: {exc!r}") from exc
    relayed = info["local_type"] == RELAY
    info["turn_transport"] = (TLS if turn_ssl else str(turn_transport)) if relayed else None
    return info


def _endpoint(host: object, port: object) -> str:
    """`v4:port` or `[v6]:port`, as the browsers' records write them (a bare IPv6 host:port is ambiguous)."""
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def rtc_configuration(cfg: PeerConfig) -> RTCConfiguration:
    """aiortc's configuration for the peer: its ICE servers and transport policy."""
    # Always an explicit list: with none, aiortc would contact a public Google STUN server.
    servers = [
        RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
        for s in cfg.ice_servers
    ]
    policy = {"all": RTCIceTransportPolicy.ALL, "relay": RTCIceTransportPolicy.RELAY}[cfg.policy]
    # Default (balanced) bundling: aiortc peers bundle anyway, and with MAX_BUNDLE plus media tracks aiortc
    # 1.16 left the offerer's ICE in `new` (the session never connected).
    return RTCConfiguration(iceServers=servers, iceTransportPolicy=policy)


class Peer:
    """One peer's wiring: signaling feeds the negotiation, the connection's events feed the trace and the
    echo, and run() turns whatever happened into the PEER record."""

    def __init__(self, cfg: PeerConfig, signaling: SignalingFactory) -> None:
        self.cfg = cfg
        self.signaling_factory = signaling
        self.sig: Signaling | None = None
        self.trace = Trace(cfg.t0)
        self.failed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.pair: dict[str, Any] | None = None
        self.pairs: list[RawPair] = []  # the selected pair over time: {"t": monotonic, **pair}
        self.pair_watch: asyncio.Task[None] | None = None
        self.tracks_received: list[str] = []
        self.reader: asyncio.Task[None] | None = None
        self.echo = Echo(
            self.trace,
            count=cfg.echo_count,
            interval_s=cfg.echo_interval_s,
            linger_s=cfg.linger_s,
            on_open=self.on_channel_open,
        )
        self.hold = Hold(self.trace, hold_s=cfg.hold_s, interval_s=cfg.interval_s) if cfg.hold_s > 0 else None
        self.closed: RawClosed | None = None  # the connection failed or closed while held
        # Closes count for the call only while it is held (not in the grace after it, when the other side
        # may already have hung up).
        self.hold_end: float | None = None
        self.negotiation = Negotiation(
            cfg,
            self.trace,
            self.echo,
            new_pc=self.new_pc,
            send=self.send,
            fail=self.fail,
            add_channels=self.add_hold_channel if self.hold is not None else None,
        )

    def fail(self, reason: str) -> None:
        """End the session as failed (the first reason wins); once connected, the call ends with it."""
        if not self.failed.done():
            self.failed.set_result(reason)
            if self.closed is None and self.hold_end is not None and self.trace.now() < self.hold_end:
                self.closed = {"t": round(self.trace.now(), 6), "reason": reason}

    def add_hold_channel(self, pc: RTCPeerConnection) -> None:
        """The offerer's hold channel, beside `echo`: unordered, no retransmissions (hold.py)."""
        assert self.hold is not None
        self.hold.attach(pc.createDataChannel(LABEL, ordered=ORDERED, maxRetransmits=MAX_RETRANSMITS))

    async def send(self, payload: dict[str, Any]) -> None:
        assert self.sig is not None
        await self.sig.send(payload)

    def new_pc(self) -> RTCPeerConnection:
        """A connection whose events count only while it is the negotiation's current one."""
        pc = RTCPeerConnection(rtc_configuration(self.cfg))
        trace = self.trace

        def current() -> bool:
            return pc is self.negotiation.pc

        @pc.on("iceconnectionstatechange")
        def _ice() -> None:
            if not current():
                return
            trace.note("ice", pc.iceConnectionState)
            if pc.iceConnectionState == "completed":
                trace.marks.setdefault("ice_completed", trace.now())
            elif pc.iceConnectionState == "failed":
                self.fail("ICE failed")

        @pc.on("connectionstatechange")
        def _conn() -> None:
            if current():
                trace.note("pc", pc.connectionState)
                if pc.connectionState in ("failed", "closed") and "first_echo" in trace.marks:
                    self.fail(f"connection {pc.connectionState}")

        @pc.on("signalingstatechange")
        def _signaling() -> None:
            if current():
                trace.note("signaling", pc.signalingState)

        @pc.on("track")
        def _track(track: Any) -> None:
            if current():
                self.tracks_received.append(track.kind)

        @pc.on("datachannel")
        def _channel(channel: RTCDataChannel) -> None:
            if not current():
                return
            if channel.label == LABEL and self.hold is not None:
                self.hold.attach(channel)
            else:
                self.echo.attach(channel)

        return pc

    def on_channel_open(self) -> bool:
        """Read the selected pair as the channel opens; a session without it must not pass as connected."""
        assert self.negotiation.pc is not None
        try:
            self.note_pair()
        except AiortcInternalsError as exc:
            self.fail(str(exc))
            return False
        self.pair_watch = asyncio.get_running_loop().create_task(self.watch_pair())
        return True

    def note_pair(self) -> None:
        """Read the selected pair; a change goes into the timeline with its time."""
        pc = self.negotiation.pc
        pair = selected_pair(pc) if pc is not None else None
        if pair is None:
            return
        self.pair = pair
        if not self.pairs or {**self.pairs[-1], "t": None} != {**pair, "t": None}:
            self.pairs.append(cast(RawPair, {"t": round(self.trace.now(), 6), **pair}))

    async def watch_pair(self) -> None:
        """aioice never renominates, but the controlled side may follow a controlling browser's new pair."""
        while True:
            await asyncio.sleep(PAIR_POLL_S)
            with contextlib.suppress(AiortcInternalsError):
                self.note_pair()

    async def read_loop(self) -> None:
        assert self.sig is not None
        while True:
            msg = await self.sig.recv()
            kind = msg.get("type")
            if kind == "presence":
                self.trace.note("remote", str(msg.get("status")))
                if msg.get("status") in ("online", "busy"):
                    self.negotiation.on_present()
            elif kind == "error":
                self.trace.note("signaling-error", f"{msg.get('code')}: {msg.get('message')}")
            elif kind == "offer":
                await self.negotiation.on_offer(msg)
            elif kind == "answer":
                await self.negotiation.on_answer(msg)
            elif kind == "candidate":
                await self.negotiation.on_candidate(msg)
            elif kind == "bye":
                self.fail(f"remote gave up: {msg.get('reason')}")

    async def connect(self) -> None:
        """Signaling, negotiation, ICE, DTLS/SCTP up to the first echo; _Failed if the session fails."""
        self.sig = await self.signaling_factory(self.cfg)
        self.trace.note("signaling", "connected")
        self.negotiation.start()
        self.reader = reader = asyncio.get_running_loop().create_task(self.read_loop())
        echoed: asyncio.Future[Any] = asyncio.ensure_future(self.echo.connected.wait())
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

    def reason_for_timeout(self) -> str:
        """Where the session stood when the deadline hit."""
        pc, present = self.negotiation.pc, self.negotiation.present
        where = "signaling" if not present else ("negotiation" if pc is None else "")
        if pc is not None and present:
            where = f"ice={pc.iceConnectionState} signaling={pc.signalingState}"
            where += f" gathering={pc.iceGatheringState}"
        if "channel_open" in self.trace.marks:
            where = "data channel open but no echo"
        return f"not connected within {self.cfg.deadline_s:g} s ({where})"

    async def run(self) -> RawPeerRecord:
        state, reason, error = "failed", None, None
        try:
            await asyncio.wait_for(self.connect(), timeout=self.cfg.deadline_s)
            state = "connected"
            self.signal_connected()
            held = self.start_hold()
            await self.until_failed(self.echo.finish())
            if held is not None:
                await self.until_failed(held)
        except TimeoutError:
            reason = self.reason_for_timeout()
        except _Failed as exc:
            reason = str(exc)
        except Exception as exc:  # a peer always returns a record
            reason, error = f"error: {exc!r}", repr(exc)
        finally:
            await self.shutdown(state != "connected", reason)
        record = self.trace.record(
            identity={
                "protocol": PROTOCOL,
                "stack": AIORTC,
                "version": aiortc.__version__,
                "settings": SETTINGS,
            },
            user=self.cfg.user,
            polite=self.cfg.polite,
            ice_urls=[s["urls"] for s in self.cfg.ice_servers],  # credentials stay out of records
            pair=self.pair,
            state=state,
            reason=reason,
            error=error,
            negotiation=self.negotiation.summary(),
            rtts_ms=self.echo.rtts_ms,
            pings_sent=self.echo.pings_sent,
            media_sent=["audio", "video"] if self.cfg.media else [],
            media_received=self.tracks_received,
            # The winner over time (docs/peers.md): aiortc's pair is settled as soon as it is nominated.
            pairs=self.pairs,
            stable=True,
            hide_host=self.cfg.hide_host,
        )
        if self.hold is not None:
            record["call"] = self.hold.call(self.closed)
        return record

    async def until_failed(self, aw: Awaitable[None]) -> None:
        """Await `aw`, or stop waiting once the session failed (a SIGTERM ends it within 2 s)."""
        task: asyncio.Future[Any] = asyncio.ensure_future(aw)
        waiters: list[asyncio.Future[Any]] = [task, self.failed]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def signal_connected(self) -> None:
        """Tell the session we are connected (it times network events from both peers' connect)."""
        path = self.cfg.connected_file
        if path is None:
            return
        with contextlib.suppress(OSError):
            write_json_atomically(path, {"t": self.trace.marks.get("first_echo")})

    def start_hold(self) -> asyncio.Task[None] | None:
        """Hold the call from our connect for hold_s, echoing on the hold channel (hold.py)."""
        if self.hold is None:
            return None
        start = self.trace.marks["first_echo"]
        self.hold_end = start + self.cfg.hold_s
        return asyncio.get_running_loop().create_task(self.hold.run(start, self.failed.done))

    async def shutdown(self, tell_remote: bool, reason: str | None) -> None:
        """Read the pair one last time, say bye if we failed, then close everything within bounded waits."""
        if self.pair_watch is not None:
            self.pair_watch.cancel()
        with contextlib.suppress(Exception):
            self.note_pair()
        if tell_remote and self.sig is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.send({"type": "bye", "reason": reason}), timeout=1.0)
        if self.reader is not None:
            self.reader.cancel()
        self.negotiation.cancel()
        self.echo.cancel()
        pc = self.negotiation.pc  # again: a polite peer may have replaced it while we said bye
        if pc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pc.close(), timeout=CLOSE_TIMEOUT_S)
        if self.sig is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.sig.close(), timeout=1.0)


class _Failed(Exception):
    pass


async def run_peer(cfg: PeerConfig, signaling: SignalingFactory | None = None) -> RawPeerRecord:
    """Run one peer to completion (connected or failed); always returns the PEER record."""
    if cfg.policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}, not {cfg.policy!r}")
    peer = Peer(cfg, signaling or connect_signaling)
    return await peer.run()
