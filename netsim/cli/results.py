"""Commands on finished runs: report (rebuild the HTML), compare (two runs cell by cell), export (CSV)."""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Any

from netsim import runfiles
from netsim.cli.common import EXIT_MISMATCH, EXIT_OK, InputError


def add_parsers(sub: Any) -> None:
    rep = sub.add_parser("report", help="(re)build the HTML report of a run (reports/latest stays put)")
    rep.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="run directory, e.g. reports/<run-id>")
    rep.set_defaults(func=cmd_report)
    cmp = sub.add_parser(
        "compare", help="the cells whose verdict, needs_relay, connection, call or winning pair changed"
    )
    cmp.add_argument("run_a", metavar="RUN_A", type=Path)
    cmp.add_argument("run_b", metavar="RUN_B", type=Path)
    cmp.add_argument("--html", type=Path, default=None, metavar="FILE", help="also write the changes as HTML")
    cmp.add_argument("--fail-on-change", action="store_true", help="exit 1 when anything changed")
    cmp.add_argument(
        "--fail-on",
        default=None,
        metavar="ASPECTS",
        help="exit 1 only when these aspects changed, e.g. needs_relay,connect (verdict, first_verdict, "
        "needs_relay, connect, call, pair, presence)",
    )
    cmp.set_defaults(func=cmd_compare)
    exp = sub.add_parser("export", help="one row per session, flat columns")
    exp.add_argument("run_dir", metavar="RUN_DIR", type=Path)
    exp.add_argument("--csv", action="store_true", required=True, help="CSV (the one format so far)")
    exp.add_argument("-o", "--output", type=Path, default=None, help="write here instead of standard output")
    exp.set_defaults(func=cmd_export)


def _run_dir(path: Path) -> Path:
    if not (path / "results.jsonl").is_file():
        raise InputError(f"{path}: not a run directory (no results.jsonl)")
    return path


def cmd_report(args: argparse.Namespace) -> int:
    from netsim.results.report import build_report

    print(build_report(_run_dir(args.run_dir), point_latest=False))
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from netsim.results.compare import (
        FAIL_ASPECTS,
        compare,
        failing,
        format_changes,
        parse_aspects,
        write_html,
    )
    from netsim.results.store import load_run

    if args.fail_on is not None and args.fail_on_change:
        raise InputError("--fail-on: give it or --fail-on-change, not both")
    try:
        fail_on = parse_aspects(args.fail_on) if args.fail_on is not None else ()
    except ValueError as e:
        raise InputError(f"--fail-on: {e}") from None
    fail_on = FAIL_ASPECTS if args.fail_on_change else fail_on
    if args.html is not None:
        runfiles.no_symlink(args.html)
    a = load_run(_run_dir(args.run_a))
    b = load_run(_run_dir(args.run_b))
    changes = compare(a, b)
    print(format_changes(changes, args.run_a.name, args.run_b.name, fail_on))
    if args.html is not None:
        write_html(changes, args.run_a.name, args.run_b.name, args.html, fail_on)
        print(f"HTML: {args.html}")
    return EXIT_MISMATCH if failing(changes, fail_on) else EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from netsim.results.export import write_csv
    from netsim.results.store import load_run

    records = load_run(_run_dir(args.run_dir))
    if args.output is None:
        write_csv(records, sys.stdout)
        return EXIT_OK
    runfiles.no_symlink(args.output)
    out = io.StringIO(newline="")
    n = write_csv(records, out)
    runfiles.write_file(args.output, out.getvalue())  # whole, or not at all (a full disk)
    print(f"{n} rows written to {args.output}", file=sys.stderr)
    return EXIT_OK
