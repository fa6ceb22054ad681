"""One pairing in a lab: run both peers, decide the verdict, and whether a relay was needed.

Alongside the run, a second pair of peers negotiates the same pairing with relay candidates unavailable
(STUN only, policy all); `needs_relay` is whether that run fails. A run that connects without a relay
already answers the question (`needs_relay = false`), so the relay-less run is then ended at once. Both
runs share the lab; their peers have their own sockets, hence their own NAT mappings.

This module does not import aiortc: the peers run in processes forked by netsim.peers.launcher.
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from netsim.lab import events as lab_events
from netsim.pause import pause_point
from netsim.peers.adapter import PeerPlace, PeerSession
from netsim.peers.browser import page_directory
from netsim.peers.launcher import Launcher
from netsim.peers.protocol import IceServer, RawPeerRecord, accept_record
from netsim.peers.stacks import peers_directory
from netsim.records import SCHEMA_VERSION, LaunchFigures, NeedsRelayRun, ResultRecord, Versions
from netsim.services.coturn import TURN_HOST
from netsim.services.signaling import make_token
from netsim.session import cpuwait, faults, keepalive, load
from netsim.session.call import call_section
from netsim.session.configs import peer_configs, user_names
from netsim.session.options import SessionOptions
from netsim.session.verdict import (
    failure_reason,
    families,
    negotiated,
    peer_record,
    session_timings,
    verdict,
    winner,
    with_timelines,
)
from netsim.versions import versions
from netsim.vocab import CHROMIUM, DIRECT_VERDICTS, FAILED, FIREFOX, NO_TURN, PION, SIDES

if TYPE_CHECKING:
    from netsim.lab.lab import Lab

WAIT_MARGIN_S = 12.0  # beyond the deadline: echo linger, closing, process exit
COTURN_LOG_CHARS = 4000
CONNECT_POLL_S = 0.02
CONNECT_SLACK_S = 2.0  # a peer connects within its deadline (browsers are started before it runs)


def start_peers(
    lab: Lab, launcher: Launcher, url: str, opts: SessionOptions, up_files: dict[str, Path] | None = None
) -> dict[str, PeerSession]:
    """Start peers a (impolite) and b (polite) for one negotiation, each through its stack's adapter in its
    host's namespace, with fresh user names. Processes that outlive a session (browsers) are started and
    ready before any config is made, so their start-up never eats a connect deadline. `up_files` (filled
    per side): where each peer says it connected, for a held call."""
    users = user_names()
    stacks = {"a": opts.peer_a, "b": opts.peer_b}
    coturn = lab.coturn
    ca = coturn.ca_file if coturn is not None else None
    places = peer_places(lab, url, opts)
    for stack in set(stacks.values()):
        launcher.adapter(stack).prepare([places[side] for side in SIDES if stacks[side] == stack])
    if up_files is not None:
        up_files.update({side: peers_directory(Path(lab.workdir)) / f"{users[side]}.up" for side in SIDES})
    cfgs = peer_configs(
        opts,
        users,
        signaling_url=url,
        tokens={side: make_token(str(lab.signaling_secret), users[side]) for side in SIDES},
        # Always an explicit list: with none, aiortc would use a public STUN server.
        ice_servers={
            side: cast(list[IceServer], coturn.ice_servers(opts.turn, users[side]))
            if coturn is not None
            else []
            for side in SIDES
        },
        ca_file=ca,
        connected_files=up_files,
    )
    return {side: launcher.adapter(stacks[side]).open(places[side]).run(cfgs[side]) for side in SIDES}


def peer_places(lab: Lab, url: str, opts: SessionOptions) -> dict[str, PeerPlace]:
    """Where each side's peer runs: its host's namespace, the lab's directory, signaling, CA and names."""
    coturn = lab.coturn
    ca = coturn.ca_file if coturn is not None else None
    names = ((TURN_HOST, coturn.ips[0]),) if coturn is not None else ()
    hosts = {"a": opts.host_a, "b": opts.host_b}
    return {
        side: PeerPlace(
            lab.netns(hosts[side]),
            Path(lab.workdir),
            url,
            ca,
            opts.hide_host,
            names,
            ipv4_only=getattr(opts, f"ipv4_only_{side}"),
        )
        for side in SIDES
    }


