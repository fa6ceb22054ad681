"""The interface every peer stack implements (docs/peers.md, "Adding a stack").

A stack's adapter starts peer processes in hosts' namespaces and runs sessions on them. The life of a peer
process is separate from a session's: `open(place)` starts (or reuses) the process for a host, `run(cfg)`
starts one session on it with its own `PeerConfig`, and the session's `wait` gives its raw record. An
external program runs one session per process; a browser runs many, one page per host.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from netsim.peers.protocol import PeerConfig


@dataclass(frozen=True)
class PeerPlace:
    """Where a peer process runs and what it is bound to for its whole life: the host's namespace, the
    lab's work directory (everything the peer writes goes below it), the signaling URL (a page's origin),
    the lab CA (trusted by a browser for TURN over TLS) and whether host candidates are hidden (a browser
    flag). Sessions on one process share these; everything else is per session (PeerConfig)."""

    netns: str
    workdir: Path
    signaling_url: str
    ca_file: Path | None
    hide_host: bool
    # The lab's host names (name, address) a peer may have to resolve: Firefox does TURN over TLS only to
    # a name.
    names: tuple[tuple[str, str], ...] = ()
    # Chromium's IPv4-only twin (SessionOptions.ipv4_only_a/b): a launch flag, so a place of its own.
    ipv4_only: bool = False


class PeerSession(Protocol):
    """One session of one peer, running; `stack` is its adapter's name."""

    @property
    def stack(self) -> str: ...

    @property
    def cfg(self) -> PeerConfig: ...

    def wait(self, timeout_s: float) -> object:
        """The raw record as the peer gave it (unchecked: the session checks it, knowing which side it is).
        A session still running after timeout_s is stopped (0 stops it now) and reported as failed; a peer
        that gave nothing gets a failed record (netsim.peers.protocol.failed_record)."""
        ...


class PeerProcess(Protocol):
    """A peer process in a host's namespace, running one session at a time or several."""

    def run(self, cfg: PeerConfig) -> PeerSession: ...


S = TypeVar("S", bound=PeerSession, covariant=True)


@dataclass(frozen=True)
class Bound(Generic[S]):
    """A PeerProcess made of its place and the adapter's way of starting a session there."""

    place: PeerPlace
    start: Callable[[PeerPlace, PeerConfig], S]

    def run(self, cfg: PeerConfig) -> S:
        return self.start(self.place, cfg)


class Adapter(Protocol):
    """One stack. `name` is what records say in `stack`."""

    name: str

    def prepare(self, places: Sequence[PeerPlace]) -> None:
        """Start what these places need before any session's deadline runs (a browser's start-up is not
        connect time); a stack that starts per session does nothing."""
        ...

    def open(self, place: PeerPlace) -> PeerProcess:
        """The peer process for this place (started now, or one already running for it)."""
        ...

    def close(self) -> None:
        """End every process this adapter started (by pid) and remove what they wrote."""
        ...
