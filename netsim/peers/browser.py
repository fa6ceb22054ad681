"""Launching Chromium for a peer: the binary, its flags, the wrapper that enters a host's namespace, and
the process bookkeeping (tree, memory, ending it by pid once it is known to be that browser).

netsim.peers.chromium drives the launched browser; this module knows nothing of DevTools.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import re
import shutil
import signal
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from netsim.lab import netns
from netsim.peers.protocol import PeerConfig, write_json_atomically

ENV_BINARY = "NETSIM_CHROMIUM"
DEFAULT_BINARY = "chromium"
APP_PATH = "/app/"
PAGE = "peer.html"
MDNS_FEATURE = "WebRtcHideLocalIpsWithMdns"
LAUNCH_TIMEOUT_S = 20.0  # a loaded 2-core machine: spawn takes ~0.4 s, but leave room
STOP_GRACE_S = 3.0  # a stopped peer closes its connection and says bye within this
CLOSE_TIMEOUT_S = 3.0
CONNECTED_POLL_S = 0.05
SNAPSHOT_S = 1.0  # how often a connected peer's record is kept (a page evaluation costs ~1 ms)
# Flags beyond Playwright's defaults (which already give --headless, --no-sandbox with chromium_sandbox off,
# --remote-debugging-pipe, --no-first-run, --disable-background-networking, --disable-sync, ...).
BASE_FLAGS = ("--disable-gpu", "--mute-audio", "--disable-component-update", "--disable-extensions")


class ChromiumError(RuntimeError):
    """The browser is missing, did not start, crashed or hung; the message is the record's reason."""


def chromium_binary() -> str:
    """The Chromium executable: $NETSIM_CHROMIUM or `chromium` on PATH (ChromiumError if neither exists)."""
    name = os.environ.get(ENV_BINARY) or DEFAULT_BINARY
    found = shutil.which(name)
    if found is None:
        raise ChromiumError(
            f"chromium binary not found: {name!r} (install the Debian package chromium, "
            f"or set {ENV_BINARY} to a Chromium executable)"
        )
    return found


def spki_pin(cert_file: Path) -> str:
    """base64 SHA-256 of the certificate's SubjectPublicKeyInfo: what --ignore-certificate-errors-spki-list
    takes, which trusts the lab's TURN certificate in this browser instance only (never the machine)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    der = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def launch_flags(hide_host: bool, trust_spki: str | None) -> list[str]:
    """Our flags: without hide_host, host candidates are real addresses (mDNS names off); with it Chromium
    keeps its default `.local` names."""
    flags = list(BASE_FLAGS)
    if not hide_host:
        flags.append(f"--disable-features={MDNS_FEATURE}")
    if trust_spki:
        flags.append(f"--ignore-certificate-errors-spki-list={trust_spki}")
    return flags


def page_origin(signaling_url: str) -> str:
    """http://host:port of the signaling server (ws://host:port): the page is served on its origin."""
    parts = urlsplit(signaling_url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"signaling_url: expected ws://host:port, got {signaling_url!r}")
    scheme = "https" if parts.scheme == "wss" else "http"
    return f"{scheme}://{parts.netloc}"


def page_directory() -> Path:
    """The page's directory (package data), which the lab's signaling server serves at APP_PATH."""
    return Path(str(resources.files("netsim.peers").joinpath("page")))


WRAPPER = "chromium-in-netns"


def wrapper_path() -> Path:
    """The package's wrapper script (see the file): what Playwright launches as the browser executable."""
    path = Path(str(resources.files("netsim.peers").joinpath(WRAPPER)))
    if not os.access(path, os.X_OK):
        raise ChromiumError(f"{path} is not executable (reinstall netsim, or chmod 755 it)")
    return path


# Chromium's singleton socket: TMPDIR/org.chromium.Chromium.XXXXXX/SingletonSocket, a unix socket path.
SOCKET_SUFFIX = "/org.chromium.Chromium.XXXXXX/SingletonSocket"
MAX_SOCKET_PATH = 107  # sun_path holds 108 bytes with the terminating NUL


