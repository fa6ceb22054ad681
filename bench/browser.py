"""Benchmark: the browser peers' costs beside the aiortc peer's, measured in the same run. Needs root.

- spawn to signed in: a browser's launch to its first peer's welcome from the signaling server (Chromium
  target <= 0.5 s median, Firefox <= 3.5 s); the Playwright driver's own start, once per process, apart.
- memory per browser: PSS and USS (/proc/<pid>/smaps_rollup) over its whole process tree, one browser of
  each kind running alone (its page loaded, one session just finished), measured by the same code in the
  same run; Firefox's PSS must be <= 1.5x Chromium's (with its lean prefs).
- session time by verdict: peer request to first echo (the later side), and offer to the settled pair, for
  each stack pairing in the same labs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from netsim.lab.lab import Lab
from netsim.lab.topology import standard_topology
from netsim.peers import browser
from netsim.peers.browser import page_directory
from netsim.peers.chromium_pool import browser_spec
from netsim.peers.firefox import firefox_spec
from netsim.peers.launcher import Launcher
from netsim.session.options import SessionOptions
from netsim.session.run import peer_places, run_session

TARGET_SPAWN_S = {"chromium": 0.5, "firefox": 3.5}
TARGET_PSS_RATIO = 1.5  # Firefox's PSS over Chromium's
SETTLE_S = 3.0  # after the session, before the memory is read
BROWSER_STACKS = ("chromium", "firefox")
PAIRINGS = [
    ("open", "open", "udp"),  # direct-host
    ("port-restricted-cone", "port-restricted-cone", "udp"),  # direct
    ("full-cone", "symmetric", "udp"),  # direct (prflx)
    ("port-restricted-cone", "symmetric", "udp"),  # relay (needed)
]
STACKS = [("aiortc", "aiortc"), ("chromium", "chromium"), ("firefox", "firefox")]


def memory_kib(pids: list[int]) -> tuple[int, int]:
    """(PSS, USS) of these processes, KiB: USS is what they alone hold (private clean + dirty)."""
    pss = browser.pss_kib(pids)
    uss = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith(("Private_Clean:", "Private_Dirty:")):
                    uss += int(line.split()[1])
    return pss, uss


def sharing(tree: list[int]) -> int:
    """Processes outside the tree running the same executable as its root: they share its file pages, so
    PSS splits those with them (the browser is then not measured alone)."""
    try:
        exe = os.readlink(f"/proc/{tree[0]}/exe")
    except (OSError, IndexError):
        return 0
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) not in tree:
            with contextlib.suppress(OSError):
                count += os.readlink(f"/proc/{entry}/exe") == exe
    return count


def _options(**kwargs: Any) -> SessionOptions:
    """A session without the relay-less run, with a deadline generous under load."""
    return SessionOptions(needs_relay=False, deadline_s=8.0, **kwargs)


def _spec(stack: str, place: Any) -> Any:
    return firefox_spec(place) if stack == "firefox" else browser_spec(place)


@contextlib.contextmanager
def held(launcher: Launcher, lab: Lab, stacks: tuple[str, ...], hosts: str = "ab") -> Iterator[list[Any]]:
    """The browsers of these stacks on these hosts, started at once and held for the block."""
    places = peer_places(lab, lab.start_signaling(static_dir=page_directory()), SessionOptions())
    out: list[tuple[Any, Any]] = []
    try:
        for stack in stacks:
            pool = launcher.adapter(stack).pool  # type: ignore[attr-defined]
            specs = [_spec(stack, places[h]) for h in hosts]
            pool.start(specs)
            out += [(pool, pool.browser(spec)) for spec in specs]
        yield [b for _, b in out]
    finally:
        for pool, b in out:
            pool.release(b)


def alone(launcher: Launcher, stack: str, repeat: int, out: dict[str, Any]) -> None:
    """One browser of `stack` alone in a lab (host a; b is an aiortc peer): spawn to signed in, memory."""
    for _ in range(repeat):
        with (
            Lab(standard_topology("full-cone", "full-cone")) as lab,
            held(launcher, lab, (stack,), "a") as (b,),
        ):
            opts = _options(peer_a=stack, peer_b="aiortc", turn="none")
            rec = run_session(lab, opts, launcher=launcher)
            launch: dict[str, Any] = dict(rec["a"]["launch"] or {})
            signed_in = launch.get("signed_in_ms")
            if b.ready_s is not None and signed_in is not None:
                out["spawn_to_signed_in_s"][stack].append(b.ready_s + signed_in / 1000)
            time.sleep(SETTLE_S)  # the session's own allocations released, the same wait for every kind
            tree = browser.process_tree(b.pid or 0)
            pss, uss = memory_kib(tree)
            out["memory"][stack].append(
                {
                    "pss_mib": pss / 1024,
                    "uss_mib": uss / 1024,
                    "processes": len(tree),
                    "sharing": sharing(tree),
                }
            )


def _driver_pss_kib() -> int:
    """The Playwright driver (node) started by this process."""
    pids = [
        p
        for p in browser.process_tree(os.getpid())[1:]
        if Path(f"/proc/{p}/comm").exists() and Path(f"/proc/{p}/comm").read_text().strip() == "node"
    ]
    return browser.pss_kib(pids)


def sessions(launcher: Launcher, repeat: int, out: dict[str, Any]) -> None:
    """Every stack pairing in the same labs, both hosts' browsers held for the lab."""
    for nat_a, nat_b, turn in PAIRINGS:
        with Lab(standard_topology(nat_a, nat_b)) as lab, held(launcher, lab, BROWSER_STACKS):
            for peer_a, peer_b in STACKS:
                for _ in range(repeat):
                    opts = _options(peer_a=peer_a, peer_b=peer_b, turn=turn)
                    rec = run_session(lab, opts, launcher=launcher)
                    first = rec["launch"]["start_to_first_echo_s"]
                    settled = rec["settled_s"]
                    key = f"{peer_a} x {peer_b}"
                    out["sessions"].append((nat_a, nat_b, key, rec["verdict"], first, settled))