def wait_peers(procs: dict[str, PeerSession], timeout_s: float) -> tuple[RawPeerRecord, RawPeerRecord]:
    """Both raw peer records, checked against the protocol where they enter the session (a record that
    breaks it fails its side, naming the peer and the field), their pair timelines in seconds from the
    offer; a peer still running after timeout_s is ended (0 ends them now)."""
    a, b = (
        accept_record(procs[side].wait(timeout_s), side=side, stack=procs[side].stack, cfg=procs[side].cfg)
        for side in SIDES
    )
    return with_timelines(a, b)


@functools.cache
def _versions() -> Versions:
    """aiortc, aioice, coturn, kernel and Python versions: once per process (coturn's costs a subprocess)."""
    return versions()


def run_session(lab: Lab, opts: SessionOptions, launcher: Launcher | None = None) -> ResultRecord:
    """Run one pairing in `lab`; the result record (docs/DESIGN.md) without the run/scenario fields."""
    own = launcher is None
    launcher = launcher or Launcher()
    started_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    log_offset = lab.coturn.log_size() if lab.coturn is not None else 0
    meter = cpuwait.CpuWait()
    t0 = time.monotonic()
    try:
        # TCP 443, reachable through the udp-blocked firewall too; it serves the browser peers' page.
        url = str(lab.start_signaling(static_dir=page_directory()))
        _watch_services(meter, lab)
        up_files: dict[str, Path] = {}
        main = start_peers(lab, launcher, url, opts, up_files if opts.hold_s > 0 else None)
        _watch_peers(meter, main)
        pause_point("negotiation")
        # The relay-less run goes alongside (fresh sockets, so fresh NAT mappings): a pairing that needs a
        # relay costs one deadline, not two. It is ended at once when the main run connects without a relay.
        probe = None
        if opts.needs_relay and not relay_less(opts):
            relay_less_opts = opts.replace(turn=NO_TURN, policy="all", glare=False, hold_s=0.0, events=())
            probe = start_peers(lab, launcher, url, relay_less_opts)
            _watch_peers(meter, probe, "relay_less_")
        with contextlib.ExitStack() as captures:
            held = _hold(lab, opts, up_files, captures) if opts.hold_s > 0 else None
            a, b = wait_peers(main, opts.deadline_s + WAIT_MARGIN_S + opts.hold_s)
        result, relay_side = verdict(a, b)
        down = faults.coturn_down(lab)  # before the relay-less run's wait: what the main run had
        needs_relay, second = _needs_relay(result, opts, probe, (a, b))
    finally:
        waits = meter.stop()
        wall_s = round(time.monotonic() - t0, 3)
        if own:
            launcher.close()
    timings = session_timings(a, b)
    timings["cpu_wait_s"] = cpuwait.total(waits)
    timings["wall_s"] = wall_s
    won = winner(a, b)
    record: ResultRecord = {
        "schema_version": SCHEMA_VERSION,
        "nat_a": _nat_kind(lab, opts.host_a),
        "nat_b": _nat_kind(lab, opts.host_b),
        "turn": opts.turn,
        "policy": opts.policy,
        "glare": opts.glare,
        "verdict": result,
        "relay_side": relay_side,
        "first_verdict": won["first_verdict"],
        "disagreement": won["disagreement"],
        "settled_s": won["settled_s"],
        "needs_relay": needs_relay,
        "needs_relay_run": second,
        "reason": failure_reason(a, b) if result == FAILED else None,
        "connect_s": timings["channel_open_s"],
        "timings": timings,
        "a": peer_record(a),
        "b": peer_record(b),
        "launch": _launch_figures(a, b),
        "versions": _with_browsers(_versions(), a, b),
        "coturn_log": _coturn_excerpt(lab, log_offset),
        "started_at": started_at,
        "cpu_wait": waits,
        "cpu_wait_thread": meter.longest(),
        "infrastructure": faults.infrastructure(a, b, result, down, opts.deadline_s),
        "families": families(a, b),
    }
    if held is not None:
        record["call"] = call_section(
            a,
            b,
            hold_s=opts.hold_s,
            interval_s=opts.interval_s,
            connected=held.connected,
            events=held.events,
            keepalive=held.keepalive(),
        )
        record["call"]["cause"] = faults.call_cause(dict(record["call"]), down)
    record["load"] = load.judge(record, opts.deadline_s, opts.hold_s)
    return record


