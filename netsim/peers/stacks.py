"""The peer stacks netsim knows, by name: each is an adapter (netsim.peers.adapter). Adding a stack is a new
adapter and one line in `make_adapter` (docs/peers.md, "Adding a stack")."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from netsim.peers.adapter import Adapter, Bound, PeerPlace
from netsim.peers.protocol import PeerConfig
from netsim.vocab import AIORTC, CHROMIUM, EXEC_PREFIX, FIREFOX, PION

if TYPE_CHECKING:
    from netsim.peers.launcher import ForkedPeer, Launcher


def make_adapter(stack: str, launcher: Launcher) -> Adapter:
    """The adapter for a stack name (ValueError for one netsim does not know)."""
    if stack == AIORTC:
        return AiortcAdapter(launcher)
    if stack == CHROMIUM:
        from netsim.peers.chromium_pool import ChromiumAdapter

        return ChromiumAdapter()
    if stack == FIREFOX:
        from netsim.peers.firefox import FirefoxAdapter

        return FirefoxAdapter()
    if stack == PION:
        from netsim.peers.pion_stack import pion_adapter

        return pion_adapter()
    if stack.startswith(EXEC_PREFIX):  # a program the user brings (docs/peers.md, "Peer protocol")
        from netsim.peers.process import ProcessAdapter

        return ProcessAdapter(stack, stack.removeprefix(EXEC_PREFIX))
    raise ValueError(f"unknown peer stack {stack!r}")


class AiortcAdapter:
    """aiortc peers, forked by the preloaded launcher into the host's namespace: one process a session."""

    name = AIORTC

    def __init__(self, launcher: Launcher) -> None:
        self.launcher = launcher

    def prepare(self, places: Sequence[PeerPlace]) -> None:
        """Nothing to start ahead: a fork is ready in milliseconds."""

    def open(self, place: PeerPlace) -> Bound[ForkedPeer]:
        return Bound(place, self.fork)

    def fork(self, place: PeerPlace, cfg: PeerConfig) -> ForkedPeer:
        """A fresh child per session, its record and log in the lab's peers directory."""
        peers_dir = peers_directory(place.workdir)
        # aioice verifies coturn's TLS certificate with Python's default context, which reads SSL_CERT_FILE.
        env = {"SSL_CERT_FILE": cfg.ca_file} if cfg.ca_file else {}
        result, log = peers_dir / f"{cfg.user}.json", peers_dir / f"{cfg.user}.log"
        return self.launcher.spawn(place.netns, cfg, result, log, env)

    def close(self) -> None:
        """The launcher kills its children when it closes."""


def peers_directory(workdir: Path) -> Path:
    """Where peers of a lab write (records, logs, configs): below the lab's work directory."""
    path = workdir / "peers"
    path.mkdir(parents=True, exist_ok=True)
    return path
