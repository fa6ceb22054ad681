"""Benchmark: a crowd with carriers. Needs root.

Runs a population of the residential mix (CGN-layered homes included) with Pion peers on both sides, all
in one shared lab (`netsim population --concurrent`: homes behind carriers shared per CGN kind and side),
then every distinct cell of it alone, in a lab of its own per cell (its solo answer, with the relay-less
run), and prints how many pairings reached their cell's solo answer (target: all of them): the same
verdict, or both connected where the cell needs no relay (a relay may win the nomination race there).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from netsim.suite.catalog import population  # noqa: E402
from netsim.suite.crowd import run_crowd  # noqa: E402
from netsim.suite.expectations import load_expectations  # noqa: E402
from netsim.suite.mixes import load_mix  # noqa: E402
from netsim.suite.runner import run_many  # noqa: E402
from netsim.vocab import FAILED, PION  # noqa: E402

MIX = REPO / "mixes" / "residential.toml"
EXPECTED = REPO / "scenarios" / "expected.toml"


def solo_answer(crowd_verdict: str, solo_verdict: str, needs_relay: bool | None) -> bool:
    """Whether a crowd session reached its cell's solo answer."""
    return crowd_verdict == solo_verdict or (
        needs_relay is False and FAILED not in (crowd_verdict, solo_verdict)
    )


def _records(directory: Path) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in (directory / "results.jsonl").read_text().splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stack", default=PION)
    args = parser.parse_args()
    table = load_expectations(EXPECTED)
    mix = load_mix(MIX)
    scns = population(args.pairs, mix.shares, args.seed, peer_a=args.stack, peer_b=args.stack)  # type: ignore[arg-type]
    layered = sum("+cgn-" in k for s in scns for k in (s.nat_a, s.nat_b))
    with tempfile.TemporaryDirectory() as tmp:
        crowd_dir, solo_dir = Path(tmp) / "crowd", Path(tmp) / "solo"
        crowd_dir.mkdir()
        solo_dir.mkdir()
        t0 = time.monotonic()
        counts, stats = run_crowd(scns, args.concurrent, table, crowd_dir, show=lambda line: None)
        crowd_s = time.monotonic() - t0
        print(
            f"crowd: {args.pairs} pairs of {mix.name} ({args.stack} peers), {layered} homes behind carriers, "
            f"{stats.concurrent} at once: {crowd_s:.1f} s; {counts.inconclusive} inconclusive, "
            f"{stats.allocations} TURN allocations (load {os.getloadavg()[0]:.1f})",
            flush=True,
        )
        cells = {(s.nat_a, s.nat_b): s for s in scns}
        t0 = time.monotonic()
        run_many(list(cells.values()), 1, table, solo_dir, jobs=4)
        print(f"solo: {len(cells)} distinct cells, a lab each: {time.monotonic() - t0:.1f} s", flush=True)
        solo = {(r["nat_a"], r["nat_b"]): (r["verdict"], r["needs_relay"]) for r in _records(solo_dir)}
        crowd = {r["scenario"]: r for r in _records(crowd_dir)}
        misses = []
        for scn in scns:
            verdict, needs = solo[(scn.nat_a, scn.nat_b)]
            got = crowd[scn.id]["verdict"]
            if not solo_answer(got, verdict, needs):
                misses.append(f"  {scn.id}: crowd {got}, alone {verdict} (needs_relay {needs})")
        reached = len(scns) - len(misses)
        ok = "OK" if not misses else "MISSED"
        print(f"pairings reaching their solo answer: {reached}/{len(scns)}  target: all  {ok}")
        print("\n".join(misses))


if __name__ == "__main__":
    main()
