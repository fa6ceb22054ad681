"""Benchmark: the Chromium peer's costs beside the aiortc peer's, measured in the same run. Needs root.

- spawn to signed in: a browser's launch (Playwright through the namespace wrapper) to its first peer's
  welcome from the signaling server (target <= 0.5 s median); the Playwright driver's own start, once per
  process, is printed apart.
- memory per instance: PSS (/proc/<pid>/smaps_rollup) over each browser's process tree, with the page loaded
  and a session just finished; the Playwright driver's PSS apart.
- session time by verdict: peer request to first echo (the later side), and offer to the settled pair, for
  chromium x chromium and aiortc x aiortc in the same labs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from netsim.lab.lab import Lab
from netsim.lab.topology import standard_topology
from netsim.peers import browser
from netsim.peers.adapter import PeerPlace
from netsim.peers.browser import page_directory
from netsim.peers.chromium_pool import Browsers, ChromiumAdapter, browser_spec
from netsim.peers.launcher import Launcher
from netsim.session.options import SessionOptions
from netsim.session.run import run_session, start_peers, wait_peers

TARGET_SPAWN_S = 0.5
PAIRINGS = [
    ("open", "open", "udp"),  # direct-host
    ("port-restricted-cone", "port-restricted-cone", "udp"),  # direct
    ("full-cone", "symmetric", "udp"),  # direct (prflx)
    ("port-restricted-cone", "symmetric", "udp"),  # relay (needed)
]
STACKS = [("aiortc", "aiortc"), ("chromium", "chromium")]


def _driver_pss_kib() -> int:
    """The Playwright driver (node) started by this process."""
    pids = [
        p
        for p in browser.process_tree(os.getpid())[1:]
        if Path(f"/proc/{p}/comm").exists() and Path(f"/proc/{p}/comm").read_text().strip() == "node"
    ]
    return browser.pss_kib(pids)


def _pool(launcher: Launcher) -> Browsers:
    """The Chromium adapter's browsers (started ahead, held for a whole lab)."""
    adapter = launcher.adapter("chromium")
    assert isinstance(adapter, ChromiumAdapter)
    return adapter.pool


def _one_lab(nat_a: str, nat_b: str, turn: str, repeat: int, launcher: Launcher, out: dict[str, Any]) -> None:
    with Lab(standard_topology(nat_a, nat_b)) as lab:
        url = lab.start_signaling(static_dir=page_directory())
        ca = lab.coturn.ca_file if lab.coturn is not None else None
        pool = _pool(launcher)
        specs = [browser_spec(PeerPlace(lab.netns(h), Path(lab.workdir), url, ca, False)) for h in "ab"]
        # Spawn to signed in: each browser's own launch, then one peer signing in (no session).
        t0 = time.monotonic()
        pool.start(specs)
        out["both_ready_s"].append(time.monotonic() - t0)
        held = [pool.browser(spec) for spec in specs]
        try:
            for b in held:
                out["pss_mib"].append(browser.pss_kib(browser.process_tree(b.pid or 0)) / 1024)
            for peer_a, peer_b in STACKS:
                for _ in range(repeat):
                    opts = SessionOptions(
                        peer_a=peer_a, peer_b=peer_b, turn=turn, needs_relay=False, deadline_s=8.0
                    )  # type: ignore[arg-type]
                    if peer_a == "chromium" and not out["signed_in_sampled"].get(lab.id):
                        _sample_sign_in(lab, launcher, url, opts, held, out)
                    rec = run_session(lab, opts, launcher=launcher)
                    key = f"{peer_a} x {peer_b}"
                    first = rec["launch"]["start_to_first_echo_s"]
                    settled = rec["settled_s"]
                    out["sessions"].append((nat_a, nat_b, key, rec["verdict"], first, settled))
            for b in held:
                out["pss_after_mib"].append(browser.pss_kib(browser.process_tree(b.pid or 0)) / 1024)
        finally:
            for b in held:
                pool.release(b)