def wrapper_env(netns_name: str, binary: str, pid_file: Path, flags_file: Path, tmp: Path) -> dict[str, str]:
    """The wrapper's environment for one browser: its namespace, binary and files, and a temporary
    directory of its own (inside the lab's work directory: Chromium's own temporary files go there)."""
    if len(str(tmp)) + len(SOCKET_SUFFIX) > MAX_SOCKET_PATH:
        raise ChromiumError(
            f"browser temporary directory {tmp} is too long for Chromium's socket path "
            f"({MAX_SOCKET_PATH - len(SOCKET_SUFFIX)} characters at most): use a shorter NETSIM_RUNTIME_DIR"
        )
    tmp.mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "NETSIM_NETNS_PATH": str(netns.path(netns_name)),
        "NETSIM_CHROMIUM_BIN": binary,
        "NETSIM_PID_FILE": str(pid_file),
        "NETSIM_FLAGS_FILE": str(flags_file),
        "TMPDIR": str(tmp),
    }


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants (from /proc), parents first."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop(0)
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def pss_kib(pids: list[int]) -> int:
    """Proportional set size of these processes, KiB (smaps_rollup; vanished processes count 0)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
    return total


def is_browser(pid: int, profile: Path) -> bool:
    """Whether pid is still the browser of this profile (a pid is reused once its process is gone, e.g.
    after the lab's teardown killed it: never signal a pid without checking)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return f"--user-data-dir={profile}".encode() in cmdline


def kill_tree(pid: int) -> None:
    """SIGKILL a process and its descendants, by pid (collected before the first kill)."""
    for p in process_tree(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)


def browser_version(product: str) -> str | None:
    found = re.search(r"Chrome/([\d.]+)", product)
    return found.group(1) if found else None


# --- the page's clock and connect time (every browser stack) ---------------------------------------------


async def clock_offset(now_ms: Callable[[], Awaitable[float]], samples: int = 5) -> float:
    """time.monotonic() minus the page's performance.now() (s), read by `now_ms`: the midpoint of the
    fastest of a few round trips (a loaded machine delays some by tens of ms; the error is half the
    fastest one's)."""
    best: tuple[float, float] | None = None
    for _ in range(samples):
        before = time.monotonic()
        value = float(await now_ms())
        after = time.monotonic()
        if best is None or after - before < best[0]:
            best = (after - before, (before + after) / 2 - value / 1000)
    assert best is not None
    return best[1]


async def watch(
    cfg: PeerConfig,
    connected_at: Callable[[], Awaitable[float | None]],
    snapshot: Callable[[], Awaitable[dict[str, Any] | None]],
    snapshots: dict[str, dict[str, Any]],
) -> None:
    """Once the page says the peer connected (`connected_at`): for a held call, write its connect time to
    its `connected_file` (the session times network events from both peers' connect), as the aiortc peer
    does; then keep its record as of every SNAPSHOT_S in `snapshots`, for a browser that dies before the
    end."""
    path = cfg.connected_file
    while True:
        await asyncio.sleep(CONNECTED_POLL_S)
        with contextlib.suppress(Exception):
            t = await connected_at()
            if t is not None:
                if path:
                    write_json_atomically(path, {"t": t})
                break
    while True:
        with contextlib.suppress(Exception):
            snap = await snapshot()
            if snap is not None:
                snapshots[cfg.user] = snap
        await asyncio.sleep(SNAPSHOT_S)


def ended_by(last: dict[str, Any], reason: str) -> dict[str, Any]:
    """The last record of a peer that had connected, ended by `reason` now: connected as it was, its call
    (if held) closed at this moment."""
    out = {**last, "reason": reason}
    if isinstance(out.get("call"), dict):
        out["call"] = {**out["call"], "closed": {"t": round(time.monotonic(), 6), "reason": reason}}
    return out
