"""Population commands: estimate (relay shares from a matrix run and a NAT mix), merge (runs into one)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from netsim.cli.common import EXIT_OK, InputError, positive_float, positive_int, print_json, stacks
from netsim.errors import printable


def add_parsers(sub: Any) -> None:
    """Registers `netsim estimate` and `netsim merge`."""
    est = sub.add_parser(
        "estimate",
        help="expected shares of calls that need a relay, for a NAT mix, from a matrix run",
        description="Expected shares of calls that need a relay, win on a relay, connect without TURN and "
        "fail even with it, with 95 % intervals from the repeats, from a matrix run's per-cell outcomes and "
        "a NAT mix; beside them, how far each assumed or secondary mix weight moves the answer "
        "(docs/population.md).",
    )
    est.add_argument("--matrix", required=True, type=Path, metavar="RUN_DIR", help="a matrix run directory")
    est.add_argument(
        "--mix",
        required=True,
        metavar="MIX",
        help="the callers' NAT mix: a file, a shipped mix's name (residential, mobile, enterprise) or a "
        "blend such as mobile=0.5,residential=0.5",
    )
    est.add_argument(
        "--mix-b", metavar="MIX", help="the callees' NAT mix, in the same forms (default: --mix)"
    )
    est.add_argument(
        "--min-repeats",
        type=positive_int,
        default=1,
        metavar="N",
        help="refuse a run whose cells have fewer than N sessions each (CI publishes with 3)",
    )
    est.add_argument(
        "--bitrate-kbps",
        type=positive_float,
        default=None,
        help="media bitrate of a call, each way, for relay capacity (default 1000)",
    )
    est.add_argument(
        "--peers",
        default="aiortc,aiortc",
        type=stacks,
        help="the stack pairing whose sessions to read, e.g. chromium,chromium (default aiortc,aiortc)",
    )
    est.add_argument(
        "--ipv4-only",
        action="store_true",
        help="set the mixes' IP-mode shares aside: the IPv4-only estimate alone, from a run of the mix's "
        "IPv4 cells (`netsim matrix --mix MIX --ipv6 none`)",
    )
    est.add_argument("--json", action="store_true", help="print the estimate as JSON")
    est.set_defaults(func=cmd_estimate)
    mrg = sub.add_parser("merge", help="merge run directories (e.g. shards) into one run with a report")
    mrg.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    mrg.add_argument("-o", "--out", required=True, type=Path, metavar="OUT", help="the new run directory")
    mrg.add_argument(
        "--force", action="store_true", help="merge runs whose versions, schema or expectations differ"
    )
    mrg.add_argument("--no-report", action="store_true", help="skip the HTML report")
    mrg.set_defaults(func=cmd_merge)


def cmd_estimate(args: argparse.Namespace) -> int:
    from netsim.results.estimate import DEFAULT_BITRATE_KBPS, EstimateError, estimate
    from netsim.results.estimate_text import as_json, format_table
    from netsim.suite.blend import resolve

    mix = resolve(args.mix, "--mix")
    mix_b = resolve(args.mix_b, "--mix-b") if args.mix_b is not None else None
    if args.ipv4_only:
        mix, mix_b = mix.ipv4_only(), mix_b.ipv4_only() if mix_b is not None else None
    bitrate = args.bitrate_kbps if args.bitrate_kbps is not None else DEFAULT_BITRATE_KBPS
    try:
        est = estimate(args.matrix, mix, mix_b, bitrate, peers=args.peers, min_repeats=args.min_repeats)
    except EstimateError as e:
        raise InputError(str(e)) from None
    if args.json:
        print_json(as_json(est))
    else:
        print(format_table(est))
    return EXIT_OK


def cmd_merge(args: argparse.Namespace) -> int:
    from netsim.results.merge import MergeError, merge_runs

    try:
        merged = merge_runs(args.runs, args.out, force=args.force, report=not args.no_report)
    except MergeError as e:
        raise InputError(str(e)) from None
    for problem in merged.overridden:  # values from records: shown escaped (errors.printable)
        print(f"netsim: warning: merged anyway: {printable(problem)}")
    for note in merged.warnings:
        print(f"netsim: warning: {printable(note)} (kept in {merged.out}/run.json)")
    print(f"{merged.out}: {merged.sessions} sessions from {merged.runs} runs")
    if merged.report is not None:
        print(f"HTML report: {merged.report}")
    return EXIT_OK
