"""The Chromium peer: headless Chromium (libwebrtc) in a host's namespace, driven over DevTools by Playwright.

One browser per host per lab, shared by every peer that runs on that host (the session's main run and its
relay-less run are two RTCPeerConnections in the same page). Playwright launches the system Chromium through
the package's wrapper script (`chromium-in-netns`), which enters the host's network namespace with nsenter
and execs the browser; the DevTools protocol runs over a pipe (`--remote-debugging-pipe`, fds 3 and 4),
which crosses namespaces, so the controller stays outside. The page (netsim/peers/page/) is served over
HTTP by the lab's signaling server (http://<signaling ip>:443/app/...), the same way to any browser, so its
WebSocket to the signaling server is same-origin and gets through the udp-blocked firewall (TCP 443). The
page runs the whole peer (docs/peers.md); the controller hands it each session's config and collects the
raw record. chromium_pool.py holds the browsers of a run and the stack's adapter.

Playwright's asyncio API runs on one controller thread with its own event loop (the session is synchronous).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import secrets
import shutil
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from netsim.lab import netns
from netsim.peers.browser import (
    APP_PATH,
    CLOSE_TIMEOUT_S,
    LAUNCH_TIMEOUT_S,
    PAGE,
    ChromiumError,
    browser_version,
    chromium_binary,
    clock_offset,
    ended_by,
    is_browser,
    kill_tree,
    launch_flags,
    watch,
    wrapper_env,
    wrapper_path,
)
from netsim.peers.protocol import PeerConfig, failed_record
from netsim.records import ChromiumSettings
from netsim.vocab import CHROMIUM

T = TypeVar("T")

# --- the controller thread -----------------------------------------------------------------------------


class Controller:
    """One thread with an asyncio loop running Playwright; coroutines are submitted from the session."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="chromium-controller", daemon=True)
        self.thread.start()
        self._playwright: Any = None
        self._lock: asyncio.Lock | None = None

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    async def playwright(self) -> Any:
        """Playwright's driver, started once (about 0.4 s) and shared by every browser."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._playwright is None:
                try:
                    from playwright.async_api import async_playwright
                except ImportError as exc:
                    raise ChromiumError(f"the Python package playwright is not installed: {exc}") from exc
                self._playwright = await async_playwright().start()
        return self._playwright

    def close(self) -> None:
        async def stop() -> None:
            if self._playwright is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._playwright.stop(), timeout=CLOSE_TIMEOUT_S)
                self._playwright = None

        if self.thread.is_alive():
            with contextlib.suppress(Exception):
                self.submit(stop()).result(CLOSE_TIMEOUT_S + 2)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=5)


# --- one browser ---------------------------------------------------------------------------------------


# IPv6 gathering off: the only switch left since M108 (the page-level googIPv6 constraint is gone).
IPV4_ONLY_FLAG = "--force-fieldtrials=WebRTC-IPv6Default/Disabled/"


@dataclass
class BrowserSpec:
    """What a browser is bound to: a host's namespace, the page origin, mDNS, the TURN trust, and whether
    it is the IPv4-only twin (a launch flag: a browser of its own, never shared with a dual-stack one)."""

    netns: str
    origin: str
    hide_host: bool
    trust_spki: str | None
    workdir: Path
    ipv4_only: bool = False


def browser_flags(spec: BrowserSpec) -> list[str]:
    """The launch flags of a browser of this spec."""
    flags = launch_flags(spec.hide_host, spec.trust_spki)
    return [*flags, IPV4_ONLY_FLAG] if spec.ipv4_only else flags


@dataclass
class Browser:
    """One headless Chromium in a host's namespace with one page that runs netsim peers."""

    spec: BrowserSpec
    controller: Controller
    stack: str = CHROMIUM
    profile: Path = field(init=False)
    pid: int | None = None
    version: str | None = None
    flags: list[str] = field(default_factory=list)
    started: asyncio.Future[None] | None = None
    page: Any = None
    context: Any = None
    crashed: str | None = None
    refs: int = 0
    t_spawn: float = 0.0
    ready_s: float | None = None
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)  # user -> record as of late

    def __post_init__(self) -> None:
        self.profile = self.spec.workdir / f"chromium-{secrets.token_hex(4)}"

    async def ensure_started(self) -> None:
        if self.started is None:
            self.started = asyncio.ensure_future(self._start())
        await asyncio.shield(self.started)

    async def _start(self) -> None:
        self.t_spawn = time.monotonic()
        binary = chromium_binary()
        self.profile.mkdir(parents=True)
        pid_file, flags_file = self.profile / "browser.pid", self.profile / "flags.txt"
        pw = await self.controller.playwright()
        try:
            self.context = await asyncio.wait_for(
                pw.chromium.launch_persistent_context(
                    str(self.profile / "data"),
                    # The wrapper lives with the package (nothing the lab runs is written at run time); this
                    # browser's namespace, binary and files reach it in the environment, and so does a
                    # temporary directory inside the profile (Chromium's own go there, not to /tmp).
                    executable_path=str(wrapper_path()),
                    env=wrapper_env(self.spec.netns, binary, pid_file, flags_file, self.profile / "t"),
                    headless=True,
                    args=browser_flags(self.spec),
                    handle_sigint=False,  # the session decides; the lab's teardown kills what remains
                    handle_sigterm=False,
                    handle_sighup=False,
                ),
                timeout=LAUNCH_TIMEOUT_S,
            )
        except Exception as exc:
            self._read_pid(pid_file)
            raise ChromiumError(f"chromium did not start: {_short(exc)}") from exc
        self._read_pid(pid_file)
        with contextlib.suppress(OSError):
            self.flags = flags_file.read_text().splitlines()
        self.context.on("close", lambda *_: self._gone("browser exited"))
        self.page = self.context.pages[0] if self.context.pages else await self.context.new_page()
        self.page.on("crash", lambda *_: self._gone("browser page crashed"))
        # Served by the lab's signaling server (Lab.start_signaling with the page directory).
        await self.page.goto(f"{self.spec.origin}{APP_PATH}{PAGE}")
        await self.page.wait_for_function("window.netsimReady === true", timeout=LAUNCH_TIMEOUT_S * 1000)
        self.version = await self.browser_version()
        self.ready_s = time.monotonic() - self.t_spawn

    async def browser_version(self) -> str | None:
        """The full version (navigator.userAgent is reduced to 156.0.0.0)."""
        with contextlib.suppress(Exception):
            cdp = await self.context.new_cdp_session(self.page)
            info = await cdp.send("Browser.getVersion")
            await cdp.detach()
            return browser_version(str(info.get("product", "")))
        return None

    def _read_pid(self, pid_file: Path) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.pid = int(pid_file.read_text().strip())

    def _gone(self, why: str) -> None:
        if self.crashed is None:
            self.crashed = why

    async def clock_offset(self) -> float:
        return await clock_offset(lambda: self.page.evaluate("performance.now()"))

    async def run_peer(self, cfg: PeerConfig) -> object:
        """Run one session in the page (its config handed over now) and return its raw record (failed, with
        a reason, on any error). The page cannot read its browser's full version: it is added here."""
        try:
            await self.ensure_started()
            if self.crashed:
                raise ChromiumError(self.crashed)
            offset = await self.clock_offset()
            watch = asyncio.ensure_future(self._watch(cfg))
            try:
                record: object = await self.page.evaluate(
                    "cfg => window.netsimPeer(cfg)", {**cfg.to_json(), "clock_offset": offset}
                )
            finally:
                watch.cancel()
        except Exception as exc:
            why = self.crashed or (str(exc) if isinstance(exc, ChromiumError) else f"browser: {_short(exc)}")
            last = self.snapshots.pop(cfg.user, None)
            if last is None:
                return failed_record(cfg, CHROMIUM, why)
            record = ended_by(last, f"browser crashed: {why}")
        self.snapshots.pop(cfg.user, None)
        if isinstance(record, dict):
            record.update(version=self.version, settings=self.settings())
        return record

    def settings(self) -> ChromiumSettings:
        """The browser's launch flags, whether host candidates are mDNS names and whether it is the IPv4-only
        twin (the record's settings)."""
        return {"flags": self.flags, "mdns": self.spec.hide_host, "ipv4_only": self.spec.ipv4_only}

    async def _watch(self, cfg: PeerConfig) -> None:
        await watch(
            cfg,
            lambda: self.page.evaluate("u => window.netsimConnectedAt(u)", cfg.user),
            lambda: self.page.evaluate("u => window.netsimSnapshot(u)", cfg.user),
            self.snapshots,
        )

    async def stop_peer(self, user: str, reason: str) -> None:
        if self.page is not None and not self.crashed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    self.page.evaluate("([u, r]) => window.netsimStop(u, r)", [user, reason]), timeout=1.0
                )

    async def close(self) -> None:
        """Close the browser (killing it by pid if it does not close) and remove its profile."""
        if self.started is not None and not self.started.done():
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self.started), timeout=LAUNCH_TIMEOUT_S)
        if self.context is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.context.close(), timeout=CLOSE_TIMEOUT_S)
        self.kill()
        shutil.rmtree(self.profile, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL the browser's process tree if it is still this browser."""
        if self.pid is not None and is_browser(self.pid, self.profile / "data"):
            kill_tree(self.pid)

    def launch_figures(self) -> dict[str, Any]:
        inode = None
        with contextlib.suppress(OSError):
            inode = netns.path(self.spec.netns).stat().st_ino
        return {"pid": self.pid, "netns_inode": inode, "browser_ready_s": self.ready_s}


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