def _watch_services(meter: cpuwait.CpuWait, lab: Lab) -> None:
    """coturn's process and the signaling server (its thread here, or its process), then start sampling."""
    if lab.coturn is not None and lab.coturn.process is not None:
        pid = lab.coturn.process.pid
        meter.watch("coturn", lambda: [pid])
    if lab.signaling_process is not None:
        sig = lab.signaling_process.pid
        meter.watch("signaling", lambda: [sig])
    else:
        threads = [t.native_id for t in threading.enumerate() if t.name == "signaling" and t.native_id]
        meter.watch("signaling", lambda: list(threads), threads=True)
    meter.start()


def _watch_peers(meter: cpuwait.CpuWait, procs: dict[str, PeerSession], run: str = "") -> None:
    """A run's peers (parts a, b; relay_less_a, relay_less_b): an aiortc peer's process (started for it:
    counted from 0), or a Chromium peer's whole browser (browser_a, browser_b: its pages, GPU and network
    processes, shared by both runs' pages) from now on."""
    for side, proc in procs.items():
        browser = getattr(proc, "browser", None)
        pid: int | None = getattr(browser if browser is not None else proc, "pid", None)
        if pid:
            meter.watch(
                f"browser_{side}" if browser is not None else f"{run}{side}",
                functools.partial(list, [pid]),
                fresh=browser is None,
                tree=browser is not None,
            )


class _Held:
    """What the session saw of a held call: when both peers connected, the events it applied, and the
    keepalive captures at the hosts' routers (read once the call is over)."""

    def __init__(self, lab: Lab, opts: SessionOptions) -> None:
        self.lab = lab
        self.opts = opts
        self.connected: float | None = None
        self.events: list[dict[str, Any]] = []
        self.captures: dict[str, tuple[str, Path]] = {}  # side -> (router, pcap)

    def keepalive(self) -> dict[str, Any] | None:
        out: dict[str, Any] = {}
        for side, (router, path) in self.captures.items():
            wan = keepalive.router_wan(self.lab, router)
            data = path.read_bytes() if path.exists() else b""
            out[side] = {"router": router, **keepalive.keepalive(data, wan or "")}
        return out or None


def _hold(lab: Lab, opts: SessionOptions, up_files: dict[str, Path], captures: contextlib.ExitStack) -> _Held:
    """Wait until both peers connected, capture at their routers, and apply the events on time."""
    held = _Held(lab, opts)
    held.connected = _wait_connected(up_files, opts.deadline_s + CONNECT_SLACK_S)
    if held.connected is None:
        held.events = [
            {**e.as_dict(), "t": None, "detail": None, "error": "not applied: no connect"}
            for e in opts.events
        ]
        return held
    routers = {
        side: lab.topology.site_of(host).name
        for side, host in zip(SIDES, (opts.host_a, opts.host_b), strict=True)
    }
    for side, router in routers.items():
        if router in lab.plan and lab.plan[router].role == "router":
            path = Path(lab.workdir) / "peers" / f"keepalive-{side}.pcap"
            captures.enter_context(keepalive.capture(lab, router, path))
            held.captures[side] = (router, path)
    try:
        held.events = lab_events.run_timeline(lab, opts.events, held.connected)
    finally:
        lab_events.undo_all(lab, opts.events)
    return held


