"""The Chromium peer: headless Chromium (libwebrtc) in a host's namespace, driven over DevTools by Playwright.

One browser per host per lab, shared by every peer that runs on that host (the session's main run and its
relay-less run are two RTCPeerConnections in the same page). Playwright launches the system Chromium through
a small wrapper script that enters the host's network namespace with nsenter and execs the browser; the
DevTools protocol runs over a pipe (`--remote-debugging-pipe`, fds 3 and 4), which crosses namespaces, so the
controller stays outside. The page (netsim/peers/page/) is served on the lab's signaling origin
(http://<signaling ip>:443/app/...) by the controller itself through the DevTools Fetch domain
(Playwright's route), so its WebSocket to the signaling server is same-origin and gets through the
udp-blocked firewall (TCP 443). The page runs the whole peer (docs/peers.md); the controller only starts it
and collects its raw record.

Playwright's asyncio API runs on one controller thread with its own event loop (the session is synchronous);
`BrowserPeer.wait` is the same call as the aiortc peer's `PeerProcess.wait`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from netsim.lab import netns
from netsim.peers.browser import (
    APP_PATH,
    CLOSE_TIMEOUT_S,
    CONNECTED_POLL_S,
    LAUNCH_TIMEOUT_S,
    PAGE,
    STOP_GRACE_S,
    ChromiumError,
    browser_version,
    chromium_binary,
    is_browser,
    kill_tree,
    launch_flags,
    page_file,
    page_origin,
    spki_pin,
    wrapper_script,
)
from netsim.vocab import CHROMIUM

SNAPSHOT_S = 1.0  # how often a connected peer's record is kept (page.evaluate costs ~1 ms)

# --- the controller thread -----------------------------------------------------------------------------


class Controller:
    """One thread with an asyncio loop running Playwright; coroutines are submitted from the session."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="chromium-controller", daemon=True)
        self.thread.start()
        self._playwright: Any = None
        self._lock: asyncio.Lock | None = None

    def submit(self, coro: Any) -> concurrent.futures.Future[Any]:
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


@dataclass
class BrowserSpec:
    """What a browser is bound to: a host's namespace, the page origin, mDNS and the TURN trust."""

    netns: str
    origin: str
    hide_host: bool
    trust_spki: str | None
    workdir: Path


