"""Benchmark: wall time of the whole scenario suite, serial and with `-n 2`, beside the target. Needs root.

Runs `pytest scenarios/` twice as subprocesses (each writes its own run under reports/) and prints both wall
times and their ratio, measured in one run of this script.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_PARALLEL_S = 60.0


def suite_wall_time(workers: int | None, extra: list[str]) -> tuple[float, int]:
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--no-report",
        "scenarios/",
        *extra,
    ]
    if workers:
        argv[3:3] = ["-n", str(workers)]
    t0 = time.perf_counter()
    code = subprocess.run(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    return time.perf_counter() - t0, code


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-serial", action="store_true", help="only the -n 2 run")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments, e.g. -k matrix")
    args = parser.parse_args()
    parallel, code_p = suite_wall_time(2, args.pytest_args)
    verdict = "OK" if parallel <= TARGET_PARALLEL_S else "MISSED"
    target = f"target <= {TARGET_PARALLEL_S:.0f} s"
    print(f"scenario suite with -n 2: {parallel:6.1f} s  {target}  {verdict}  (pytest exit {code_p})")
    if not args.skip_serial:
        serial, code_s = suite_wall_time(None, args.pytest_args)
        ratio = serial / parallel
        print(
            f"scenario suite serial:    {serial:6.1f} s  (pytest exit {code_s}); serial / -n 2 = {ratio:.2f}"
        )


if __name__ == "__main__":
    main()