def _wait_connected(up_files: dict[str, Path], timeout_s: float) -> float | None:
    """When both peers had connected (monotonic; the later one's first echo), or None by the timeout."""
    deadline = time.monotonic() + timeout_s
    times: dict[str, float] = {}
    while time.monotonic() < deadline:
        for side, path in up_files.items():
            if side not in times and path.exists():
                with contextlib.suppress(OSError, ValueError, TypeError):
                    times[side] = float(json.loads(path.read_text())["t"])
        if len(times) == len(up_files):
            return max(times.values())
        time.sleep(CONNECT_POLL_S)
    return None


def _with_browsers(base: Versions, a: RawPeerRecord, b: RawPeerRecord) -> Versions:
    """Versions under test, with the browser's exact version when a side was Chromium or Firefox (their
    launch flags and prefs stay in the peer's record: they are launch settings, not versions), and
    pion/webrtc's when a side was Pion."""
    out = Versions(**base)
    for rec in (a, b):
        if rec["stack"] == CHROMIUM and rec["version"]:
            out["chromium"] = rec["version"]
        if rec["stack"] == FIREFOX and rec["version"]:
            out["firefox"] = rec["version"]
        if rec["stack"] == PION and rec["version"]:
            out["pion"] = rec["version"]
    return out


def relay_less(opts: SessionOptions) -> bool:
    """Whether the main run itself has no relay candidates (it then answers needs_relay on its own)."""
    return opts.turn == NO_TURN and opts.policy == "all"


def _needs_relay(
    result: str,
    opts: SessionOptions,
    probe: dict[str, PeerSession] | None,
    main: tuple[RawPeerRecord, RawPeerRecord],
) -> tuple[bool | None, NeedsRelayRun | None]:
    """(needs_relay, summary of the relay-less run or None when it was not needed)."""
    if result in DIRECT_VERDICTS:
        if probe is not None:
            wait_peers(probe, 0)  # the main run answered the question: end the probe now
        return False, None
    if relay_less(opts):
        # A run that never negotiated (a peer did not start) says nothing about ICE.
        return (result == FAILED if all(negotiated(p) for p in main) else None), None
    if probe is None:
        return None, None
    a, b = wait_peers(probe, opts.deadline_s + WAIT_MARGIN_S)
    second, _ = verdict(a, b)
    summary: NeedsRelayRun = {"verdict": second, "connect_s": None, "reason": failure_reason(a, b)}
    if second == FAILED and not (negotiated(a) and negotiated(b)):
        # No offer/answer got through (e.g. signaling unreachable): this says nothing about ICE.
        return None, summary
    summary["connect_s"] = session_timings(a, b)["channel_open_s"]
    return second == FAILED, summary


def _launch_figures(a: RawPeerRecord, b: RawPeerRecord) -> LaunchFigures:
    """Peer-ready latency (request to child in its namespace) and process start to first echo."""
    ready = [p["launch"]["ready_ms"] if "launch" in p else None for p in (a, b)]
    first = [p["timings"]["start_to_first_echo_s"] if p["timings"] is not None else None for p in (a, b)]
    known = [f for f in first if f is not None]
    return {
        "ready_ms": [r for r in ready if r is not None],
        "start_to_first_echo_s": max(known) if len(known) == len(first) else None,
    }


def _coturn_excerpt(lab: Lab, offset: int) -> str | None:
    """What coturn logged during this session (its tail, if long)."""
    if lab.coturn is None:
        return None
    return lab.coturn.log_since(offset)[-COTURN_LOG_CHARS:] or None


def _nat_kind(lab: Lab, host: str) -> str | None:
    """The NAT preset in front of `host`."""
    return lab.topology.site_of(host).nat.kind