@dataclass
class Browser:
    """One headless Chromium in a host's namespace with one page that runs netsim peers."""

    spec: BrowserSpec
    controller: Controller
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
        wrapper = self.profile / "chromium-in-netns"
        wrapper.write_text(wrapper_script(self.spec.netns, binary, pid_file, flags_file))
        wrapper.chmod(0o700)
        pw = await self.controller.playwright()
        try:
            self.context = await asyncio.wait_for(
                pw.chromium.launch_persistent_context(
                    str(self.profile / "data"),
                    executable_path=str(wrapper),
                    headless=True,
                    args=launch_flags(self.spec.hide_host, self.spec.trust_spki),
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
        await self.context.route(f"{self.spec.origin}{APP_PATH}**", self._serve)
        self.page = self.context.pages[0] if self.context.pages else await self.context.new_page()
        self.page.on("crash", lambda *_: self._gone("browser page crashed"))
        await self.page.goto(f"{self.spec.origin}{APP_PATH}{PAGE}")
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

    async def _serve(self, route: Any) -> None:
        name = urlsplit(route.request.url).path.removeprefix(APP_PATH)
        types = {"html": "text/html", "js": "text/javascript"}
        try:
            body = page_file(name)
        except (FileNotFoundError, IsADirectoryError, ValueError):
            await route.fulfill(status=404, body=b"not found")
            return
        await route.fulfill(
            status=200, body=body, content_type=types.get(name.rsplit(".", 1)[-1], "text/plain")
        )

    async def clock_offset(self, samples: int = 5) -> float:
        """time.monotonic() minus the page's performance.now() (s): the midpoint of the fastest of a few
        round trips (a loaded machine delays some by tens of ms; the error is half the fastest one's)."""
        best: tuple[float, float] | None = None
        for _ in range(samples):
            before = time.monotonic()
            now_ms = await self.page.evaluate("performance.now()")
            after = time.monotonic()
            if best is None or after - before < best[0]:
                best = (after - before, (before + after) / 2 - now_ms / 1000)
        assert best is not None
        return best[1]

    async def run_peer(self, cfg: dict[str, Any]) -> dict[str, Any]:
        """Start one peer in the page and return its raw record (failed, with a reason, on any error)."""
        try:
            await self.ensure_started()
            if self.crashed:
                raise ChromiumError(self.crashed)
            offset = await self.clock_offset()
            watch = asyncio.ensure_future(self._watch(cfg))
            try:
                record: dict[str, Any] = await self.page.evaluate(
                    "cfg => window.netsimPeer(cfg)", {**cfg, "clock_offset": offset}
                )
            finally:
                watch.cancel()
        except Exception as exc:
            why = self.crashed or (str(exc) if isinstance(exc, ChromiumError) else f"browser: {_short(exc)}")
            last = self.snapshots.pop(cfg["user"], None)
            return failed_record(cfg, why) if last is None else _ended_by(last, f"browser crashed: {why}")
        self.snapshots.pop(cfg["user"], None)
        return record

    async def _watch(self, cfg: dict[str, Any]) -> None:
        """Once the page says the peer connected: for a held call, write its connect time to its
        `connected_file` (the session times network events from both peers' connect), as the aiortc peer
        does; then keep its record as of every SNAPSHOT_S, for a browser that dies before the end."""
        path = cfg.get("connected_file")
        while True:
            await asyncio.sleep(CONNECTED_POLL_S)
            with contextlib.suppress(Exception):
                t = await self.page.evaluate("u => window.netsimConnectedAt(u)", cfg["user"])
                if t is not None:
                    if path:
                        Path(f"{path}.tmp").write_text(json.dumps({"t": t}))
                        os.replace(f"{path}.tmp", path)
                    break
        while True:
            with contextlib.suppress(Exception):
                snap = await self.page.evaluate("u => window.netsimSnapshot(u)", cfg["user"])
                if snap is not None:
                    self.snapshots[cfg["user"]] = snap
            await asyncio.sleep(SNAPSHOT_S)

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


def _ended_by(last: dict[str, Any], reason: str) -> dict[str, Any]:
    """The last record of a peer that had connected, ended by `reason` now: connected as it was, its call
    (if held) closed at this moment."""
    out = {**last, "reason": reason}
    if isinstance(out.get("call"), dict):
        out["call"] = {**out["call"], "closed": {"t": round(time.monotonic(), 6), "reason": reason}}
    return out


def failed_record(cfg: dict[str, Any], reason: str) -> dict[str, Any]:
    """The raw record of a peer whose browser never ran it (or died under it)."""
    return {"user": cfg.get("user"), "peer": "chromium", "state": "failed", "reason": reason, "error": reason}


# --- the session's handle --------------------------------------------------------------------------------


class BrowserPeer:
    """One peer running in a browser; `wait` returns its raw record like PeerProcess.wait."""

    def __init__(self, pool: Browsers, browser: Browser, cfg: dict[str, Any]) -> None:
        self.pool = pool
        self.browser = browser
        self.cfg = cfg
        self.t_req = time.monotonic()
        self.future = pool.controller.submit(browser.run_peer({**cfg, "t0": self.t_req}))
        self._record: dict[str, Any] | None = None

    def wait(self, timeout_s: float) -> dict[str, Any]:
        """The record; a peer still running after timeout_s is stopped (its page ends it, with a reason),
        and one that does not end then is reported as hung (its browser is killed)."""
        if self._record is not None:
            return self._record
        try:
            record = self.future.result(timeout=max(timeout_s, 0))
        except concurrent.futures.TimeoutError:
            record = self._stop(timeout_s)
        self._record = self._annotate(record)
        self.pool.release(self.browser)
        return self._record

    def _stop(self, timeout_s: float) -> dict[str, Any]:
        why = "stopped: the session needs no more" if timeout_s <= 0 else f"no record within {timeout_s:g} s"
        self.pool.controller.submit(self.browser.stop_peer(self.cfg["user"], why))
        try:
            result: dict[str, Any] = self.future.result(timeout=STOP_GRACE_S)
            return result
        except concurrent.futures.TimeoutError:
            self.browser.crashed = self.browser.crashed or "browser hung (page did not answer)"
            self.browser.kill()
            return failed_record(self.cfg, f"browser hung: no record within {timeout_s:g} s")

    def _annotate(self, record: dict[str, Any]) -> dict[str, Any]:
        b = self.browser
        signed_in = (record.get("marks") or {}).get("signed_in")
        record["launch"] = {
            **b.launch_figures(),
            "ready_ms": round((b.ready_s or 0.0) * 1000, 3) if b.ready_s is not None else None,
            "signed_in_ms": round((signed_in - self.t_req) * 1000, 3) if signed_in else None,
            # The browser's spawn to this peer signed in at the signaling server (bench/browser.py).
            "spawn_to_signed_in_ms": round((signed_in - b.t_spawn) * 1000, 3) if signed_in else None,
        }
        record["browser"] = {"version": b.version, "flags": b.flags, "mdns": b.spec.hide_host}
        return record


class Browsers:
    """The browsers of one controller, one per (namespace, options); each closed when its last peer ends."""

    def __init__(self) -> None:
        self.controller = Controller()
        self.browsers: dict[tuple[str, bool, str | None], Browser] = {}
        self.closing: list[concurrent.futures.Future[Any]] = []
        self._lock = threading.Lock()

    def _get(self, spec: BrowserSpec) -> Browser:
        key = (spec.netns, spec.hide_host, spec.trust_spki)
        with self._lock:
            b = self.browsers.get(key)
            if b is None or b.crashed:
                b = self.browsers[key] = Browser(spec, self.controller)
                self.controller.submit(b.ensure_started())
        return b

    def start(self, specs: list[BrowserSpec]) -> None:
        """Start the browsers of these hosts at once and wait until they are ready (or have failed: their
        peers then end at once with the reason). Peers are spawned after this, so a browser's start-up
        never eats into the other side's connect deadline."""
        browsers = [self._get(spec) for spec in specs]
        for b in browsers:
            with contextlib.suppress(Exception):
                self.controller.submit(b.ensure_started()).result(LAUNCH_TIMEOUT_S + 5)

    def browser(self, spec: BrowserSpec) -> Browser:
        """The browser for this host and options (started in the background if new), with one more user."""
        b = self._get(spec)
        with self._lock:
            b.refs += 1
        return b

    def spawn(self, spec: BrowserSpec, cfg: dict[str, Any]) -> BrowserPeer:
        """Run one peer (a PeerConfig dict) in the browser of spec's host."""
        browser = self.browser(spec)
        return BrowserPeer(self, browser, cfg)

    def release(self, browser: Browser) -> None:
        with self._lock:
            browser.refs -= 1
            if browser.refs > 0:
                return
            for key, b in list(self.browsers.items()):
                if b is browser:
                    del self.browsers[key]
        self.closing.append(self.controller.submit(browser.close()))

    def close(self) -> None:
        """Close every browser (waiting for those already closing) and stop the controller."""
        with self._lock:
            left = list(self.browsers.values())
            self.browsers.clear()
        futures = [*self.closing, *(self.controller.submit(b.close()) for b in left)]
        for fut in futures:
            with contextlib.suppress(Exception):
                fut.result(timeout=LAUNCH_TIMEOUT_S + CLOSE_TIMEOUT_S + 2)
        for b in left:  # if closing timed out
            b.kill()
        self.controller.close()


def browser_spec(
    netns_name: str, workdir: Path, signaling_url: str, hide_host: bool, ca_file: Path | None
) -> BrowserSpec:
    """The browser a host needs for a session: its namespace, the page origin, mDNS and the TURN trust
    (ca_file: the lab's TURN certificate, trusted by this browser only; None when TURN/TLS is not used)."""
    pin = spki_pin(ca_file) if ca_file is not None and ca_file.exists() else None
    return BrowserSpec(netns_name, page_origin(signaling_url), hide_host, pin, workdir / "browsers")


LINGER_S = 2.0  # the aiortc peer's default (PeerConfig.linger_s)
SETTLE_EXTRA_S = 3.0  # page/peer.js: how much longer than settle_s a Chromium peer waits for a stable pair


def linger_s(stacks: tuple[str, ...], settle_s: float) -> float:
    """How long a peer keeps answering after connecting: with a Chromium peer in the session, long enough
    for it to settle (it pings until its pair has been stable for settle_s, at most settle_s + 3 s)."""
    return LINGER_S + settle_s + SETTLE_EXTRA_S if CHROMIUM in stacks else LINGER_S
