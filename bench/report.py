"""Benchmark: build the HTML report of 1,000 synthetic sessions; median of a few runs against the 5 s target.

    python bench/report.py [--sessions 1000] [--runs 5]

Each run is a full `build_report` (read results.jsonl, aggregate, chart, render, write, link), in a fresh
temporary reports directory. The first run also pays for importing matplotlib, as a CLI invocation would.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "results")]  # run from a checkout without installing

from report_fixtures import synthetic_records, write_results  # noqa: E402

from netsim.results.report import build_report  # noqa: E402

TARGET_S = 5.0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    records = synthetic_records(args.sessions)
    times = []
    with tempfile.TemporaryDirectory(prefix="netsim-bench-") as tmp:
        run = Path(tmp) / "reports" / "20261129-043500-bench"
        write_results(run, records)
        size = 0
        for _ in range(args.runs):
            start = time.perf_counter()
            out = build_report(run)
            times.append(time.perf_counter() - start)
            size = out.stat().st_size
    median = statistics.median(times)
    verdict = "OK" if median <= TARGET_S else "TOO SLOW"
    print(
        f"report of {len(records)} sessions: median {median:.2f} s over {len(times)} runs "
        f"(min {min(times):.2f} s, first {times[0]:.2f} s), target <= {TARGET_S:.0f} s: {verdict}"
    )
    print(f"index.html size: {size / 1e6:.1f} MB")
    return 0 if median <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