def _sample_sign_in(
    lab: Lab, launcher: Launcher, url: str, opts: SessionOptions, held: list[Any], out: dict[str, Any]
) -> None:
    """Spawn to signed in for this lab's fresh browsers: launch (ready_s) plus the first peer's sign-in."""
    procs = start_peers(lab, launcher, url, opts.replace(deadline_s=3.0, turn="none"))
    a, b = wait_peers(procs, 8.0)
    for rec, held_browser in zip((a, b), held, strict=True):
        signed_in = (rec.get("launch") or {}).get("signed_in_ms")
        if held_browser.ready_s is not None and signed_in is not None:
            out["spawn_to_signed_in_s"].append(held_browser.ready_s + signed_in / 1000)
    out["signed_in_sampled"][lab.id] = True


def run(repeat: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "both_ready_s": [],
        "spawn_to_signed_in_s": [],
        "pss_mib": [],
        "pss_after_mib": [],
        "sessions": [],
        "signed_in_sampled": {},
    }
    with Launcher() as launcher:
        launcher.wait_ready()
        pool = _pool(launcher)
        t0 = time.monotonic()
        pool.controller.submit(pool.controller.playwright()).result(60)
        out["driver_start_s"] = time.monotonic() - t0
        out["driver_pss_mib"] = _driver_pss_kib() / 1024
        for nat_a, nat_b, turn in PAIRINGS:
            _one_lab(nat_a, nat_b, turn, repeat, launcher, out)
    del out["signed_in_sampled"]
    return out


def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def report(out: dict[str, Any]) -> None:
    spawn = _median(out["spawn_to_signed_in_s"])
    ok = "ok" if spawn is not None and spawn <= TARGET_SPAWN_S else "MISSED"
    n = len(out["spawn_to_signed_in_s"])
    print(
        f"spawn -> signed in: median {spawn or 0:.3f} s, target <= {TARGET_SPAWN_S} s: {ok} (n={n}); ", end=""
    )
    print(f"both browsers of a lab ready: median {_median(out['both_ready_s']) or 0:.3f} s")
    print(
        f"Playwright driver start (once per process): {out['driver_start_s']:.3f} s, "
        f"PSS {out['driver_pss_mib']:.0f} MiB"
    )
    print(
        f"browser PSS: median {_median(out['pss_mib']) or 0:.0f} MiB with the page loaded, "
        f"{_median(out['pss_after_mib']) or 0:.0f} MiB after the sessions "
        f"(two browsers running; n={len(out['pss_mib'])})"
    )
    groups: dict[tuple[str, str], list[tuple[float | None, float | None]]] = {}
    for _, _, stacks, verdict, first, settled in out["sessions"]:
        groups.setdefault((stacks, verdict), []).append((first, settled))
    print(f"{'stacks':<20} {'verdict':<12} {'start->first echo':>18} {'offer->settled':>15} {'n':>3}")
    for (stacks, verdict), xs in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        first = _median([f for f, _ in xs if f is not None])
        settled = _median([s for _, s in xs if s is not None])
        fs = f"{first * 1000:.0f} ms" if first is not None else "-"
        ss = f"{settled * 1000:.0f} ms" if settled is not None else "-"
        print(f"{stacks:<20} {verdict:<12} {fs:>18} {ss:>15} {len(xs):>3}")
    tally: dict[str, dict[str, int]] = {}
    for nat_a, nat_b, stacks, verdict, _, _ in out["sessions"]:
        counts = tally.setdefault(f"{stacks}: {nat_a} x {nat_b}", {})
        counts[verdict] = counts.get(verdict, 0) + 1
    for pairing, counts in tally.items():
        print(f"  {pairing}: " + ", ".join(f"{v} {n}" for v, n in sorted(counts.items())))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="sessions per pairing and stack (default 3)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    out = run(args.repeat)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        report(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
