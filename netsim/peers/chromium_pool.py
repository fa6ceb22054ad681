"""The Chromium stack's adapter, and the pool of browsers every browser stack uses: the browsers of a run,
one per (host namespace, options), each closed when its last session ended, or, in a pool that `keep`s
them (a suite worker's kept lab, netsim.suite.keep), left running for the next cell's sessions until
`drop`ped; one that died is replaced, never reused. A session is one `netsimPeer(cfg)` in its browser's
page. The pool holds any `PooledBrowser` (Chromium here, Firefox in netsim.peers.firefox)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any, Protocol

from netsim.peers.adapter import Bound, PeerPlace
from netsim.peers.browser import CLOSE_TIMEOUT_S, LAUNCH_TIMEOUT_S, STOP_GRACE_S, page_origin, spki_pin
from netsim.peers.chromium import Browser, BrowserSpec, Controller
from netsim.peers.protocol import PeerConfig, failed_record
from netsim.vocab import CHROMIUM


class PooledBrowser(Protocol):
    """What the pool needs of a browser: started once, many sessions in its page, closed or killed by pid."""

    stack: str
    crashed: str | None
    refs: int
    t_spawn: float
    ready_s: float | None

    async def ensure_started(self) -> None: ...
    async def run_peer(self, cfg: PeerConfig) -> object: ...
    async def stop_peer(self, user: str, reason: str) -> None: ...
    async def close(self) -> None: ...
    def kill(self) -> None: ...
    def launch_figures(self) -> dict[str, Any]: ...


class BrowserPeer:
    """One session running in a browser's page (adapter.PeerSession)."""

    def __init__(self, pool: Browsers, browser: PooledBrowser, cfg: PeerConfig) -> None:
        self.pool = pool
        self.browser = browser
        self.stack = browser.stack
        self.cfg = cfg
        self.t_req = time.monotonic()
        self.future = pool.controller.submit(browser.run_peer(cfg))
        self._record: object | None = None

    def wait(self, timeout_s: float) -> object:
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

    def _stop(self, timeout_s: float) -> object:
        why = "stopped: the session needs no more" if timeout_s <= 0 else f"no record within {timeout_s:g} s"
        self.pool.controller.submit(self.browser.stop_peer(self.cfg.user, why))
        try:
            return self.future.result(timeout=STOP_GRACE_S)
        except concurrent.futures.TimeoutError:
            self.browser.crashed = self.browser.crashed or "browser hung (page did not answer)"
            self.browser.kill()
            return failed_record(self.cfg, self.stack, f"browser hung: no record within {timeout_s:g} s")

    def _annotate(self, record: object) -> object:
        """The browser's launch figures (a record that is not an object is left for the session's check)."""
        if not isinstance(record, dict):
            return record
        b = self.browser
        marks = record.get("marks")
        signed_in = marks.get("signed_in") if isinstance(marks, dict) else None
        record["launch"] = {
            **b.launch_figures(),
            "ready_ms": round((b.ready_s or 0.0) * 1000, 3) if b.ready_s is not None else None,
            "signed_in_ms": round((signed_in - self.t_req) * 1000, 3) if signed_in else None,
            # The browser's spawn to this peer signed in at the signaling server (bench/browser.py).
            "spawn_to_signed_in_ms": round((signed_in - b.t_spawn) * 1000, 3) if signed_in else None,
        }
        return record


