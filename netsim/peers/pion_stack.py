"""The Pion peer (Go, `netsim/peers/pion/`): its binary, built from the distribution's packaged Go sources
(GOPATH mode, no module proxy: nothing is downloaded), its exact version, and its adapter.

The binary lives out of git under `build/pion/` of the checkout and is rebuilt only when its inputs change:
the Go sources, the Go toolchain and the packaged Pion versions (a stamp beside it holds their hash), so a
set-up that finds it up to date costs a few milliseconds. `.ci/setup` builds it; a checkout without it builds
it on first use (a cold build takes 15-30 s). `NETSIM_PION` names another binary instead (no build then).
Pion runs as an external program of the peer protocol (netsim.peers.process), one process per session.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import gzip
import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import netsim
from netsim.errors import InputError
from netsim.peers.adapter import PeerPlace
from netsim.peers.process import ProcessAdapter
from netsim.peers.protocol import PeerConfig, RawPeerRecord, failed_record
from netsim.vocab import PION

SOURCE_DIR = Path(__file__).parent / PION  # the Go sources
GOCODE = Path("/usr/share/gocode")  # where Debian's golang-*-dev packages put their sources
WEBRTC_PACKAGE = "golang-github-pion-webrtc.v3-dev"
ICE_PACKAGE = "golang-github-pion-ice.v2-dev"
ENV_BINARY = "NETSIM_PION"
MODULE = "netsim-pion"  # go.mod's one line; GOPATH mode resolves the /v3 imports only inside a module
BUILD_TIMEOUT_S = 600.0
SETUP_HINT = "run .ci/setup (apt-get install golang-go golang-github-pion-webrtc.v3-dev)"


class PionBuildError(InputError):
    """The Pion peer cannot be built or found here (the message says what is missing)."""


def build_dir() -> Path:
    """`build/pion/` of the checkout netsim runs from (ignored by git)."""
    return Path(netsim.__file__).resolve().parent.parent / "build" / PION


def package_version(package: str) -> str | None:
    """The installed Debian version of a package (`3.1.56-2`), from dpkg or, without it, the package's
    changelog; None when it is not installed."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}\t${Version}", package],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        status, _, version = out.stdout.partition("\t")
        if out.returncode == 0 and "installed" in status.split() and version:
            return version.strip()
    changelog = Path("/usr/share/doc") / package / "changelog.Debian.gz"
    with contextlib.suppress(OSError, EOFError):
        with gzip.open(changelog, "rt") as f:
            match = re.match(r"\S+ \(([^)]+)\)", f.readline())
            return match.group(1) if match else None
    return None


def upstream(version: str | None) -> str | None:
    """The upstream part of a Debian version: `1:3.1.56-2` -> `3.1.56`."""
    if version is None:
        return None
    version = version.split(":", 1)[-1]
    return version.rsplit("-", 1)[0] if "-" in version else version


def go_binary() -> str | None:
    return shutil.which("go")


def sources() -> list[Path]:
    return sorted([*SOURCE_DIR.glob("*.go"), SOURCE_DIR / "go.mod"])


@functools.cache
def inputs() -> dict[str, str | None]:
    """What the binary is built from, besides the sources: the toolchain and the packaged Pion."""
    go = go_binary()
    go_version = None
    if go is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            go_version = subprocess.run(
                [go, "version"], capture_output=True, text=True, timeout=60, check=False
            ).stdout.strip()
    return {
        "go": go_version,
        "webrtc": package_version(WEBRTC_PACKAGE),
        "ice": package_version(ICE_PACKAGE),
    }


def stamp() -> str:
    """The hash of everything the binary is built from."""
    digest = hashlib.sha256()
    for path in sources():
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for key, value in sorted(inputs().items()):
        digest.update(f"{key}={value}\n".encode())
    return digest.hexdigest()


def binary() -> Path:
    """The Pion peer's executable: $NETSIM_PION, else the checkout's build, rebuilt first if out of date."""
    named = os.environ.get(ENV_BINARY)
    if named:
        path = Path(named)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise PionBuildError(f"{ENV_BINARY}={named}: not an executable file")
        return path
    return build()


