"""Benchmark: the Pion peer's costs beside the aiortc peer's, measured in one run. Needs root.

- spawn to signed in: a Pion peer's process spawned (nsenter execs the Go binary in the host's namespace)
  to its welcome from the signaling server, both sides of pion x pion sessions in one lab (target <= 50 ms
  median); a Pion peer's PSS while connected is printed beside it;
- a 100-pair `netsim population --concurrent` (one shared lab) with Pion peers against the same with aiortc
  peers: the sessions' wall time (lab build excluded), same seed, same deadlines, Pion's default relay
  acceptance wait, each stack's own ramp (target: Pion at least 5x faster);
- the same population with a lab per session, `-j 4`: the ratio of the two runs' wall times (no target).
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from population import MIX, crowd_stats, netsim  # bench/population.py: a script's directory is on sys.path

from netsim.lab.lab import Lab
from netsim.lab.topology import standard_topology
from netsim.peers import pion_stack
from netsim.peers.browser import pss_kib
from netsim.peers.launcher import Launcher
from netsim.session.options import SessionOptions
from netsim.session.run import run_session

TARGET_SPAWN_MS = 50.0
TARGET_RATIO = 5.0


def _peak_pss(stop: threading.Event, out: list[int]) -> None:
    """Poll the PSS of every running Pion peer (by its executable) until stopped; keep the largest."""
    exe = str(pion_stack.binary())
    while not stop.is_set():
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    if str((proc / "exe").resolve()) == exe:
                        out.append(pss_kib([int(proc.name)]))
                except OSError:
                    continue
        time.sleep(0.05)


def spawn_to_signed_in(repeat: int) -> None:
    spawn, ready, pss, verdicts = [], [], [], []  # type: ignore[var-annotated]
    stop = threading.Event()
    watcher = threading.Thread(target=_peak_pss, args=(stop, pss), daemon=True)
    with (
        Launcher() as launcher,
        Lab(standard_topology("port-restricted-cone", "port-restricted-cone")) as lab,
    ):
        watcher.start()
        opts = SessionOptions(peer_a="pion", peer_b="pion", turn="udp", needs_relay=False, deadline_s=6.0)
        for _ in range(repeat):
            rec: Any = run_session(lab, opts, launcher=launcher)
            verdicts.append(rec["verdict"])
            for side in "ab":
                launch = rec[side].get("launch") or {}
                if launch.get("spawn_to_signed_in_ms") is not None:
                    spawn.append(launch["spawn_to_signed_in_ms"])
                    ready.append(launch["ready_ms"])
        stop.set()
        watcher.join()
    median = statistics.median(spawn)
    print(
        f"Pion spawn -> signed in: median {median:.1f} ms, max {max(spawn):.1f} ms, target <= "
        f"{TARGET_SPAWN_MS:g} ms: {'ok' if median <= TARGET_SPAWN_MS else 'MISSED'} (n={len(spawn)}); "
        f"of it the spawn (fork and exec of nsenter) median {statistics.median(ready):.1f} ms"
    )
    if pss:
        print(
            f"  Pion peer PSS: median {statistics.median(pss) / 1024:.1f} MiB, max {max(pss) / 1024:.1f} MiB"
        )
    print(f"  verdicts: {dict((v, verdicts.count(v)) for v in sorted(set(verdicts)))}")


def _sessions_s(out: str) -> float | None:
    """The sessions' wall time of a crowd run (its `one lab:` line), lab build excluded."""
    found = re.search(r"one lab: .*? sessions ([\d.]+) s", out)
    return float(found.group(1)) if found else None


def crowd(pairs: int, reports: Path) -> None:
    common = [
        "population",
        "--mix",
        str(MIX),
        "--size",
        str(pairs),
        "--concurrent",
        str(pairs),
        "--seed",
        "3",
    ]
    runs = {}
    for stack in ("pion", "aiortc"):
        wall, out = netsim(*common, "--peers", f"{stack},{stack}", reports=reports)
        stats = crowd_stats(out)
        runs[stack] = _sessions_s(out)
        agreement = stats[0].get("agreement") if stats else None
        print(
            f"  {stack} x {stack}: sessions {runs[stack]} s (whole command {wall:.1f} s), agreement with "
            f"the matrix {agreement}, load average {stats[0].get('load_1m') if stats else None}"
        )
    pion, aiortc = runs["pion"], runs["aiortc"]
    ratio = aiortc / pion if pion and aiortc else None
    verdict = "ok" if ratio is not None and ratio >= TARGET_RATIO else "MISSED"
    shown = f"{ratio:.2f}x" if ratio is not None else "unknown"
    target = f"target >= {TARGET_RATIO:g}x: {verdict}"
    print(f"{pairs} pairs at once in one lab: Pion {shown} faster than aiortc, {target}")


def per_lab(size: int, reports: Path) -> None:
    common = ["population", "--mix", str(MIX), "--size", str(size), "-j", "4", "--seed", "3"]
    walls = {
        stack: netsim(*common, "--peers", f"{stack},{stack}", reports=reports)[0]
        for stack in ("pion", "aiortc")
    }
    print(
        f"{size} sessions, a lab each, -j 4: Pion {walls['pion']:.1f} s, aiortc {walls['aiortc']:.1f} s; "
        f"ratio {walls['aiortc'] / walls['pion']:.2f}x (no target: the labs' builds dominate)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15, help="pion x pion sessions for spawn to signed in")
    parser.add_argument("--pairs", type=int, default=100, help="pairs in the one-lab population")
    parser.add_argument("--size", type=int, default=16, help="sessions of the -j 4 population")
    args = parser.parse_args()
    pion_stack.build()  # not part of any figure
    spawn_to_signed_in(args.repeat)
    with tempfile.TemporaryDirectory(prefix="netsim-bench-") as tmp:
        crowd(args.pairs, Path(tmp))
        per_lab(args.size, Path(tmp))


if __name__ == "__main__":
    main()