class Browsers:
    """The browsers of one controller, one per (namespace, options); each closed when its last peer ends.
    `make(spec, controller)` makes a browser, `key(spec)` says which specs share one (Chromium's by
    default)."""

    def __init__(
        self,
        make: Callable[[Any, Controller], PooledBrowser] = Browser,
        key: Callable[[Any], Hashable] = lambda spec: (
            spec.netns,
            spec.hide_host,
            spec.trust_spki,
            spec.ipv4_only,
        ),
    ) -> None:
        self.controller = Controller()
        self.make = make
        self.key = key
        self.browsers: dict[Hashable, PooledBrowser] = {}
        self.netns: dict[Hashable, str] = {}  # key -> the namespace its browser runs in
        self.closing: list[concurrent.futures.Future[Any]] = []
        self.keep = False  # idle browsers stay up for the next sessions (until drop)
        self.started = 0  # browsers this pool started (bench, tests)
        self._lock = threading.Lock()

    def _get(self, spec: Any) -> PooledBrowser:
        key = self.key(spec)
        with self._lock:
            b = self.browsers.get(key)
            if b is not None and b.refs == 0 and dead(b):  # a kept browser that died: never reused
                b.kill()
                b = None
            if b is None or b.crashed:
                b = self.browsers[key] = self.make(spec, self.controller)
                self.netns[key] = spec.netns
                self.started += 1
                self.controller.submit(b.ensure_started())
        return b

    def start(self, specs: Sequence[Any]) -> None:
        """Start the browsers of these hosts at once and wait until they are ready (or have failed: their
        peers then end at once with the reason). Peers are spawned after this, so a browser's start-up
        never eats into the other side's connect deadline."""
        browsers = [self._get(spec) for spec in specs]
        for b in browsers:
            with contextlib.suppress(Exception):
                self.controller.submit(b.ensure_started()).result(LAUNCH_TIMEOUT_S + 5)

    def browser(self, spec: Any) -> PooledBrowser:
        """The browser for this host and options (started in the background if new), with one more user."""
        b = self._get(spec)
        with self._lock:
            b.refs += 1
        return b

    def spawn(self, spec: Any, cfg: PeerConfig) -> BrowserPeer:
        """Run one session in the browser of spec's host."""
        browser = self.browser(spec)
        return BrowserPeer(self, browser, cfg)

    def release(self, browser: PooledBrowser) -> None:
        with self._lock:
            browser.refs -= 1
            if browser.refs > 0 or (self.keep and not browser.crashed):
                return
            for key, b in list(self.browsers.items()):
                if b is browser:
                    del self.browsers[key]
        self.closing.append(self.controller.submit(browser.close()))

    def drop(self, netns_prefix: str = "") -> int:
        """Close the idle browsers whose namespace starts with `netns_prefix` (every idle one by default),
        in the background; returns how many."""
        with self._lock:
            gone = [
                k
                for k, b in self.browsers.items()
                if b.refs <= 0 and self.netns.get(k, "").startswith(netns_prefix)
            ]
            browsers = [self.browsers.pop(k) for k in gone]
        self.closing += [self.controller.submit(b.close()) for b in browsers]
        return len(browsers)

    def alive(self) -> int:
        """Browsers up now (kept or in use)."""
        with self._lock:
            return sum(not b.crashed for b in self.browsers.values())

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


def dead(browser: PooledBrowser) -> bool:
    """Whether a browser crashed or its process is gone (or a zombie)."""
    if browser.crashed:
        return True
    pid = getattr(browser, "pid", None)
    if pid is None:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def browser_spec(place: PeerPlace) -> BrowserSpec:
    """The browser a host needs: its namespace, the page origin, mDNS and the TURN trust (the lab's TURN
    certificate, trusted by this browser only)."""
    ca = place.ca_file
    pin = spki_pin(ca) if ca is not None and ca.exists() else None
    return BrowserSpec(
        place.netns,
        page_origin(place.signaling_url),
        place.hide_host,
        pin,
        place.workdir / "browsers",
        ipv4_only=place.ipv4_only,
    )


class ChromiumAdapter:
    """The Chromium stack (adapter.Adapter): a browser per place, started ahead of the sessions."""

    name = CHROMIUM

    def __init__(self) -> None:
        self.pool = Browsers()

    def prepare(self, places: Sequence[PeerPlace]) -> None:
        self.pool.start([browser_spec(p) for p in places])

    def open(self, place: PeerPlace) -> Bound[BrowserPeer]:
        """A host's browser, as sessions see it: every run() is one more session in its page."""
        return Bound(place, lambda place, cfg: self.pool.spawn(browser_spec(place), cfg))

    def close(self) -> None:
        self.pool.close()
