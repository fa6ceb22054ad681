"""Benchmark: peer start to first echo by verdict, and peer-ready latency of the fork server. Needs root.

"Start" is the moment the session asks the launcher for the peer; a session's figure is the later of its two
peers' first echoes. Peer-ready latency is request to child running in its host's namespace (target <= 50 ms);
for comparison the run also times a fresh interpreter importing aiortc, which is what a peer would pay
without the fork server.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Any

from netsim.lab.lab import Lab
from netsim.lab.topology import standard_topology
from netsim.peers.launcher import Launcher
from netsim.session.options import SessionOptions
from netsim.session.run import run_session

TARGET_READY_MS = 50.0
# (nat_a, nat_b, turn, policy): one pairing per verdict, plus TURN over TCP.
PAIRINGS = [
    ("open", "open", "udp", "all"),  # direct-host
    ("port-restricted-cone", "port-restricted-cone", "udp", "all"),  # direct (hole punched)
    ("full-cone", "symmetric", "udp", "all"),  # direct (prflx)
    ("symmetric", "symmetric", "udp", "all"),  # relay
    ("full-cone", "full-cone", "tcp", "relay"),  # relay over TCP
]


def fresh_import_s() -> float:
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-c", "import aiortc"], check=True)
    return time.monotonic() - t0


def run(repeat: int) -> dict[str, Any]:
    by_verdict: dict[str, list[float]] = {}
    ready_ms: list[float] = []
    sessions = []
    with Launcher() as launcher:
        launcher_ready_s = launcher.wait_ready()
        for nat_a, nat_b, turn, policy in PAIRINGS:
            with Lab(standard_topology(nat_a, nat_b)) as lab:
                for _ in range(repeat):
                    opts = SessionOptions(turn=turn, policy=policy, needs_relay=False, deadline_s=10.0)
                    rec = run_session(lab, opts, launcher=launcher)
                    first = rec["launch"]["start_to_first_echo_s"]
                    sessions.append((nat_a, nat_b, turn, policy, rec["verdict"], first))
                    ready_ms += rec["launch"]["ready_ms"]
                    if first is not None:
                        by_verdict.setdefault(rec["verdict"], []).append(first)
    return {
        "repeat": repeat,
        "start_to_first_echo_s": {v: statistics.median(xs) for v, xs in sorted(by_verdict.items())},
        "samples": {v: len(xs) for v, xs in sorted(by_verdict.items())},
        "ready_ms": {
            "median": statistics.median(ready_ms),
            "max": max(ready_ms),
            "target": TARGET_READY_MS,
            "n": len(ready_ms),
        },
        "launcher_ready_s": launcher_ready_s,
        "fresh_import_aiortc_s": fresh_import_s(),
        "sessions": sessions,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="sessions per pairing (default 5)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    out = run(args.repeat)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{'verdict':<12} {'median start->first echo':>26} {'sessions':>9}")
    for verdict, median in out["start_to_first_echo_s"].items():
        print(f"{verdict:<12} {median * 1000:>23.1f} ms {out['samples'][verdict]:>9}")
    ready = out["ready_ms"]
    ok = "ok" if ready["median"] <= TARGET_READY_MS else "MISSED"
    print(
        f"peer ready (request -> running in its namespace): median {ready['median']:.1f} ms, "
        f"max {ready['max']:.1f} ms, target <= {TARGET_READY_MS:.0f} ms: {ok} (n={ready['n']})"
    )
    print(
        f"for comparison: fresh interpreter importing aiortc {out['fresh_import_aiortc_s'] * 1000:.0f} ms; "
        f"fork server preload {out['launcher_ready_s'] * 1000:.0f} ms, once"
    )
    tally: dict[str, dict[str, int]] = {}
    for nat_a, nat_b, turn, policy, verdict, _ in out["sessions"]:
        counts = tally.setdefault(f"{nat_a} x {nat_b} turn={turn} policy={policy}", {})
        counts[verdict] = counts.get(verdict, 0) + 1
    for pairing, counts in tally.items():
        print(f"  {pairing}: " + ", ".join(f"{v} {n}" for v, n in sorted(counts.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
