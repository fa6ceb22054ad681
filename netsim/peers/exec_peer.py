"""The aiortc peer as an external program of the peer protocol (docs/peers.md): `python -m
netsim.peers.exec_peer` reads its config from $NETSIM_PEER_CONFIG, runs one session, stops on SIGTERM
(bye, close, record) and prints its record as the last line of stdout. netsim itself forks aiortc peers
from its launcher; this entry point is the protocol's reference program, run by the generic process
adapter in the tests, and a template for peers in other languages.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

from netsim.peers.agent import Peer
from netsim.peers.lab_signaling import connect_signaling
from netsim.peers.protocol import PROTOCOL, PeerConfig, ProtocolError


async def _main(cfg: PeerConfig) -> object:
    peer = Peer(cfg, connect_signaling)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, peer.fail, "stopped")
    return await peer.run()


def main() -> int:
    path = os.environ.get("NETSIM_PEER_CONFIG")
    if not path:
        print("exec_peer: NETSIM_PEER_CONFIG is not set", file=sys.stderr)
        return 2
    try:
        with open(path, "rb") as f:
            cfg = PeerConfig.from_json(f.read())
    except (OSError, ProtocolError) as exc:
        # No config to answer with: an honest non-record (the session fails the peer with this reason).
        print(json.dumps({"protocol": PROTOCOL, "error": str(exc)}))
        return 2
    record = asyncio.run(_main(cfg))
    print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
