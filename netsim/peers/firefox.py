"""The Firefox peer: headless Firefox (nICEr) in a host's namespace, driven over WebDriver BiDi.

Firefox has no pipe transport and Debian no geckodriver, so the controller speaks BiDi to the agent Firefox
itself runs (`--remote-debugging-port=0`), over a socket made inside the host's namespace
(netsim.peers.bidi): nothing is bridged. The page is the Chromium peer's (netsim/peers/page/, served by the
lab's signaling server): same signaling, negotiation, echo, hold and pair timeline; the controller hands
each session's config to the running page and collects its raw record. The browsers of a run live in the
pool every browser stack shares (netsim.peers.chromium_pool.Browsers), one per host and options.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netsim.lab import netns
from netsim.peers import firefox_launch as fl
from netsim.peers.adapter import Bound, PeerPlace
from netsim.peers.bidi import BidiError, BidiSession, one_line
from netsim.peers.browser import APP_PATH, PAGE, clock_offset, ended_by, kill_tree, page_origin, watch
from netsim.peers.chromium import Controller
from netsim.peers.chromium_pool import BrowserPeer, Browsers
from netsim.peers.protocol import IceServer, PeerConfig, failed_record
from netsim.vocab import FIREFOX

CLOSE_TIMEOUT_S = 3.0  # browser.close to the process gone: 0.6-1.5 s in a lab namespace
STRAY_WAIT_S = 1.0  # its crash helper exits on its own shortly after
EXIT_POLL_S = 0.05
STOP_TIMEOUT_S = 1.0
CRASHED = "browser crashed"  # how a record says its browser died under it (netsim.session.faults reads it)


@dataclass(frozen=True)
class FirefoxSpec:
    """What a browser is bound to: a host's namespace, the page's URL, mDNS, the lab's host names it
    resolves (name -> address: the TURN server's, for TURN over TLS) and the CA its profile trusts."""

    netns: str
    page_url: str
    hide_host: bool
    names: tuple[tuple[str, str], ...]
    ca_file: Path | None
    workdir: Path


def firefox_spec(place: PeerPlace) -> FirefoxSpec:
    ca = place.ca_file if place.ca_file is not None and place.ca_file.exists() else None
    page = f"{page_origin(place.signaling_url)}{APP_PATH}{PAGE}"
    return FirefoxSpec(place.netns, page, place.hide_host, place.names, ca, place.workdir / "browsers")


def _key(spec: FirefoxSpec) -> tuple[Any, ...]:
    return (spec.netns, spec.hide_host, spec.names, spec.ca_file)


@dataclass
class FirefoxBrowser:
    """One headless Firefox in a host's namespace with one page that runs netsim peers (a PooledBrowser)."""

    spec: FirefoxSpec
    controller: Controller
    stack: str = FIREFOX
    directory: Path = field(init=False)
    launched: fl.Launched | None = None
    bidi: BidiSession | None = None
    context: str | None = None
    version: str | None = None
    build_id: str | None = None
    prefs: dict[str, fl.PrefValue] = field(default_factory=dict)
    crashed: str | None = None
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)  # user -> record as of late
    refs: int = 0
    t_spawn: float = 0.0
    ready_s: float | None = None
    close_s: float | None = None
    started: asyncio.Future[None] | None = None

    def __post_init__(self) -> None:
        self.directory = self.spec.workdir / f"firefox-{secrets.token_hex(4)}"

    @property
    def pid(self) -> int | None:
        return self.launched.pid if self.launched is not None else None

    async def ensure_started(self) -> None:
        if self.started is None:
            self.started = asyncio.ensure_future(self._start())
        await asyncio.shield(self.started)

    async def _start(self) -> None:
        """Profile, launch, BiDi session, the page loaded; FirefoxError (the record's reason) otherwise."""
        self.t_spawn = time.monotonic()
        loop = asyncio.get_running_loop()
        try:
            binary = fl.firefox_binary()
            self.prefs = fl.prefs(self.spec.hide_host)
            self.directory.mkdir(parents=True)
            profile = await loop.run_in_executor(
                None, fl.make_profile, self.directory, self.prefs, self.spec.ca_file
            )
            names = dict(self.spec.names)
            self.launched = fl.launch(self.spec.netns, binary, self.directory, profile, names)
            url = await loop.run_in_executor(None, fl.wait_bidi_url, self.launched)
            self.bidi = await BidiSession.connect(url, self.spec.netns)
            self.version = self.bidi.capabilities.get("browserVersion") or fl.application_version(binary)
            self.build_id = self.bidi.capabilities.get("moz:buildID")
            self.context = await self.bidi.top_context()
            await self.bidi.navigate(self.context, self.spec.page_url, timeout_s=fl.LISTEN_TIMEOUT_S)
            if await self.evaluate("window.netsimReady === true") is not True:
                raise fl.FirefoxError(f"the page at {self.spec.page_url} did not load its modules")
        except (fl.FirefoxError, BidiError, OSError) as exc:
            self.crashed = f"firefox did not start: {one_line(exc)}"
            raise fl.FirefoxError(self.crashed) from None
        self.ready_s = time.monotonic() - self.t_spawn

    def exited(self) -> str | None:
        """How the browser process ended, or None while it runs."""
        code = self.launched.proc.poll() if self.launched is not None else None
        if code is None:
            return None
        return f"firefox exited (signal {-code})" if code < 0 else f"firefox exited ({code})"

    async def _exit_status(self, within_s: float = 1.0) -> str | None:
        """How the browser ended, waiting briefly: its BiDi socket closes a moment before its exit can be
        reaped, and a killed browser must be named as killed, not as a lost connection."""
        if self.bidi is None or not self.bidi.lost:
            return self.exited()
        deadline = time.monotonic() + within_s
        while (died := self.exited()) is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return died

    async def evaluate(self, expression: str, timeout_s: float | None = 10.0) -> Any:
        if self.bidi is None or self.context is None:
            raise fl.FirefoxError(self.crashed or "firefox not started")
        return await self.bidi.evaluate(self.context, expression, timeout_s)

    async def clock_offset(self) -> float:
        return await clock_offset(lambda: self.evaluate("performance.now()"))

    async def run_peer(self, cfg: PeerConfig) -> object:
        """Run one session in the page (its config handed over now) and return its raw record (failed,
        with a reason, on any error). The page is the Chromium peer's: the stack, the exact version and
        the settings are filled in here."""
        try:
            await self.ensure_started()
            offset = await self.clock_offset()
            arg = json.dumps(json.dumps({**cfg.to_json(), "clock_offset": offset}))
            watching = asyncio.ensure_future(self._watch(cfg))
            try:
                # The record comes back as JSON text: BiDi's own serialisation of deep objects is lossy.
                raw = await self.evaluate(
                    f"window.netsimPeer(JSON.parse({arg})).then(r => JSON.stringify(r))", timeout_s=None
                )
            finally:
                watching.cancel()
                await asyncio.wait({watching}, timeout=STOP_TIMEOUT_S)
            record: object = json.loads(raw)
        except Exception as exc:
            died = await self._exit_status()
            if died and not self.crashed:
                self.crashed = f"{CRASHED}: {died}"  # the pool replaces a browser that died
            why = self.crashed or f"firefox: {one_line(exc)}"
            last = self.snapshots.pop(cfg.user, None)
            if last is None:
                return failed_record(cfg, FIREFOX, why)
            # It had connected: the record keeps that, ended now (a fault of the lab, not of the NATs).
            record = ended_by(last, why if why.startswith(CRASHED) else f"{CRASHED}: {why}")
        self.snapshots.pop(cfg.user, None)
        if isinstance(record, dict):
            record.update(stack=FIREFOX, version=self.version, settings=self.settings())
        return record

    def settings(self) -> dict[str, Any]:
        """The record's settings: build, every pref of the profile, the names it resolves, the CA."""
        return {
            "build_id": self.build_id,
            "prefs": dict(self.prefs),
            "mdns": self.spec.hide_host,
            "hosts": dict(self.spec.names),
            "ca": self.spec.ca_file is not None,
        }

    async def _watch(self, cfg: PeerConfig) -> None:
        user = json.dumps(cfg.user)

        async def snapshot() -> dict[str, Any] | None:
            raw = await self.evaluate(f"JSON.stringify(window.netsimSnapshot({user}))")
            snap = json.loads(raw) if isinstance(raw, str) else None
            return snap if isinstance(snap, dict) else None

        await watch(cfg, lambda: self.evaluate(f"window.netsimConnectedAt({user})"), snapshot, self.snapshots)

    async def stop_peer(self, user: str, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self.evaluate(
                f"window.netsimStop({json.dumps(user)}, {json.dumps(reason)})", timeout_s=STOP_TIMEOUT_S
            )

    async def close(self) -> None:
        """browser.close; the process gone within CLOSE_TIMEOUT_S or killed with its tree by pid; then
        the browser's directory (profile, home, temporary files) removed."""
        if self.started is not None and not self.started.done():
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self.started), fl.LISTEN_TIMEOUT_S)
        t0 = time.monotonic()
        if self.bidi is not None:
            await self.bidi.close_browser()
        if self.launched is not None:
            while self.launched.proc.poll() is None and time.monotonic() - t0 < CLOSE_TIMEOUT_S:
                await asyncio.sleep(EXIT_POLL_S)
            self.close_s = time.monotonic() - t0
            self.kill()
            with contextlib.suppress(Exception):
                await asyncio.get_running_loop().run_in_executor(None, self.launched.proc.wait, 5)
            while fl.strays(self.directory) and time.monotonic() - t0 < CLOSE_TIMEOUT_S + STRAY_WAIT_S:
                await asyncio.sleep(EXIT_POLL_S)  # the crash helper follows its browser out
            self.kill_strays()
        shutil.rmtree(self.directory, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL the browser's process tree if it is still this browser, and what it left outside it."""
        if self.launched is None:
            return
        if self.launched.proc.poll() is None and fl.is_firefox(self.launched.pid, self.launched.profile):
            kill_tree(self.launched.pid)
        self.kill_strays()

    def kill_strays(self) -> None:
        """SIGKILL the processes outside the tree that name this browser's directory (its crash helper)."""
        for pid in fl.strays(self.directory):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def launch_figures(self) -> dict[str, Any]:
        inode = None
        with contextlib.suppress(OSError):
            inode = netns.path(self.spec.netns).stat().st_ino
        return {"pid": self.pid, "netns_inode": inode, "browser_ready_s": self.ready_s}


def named_servers(servers: Sequence[IceServer], names: tuple[tuple[str, str], ...]) -> tuple[IceServer, ...]:
    """TURN-over-TLS URLs to a lab address rewritten to that address's host name: Firefox does TLS to a
    TURN server only by name (an IP literal never connects)."""
    by_ip = {ip: name for name, ip in names}

    def rename(url: str) -> str:
        scheme, _, rest = url.partition(":")
        host = rest.split("?", 1)[0].rsplit(":", 1)[0]
        if scheme != "turns" or host not in by_ip:
            return url
        return f"{scheme}:{by_ip[host]}{rest[len(host) :]}"

    out = []
    for server in servers:
        urls = server["urls"]
        renamed = rename(urls) if isinstance(urls, str) else [rename(u) for u in urls]
        out.append(IceServer(**{**server, "urls": renamed}))
    return tuple(out)


class FirefoxAdapter:
    """The Firefox stack (adapter.Adapter): a browser per place, started ahead of the sessions."""

    name = FIREFOX

    def __init__(self) -> None:
        self.pool = Browsers(FirefoxBrowser, _key)

    def prepare(self, places: Sequence[PeerPlace]) -> None:
        self.pool.start([firefox_spec(p) for p in places])

    def open(self, place: PeerPlace) -> Bound[BrowserPeer]:
        """A host's Firefox, as sessions see it: every run() is one more session in its page."""
        return Bound(place, self._session)

    def _session(self, place: PeerPlace, cfg: PeerConfig) -> BrowserPeer:
        servers = named_servers(cfg.ice_servers, place.names)
        return self.pool.spawn(firefox_spec(place), dataclasses.replace(cfg, ice_servers=servers))

    def close(self) -> None:
        self.pool.close()
