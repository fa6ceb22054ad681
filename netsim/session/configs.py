"""Each side's `PeerConfig` for one negotiation (docs/peers.md, "The config"): built whole from the session
options, the lab's services and fresh user names, then passed to the stack's adapter unchanged."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from pathlib import Path

from netsim.peers.protocol import PROTOCOL, SETTLE_EXTRA_S, IceServer, PeerConfig
from netsim.session.options import SessionOptions
from netsim.vocab import AIORTC, RESTART_STACKS, SIDES

GLARE_DELAY_S = 0.5  # the second offerer holds its ready offer this long; both offers still collide
ECHO_COUNT = 5
ECHO_INTERVAL_S = 0.005
LINGER_S = 2.0  # after connecting: finish the echoes, wait for the other's `done`


def linger_s(stacks: tuple[str, ...], settle_s: float) -> float:
    """How long a peer keeps answering after connecting: with a stack that may renominate in the session
    (every stack but aiortc), long enough for it to settle (it pings until its pair has been stable for
    settle_s, at most settle_s + SETTLE_EXTRA_S)."""
    renominates = any(stack != AIORTC for stack in stacks)
    return LINGER_S + settle_s + SETTLE_EXTRA_S if renominates else LINGER_S


def user_names() -> dict[str, str]:
    """Fresh signaling user names for a and b (every negotiation gets its own)."""
    tag = secrets.token_hex(3)
    return {side: f"{side}-{tag}" for side in SIDES}


def peer_configs(
    opts: SessionOptions,
    users: Mapping[str, str],
    *,
    signaling_url: str,
    tokens: Mapping[str, str],
    ice_servers: Mapping[str, list[IceServer]],
    ca_file: Path | None,
    connected_files: Mapping[str, Path] | None = None,
) -> dict[str, PeerConfig]:
    """Both sides' configs. a is impolite and always offers; b is polite and offers only for glare, and
    the peer not sending first holds its ready offer for GLARE_DELAY_S."""
    stacks = (opts.peer_a, opts.peer_b)
    t0 = time.monotonic()
    out = {}
    for side, other in (("a", "b"), ("b", "a")):
        up = connected_files.get(side) if connected_files is not None else None
        out[side] = PeerConfig(
            protocol=PROTOCOL,
            user=users[side],
            target=users[other],
            polite=side == "b",
            offer=side == "a" or opts.glare,
            offer_delay_s=GLARE_DELAY_S if opts.glare and side != opts.glare_first else 0.0,
            signaling_url=signaling_url,
            token=tokens[side],
            ice_servers=tuple(ice_servers[side]),
            ca_file=str(ca_file) if ca_file is not None else None,
            policy=opts.policy,
            deadline_s=opts.deadline_s,
            echo_count=ECHO_COUNT,
            echo_interval_s=ECHO_INTERVAL_S,
            linger_s=linger_s(stacks, opts.settle_s),
            settle_s=opts.settle_s,
            hold_s=opts.hold_s,
            interval_s=opts.interval_s,
            hide_host=opts.hide_host,
            media=opts.media,
            # ICE restart needs both ends to renegotiate: the browsers and Pion do, aiortc has none (an exec:
            # peer's support is unknown, so it is not asked to).
            restart=opts.peer_a in RESTART_STACKS and opts.peer_b in RESTART_STACKS,
            connected_file=str(up) if up is not None else None,
            t0=t0,
        )
    return out