def build(force: bool = False) -> Path:
    """Build the binary unless it is up to date (one build at a time: a lock beside it)."""
    out = build_dir()
    out.mkdir(parents=True, exist_ok=True)
    exe, stamp_file = out / MODULE, out / "stamp"
    want = stamp()
    with open(out / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not force and exe.exists() and stamp_file.exists() and stamp_file.read_text() == want:
            return exe
        _compile(out, exe)
        stamp_file.write_text(want)
    return exe


def _compile(out: Path, exe: Path) -> None:
    go, found = go_binary(), inputs()
    if go is None:
        raise PionBuildError(f"the Pion peer needs Go: `go` is not on PATH ({SETUP_HINT})")
    if found["webrtc"] is None or not (GOCODE / "src/github.com/pion/webrtc").is_dir():
        raise PionBuildError(f"the Pion peer needs {WEBRTC_PACKAGE} ({SETUP_HINT})")
    gopath = out / "gopath"
    tree = gopath / "src" / MODULE
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir(parents=True)
    for path in sources():  # a copy inside a GOPATH tree: GOPATH mode builds nothing else
        shutil.copy2(path, tree / path.name)
    flags = {
        "pionVersion": upstream(found["webrtc"]),
        "iceVersion": upstream(found["ice"]),
        "debianVersion": found["webrtc"],
    }
    ldflags = " ".join(f"-X main.{k}={v}" for k, v in flags.items() if v) + " -s -w"
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPROXY": "off",  # nothing is downloaded
        "GOFLAGS": "",
        "GOPATH": f"{gopath}:{GOCODE}",
        "GOCACHE": str(out / "cache"),
        "CGO_ENABLED": "0",  # a static binary: no dynamic loader at each peer's start
    }
    tmp = out / f"{MODULE}.tmp"
    try:
        done = subprocess.run(
            [go, "build", "-ldflags", ldflags, "-o", str(tmp), "."],
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise PionBuildError(f"building the Pion peer took over {BUILD_TIMEOUT_S:g} s") from None
    if done.returncode != 0:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise PionBuildError(f"building the Pion peer failed: {tail}")
    tmp.replace(exe)


def status() -> tuple[bool, str]:
    """Whether the Pion peer can run here, and what was found (for `netsim doctor`; never builds)."""
    named = os.environ.get(ENV_BINARY)
    if named:
        runs = Path(named).is_file() and os.access(named, os.X_OK)
        return runs, f"{ENV_BINARY}={named}" + ("" if runs else ": not an executable file")
    found = inputs()
    if go_binary() is None or found["go"] is None:
        return False, "go not on PATH"
    if found["webrtc"] is None:
        return False, f"{WEBRTC_PACKAGE} not installed"
    exe = build_dir() / MODULE
    stamp_file = build_dir() / "stamp"
    current = exe.exists() and stamp_file.exists() and stamp_file.read_text() == stamp()
    built = f"built: {exe}" if current else "not built yet: builds on first use, or by .ci/setup"
    return True, f"pion/webrtc {upstream(found['webrtc'])}, pion/ice {upstream(found['ice'])} ({built})"


def version() -> str | None:
    """Pion's exact version (pion/webrtc), as the binary records it: the packaged sources'."""
    return upstream(inputs()["webrtc"])


# --- the adapter -------------------------------------------------------------------------------------------


class PionAdapter(ProcessAdapter):
    """Pion peers: the generic external-program adapter running the built binary."""

    def __init__(self) -> None:
        super().__init__(PION, [str(binary())])


class UnavailableAdapter:
    """A stack that cannot run here (e.g. Pion not buildable): each of its sessions fails with `why`."""

    def __init__(self, name: str, why: str) -> None:
        self.name = name
        self.why = why

    def prepare(self, places: Sequence[PeerPlace]) -> None:
        """Nothing can start."""

    def open(self, place: PeerPlace) -> _Unavailable:
        return _Unavailable(self)

    def close(self) -> None:
        """Nothing ran."""


class _Unavailable:
    def __init__(self, adapter: UnavailableAdapter) -> None:
        self.adapter = adapter

    def run(self, cfg: PeerConfig) -> _NoSession:
        return _NoSession(self.adapter.name, cfg, self.adapter.why)


class _NoSession:
    def __init__(self, stack: str, cfg: PeerConfig, why: str) -> None:
        self.stack = stack
        self.cfg = cfg
        self.why = why

    def wait(self, timeout_s: float) -> RawPeerRecord:
        return failed_record(self.cfg, self.stack, self.why)


def pion_adapter() -> PionAdapter | UnavailableAdapter:
    """The Pion adapter, or one whose sessions fail saying why Pion is not here."""
    try:
        return PionAdapter()
    except PionBuildError as exc:
        return UnavailableAdapter(PION, str(exc))


if __name__ == "__main__":  # `python -m netsim.peers.pion_stack`: build now (set-up), print the binary
    import sys

    try:
        print(build(force="--force" in sys.argv[1:]))
    except PionBuildError as exc:
        print(f"netsim: Pion peer: {exc}", file=sys.stderr)
        sys.exit(1)