def run(repeat: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "spawn_to_signed_in_s": {s: [] for s in BROWSER_STACKS},
        "memory": {s: [] for s in BROWSER_STACKS},
        "sessions": [],
    }
    with Launcher() as launcher:
        launcher.wait_ready()
        controller = launcher.adapter("chromium").pool.controller  # type: ignore[attr-defined]
        t0 = time.monotonic()
        controller.submit(controller.playwright()).result(60)
        out["driver_start_s"] = time.monotonic() - t0
        out["driver_pss_mib"] = _driver_pss_kib() / 1024
        for stack in BROWSER_STACKS:
            alone(launcher, stack, repeat, out)
        sessions(launcher, repeat, out)
    return out


def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def report(out: dict[str, Any]) -> None:
    for stack in BROWSER_STACKS:
        xs = out["spawn_to_signed_in_s"][stack]
        spawn, target = _median(xs), TARGET_SPAWN_S[stack]
        ok = "ok" if spawn is not None and spawn <= target else "MISSED"
        print(
            f"{stack} spawn -> signed in: median {spawn or 0:.3f} s, target <= {target} s: {ok} (n={len(xs)})"
        )
    print(
        f"Playwright driver start (once per process, Chromium only): {out['driver_start_s']:.3f} s, "
        f"PSS {out['driver_pss_mib']:.0f} MiB"
    )
    mem = {s: out["memory"][s] for s in BROWSER_STACKS}
    pss = {s: _median([m["pss_mib"] for m in mem[s]]) or 0.0 for s in BROWSER_STACKS}
    uss = {s: _median([m["uss_mib"] for m in mem[s]]) or 0.0 for s in BROWSER_STACKS}
    for s in BROWSER_STACKS:
        procs = _median([m["processes"] for m in mem[s]]) or 0
        n, others = len(mem[s]), max((m["sharing"] for m in mem[s]), default=0)
        shared = f"; {others} processes of others ran its executable (PSS split with them)" if others else ""
        usage = f"PSS median {pss[s]:.0f} MiB, USS {uss[s]:.0f} MiB"
        print(f"{s} alone: {usage}, {procs:.0f} processes (n={n}){shared}")
    ratio = pss["firefox"] / pss["chromium"] if pss["chromium"] else float("inf")
    uss_ratio = uss["firefox"] / uss["chromium"] if uss["chromium"] else float("inf")
    verdict = f"target <= {TARGET_PSS_RATIO}: {'ok' if ratio <= TARGET_PSS_RATIO else 'MISSED'}"
    print(f"firefox / chromium PSS per browser: {ratio:.2f}, {verdict}; USS {uss_ratio:.2f}")
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
