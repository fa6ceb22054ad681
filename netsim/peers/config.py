"""What one peer does (`PeerConfig`), for every stack: plain data without aiortc, so the session, the launcher
and the Chromium controller can build and pass it without importing a WebRTC stack."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class PeerConfig:
    """What one peer does. netsim.session.run builds it as a dict; the launcher passes it to the child."""

    user: str
    target: str
    polite: bool
    signaling_url: str
    token: str = ""
    ice_servers: list[dict[str, Any]] = field(default_factory=list)
    policy: str = "all"  # "all" | "relay"
    deadline_s: float = 10.0
    offer: bool = False  # whether this peer starts by offering (both do for glare)
    offer_delay_s: float = 0.0  # pause between a ready offer and sending it (orders glare)
    echo_count: int = 5
    echo_interval_s: float = 0.005
    linger_s: float = 2.0  # after connecting: how long to finish echoes and wait for the remote's
    media: bool = False
    # Send no host candidates (a browser whose mDNS names the other side can't resolve).
    hide_host: bool = False
    settle_s: float = 1.0  # unused by aiortc (it never renominates); the session passes it to every stack
    t0: float | None = None  # time.monotonic() when the peer was requested; defaults to run_peer start
    hold_s: float = 0.0  # keep the call up this long after connecting (hold.py)
    interval_s: float = 1.0  # an echo on the hold channel this often (0: none, checks at the end only)
    # Written (atomically) with {"t": first echo, monotonic} once connected: the session times events from it.
    connected_file: str | None = None
    restart: bool = False  # ICE restart on failure: Chromium only (aiortc has none)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PeerConfig:
        """The config from to_dict()'s output; keys that are not fields are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
