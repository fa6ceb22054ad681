"""Benchmark: population runs, parallel and in shared labs, beside the issue's targets. Needs root.

Prints, measured in one run of this script:
- `netsim population -j 1` against `-j 4` for the same seed (target: -j 4 at least twice as fast);
- one lab with as many pairs as the machine's neighbour table allows, all at once (target: 100 pairs, see
  docs/population.md for why the table caps it), with agreement with the matrix expectations;
- a large population through shared labs, lab after lab (target: 1,000 sessions <= 5 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MIX = REPO / "mixes" / "illustrative.toml"
EXPECTED = REPO / "scenarios" / "expected.toml"


def netsim(*argv: str, reports: Path) -> tuple[float, str]:
    cmd = [
        sys.executable,
        "-m",
        "netsim",
        *argv,
        "--reports",
        str(reports),
        "--no-report",
        "--expected",
        str(EXPECTED),
    ]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env={**os.environ}).stdout
    return time.perf_counter() - t0, out


def crowd_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("one lab:")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=16, help="sessions for the -j comparison")
    parser.add_argument("--big", type=int, default=1000, help="sessions for the shared-lab run")
    args = parser.parse_args()
    from netsim.suite.crowd import max_pairs, neigh_cap

    with tempfile.TemporaryDirectory(prefix="netsim-bench-") as tmp:
        reports = Path(tmp)
        common = ["population", "--mix", str(MIX), "--size", str(args.size), "--seed", "7"]
        serial, _ = netsim(*common, "-j", "1", reports=reports)
        parallel, _ = netsim(*common, "-j", "4", reports=reports)
        ratio = serial / parallel
        print(
            f"population of {args.size}: -j 1 {serial:.1f} s, -j 4 {parallel:.1f} s; speed-up {ratio:.2f}  "
            f"target >= 2  {'OK' if ratio >= 2 else 'MISSED'}"
        )
        most = max_pairs()
        wall, out = netsim(
            "population", "--mix", str(MIX), "--size", str(most), "--concurrent", str(most), reports=reports
        )
        print(
            f"one lab, {most} pairs at once (neighbour table holds {neigh_cap()} entries): {wall:.1f} s  "
            f"target 100 pairs  {'OK' if most >= 100 else 'MISSED (capped by the kernel table)'}"
        )
        for line in crowd_lines(out):
            print("  " + line)
        wall, out = netsim(
            "population",
            "--mix",
            str(MIX),
            "--size",
            str(args.big),
            "--concurrent",
            str(most),
            reports=reports,
        )
        lines = crowd_lines(out)
        print(
            f"population of {args.big} in {len(lines)} shared labs: {wall:.1f} s  target <= 300 s  "
            f"{'OK' if wall <= 300 else 'MISSED'}"
        )
        passed = [line for line in out.splitlines() if " sessions (" in line]
        print("  " + (passed[-1] if passed else out[-300:]))


if __name__ == "__main__":
    main()
