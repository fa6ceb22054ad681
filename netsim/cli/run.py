"""Run commands: matrix, run (scenario files), population, rerun; each writes a run directory."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from netsim import runfiles
from netsim.cli.common import (
    InputError,
    exit_code,
    jobs_arg,
    positive_int,
    retries_arg,
    stacks,
)
from netsim.cli.labargs import ip_modes, matrix_kinds
from netsim.vocab import BROWSERS, DIRECT_VERDICTS, IPV4_ONLY, NAT_KINDS, RELAY, TURN_CHOICES, UDP

DEFAULT_MIX = "residential"  # cited (docs/population.md); the invented mix is never a default
REPORTS_ENV = "NETSIM_REPORTS"


def add_parsers(sub: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--repeats", type=positive_int, default=1, help="run every scenario N times")
    common.add_argument(
        "--reports", default=None, help=f"reports root (default: ${REPORTS_ENV} or ./reports)"
    )
    common.add_argument(
        "--expected",
        type=Path,
        default=None,
        help="expectations (default: the shipped scenarios/expected.toml; for scenario files, the "
        "expected.toml beside each file), wherever you run from",
    )
    common.add_argument("--no-report", action="store_true", help="skip the HTML report")
    common.add_argument("--pcap", action="store_true", help="capture the internet segment of every session")
    common.add_argument(
        "-j",
        "--jobs",
        type=jobs_arg,
        default=1,
        help="sessions at once, each in its own lab; auto: sized from this machine's cores and memory, "
        "with at most one browser starting per core (default 1)",
    )
    common.add_argument(
        "--retries",
        type=retries_arg,
        default=2,
        help="runs of a session that load made inconclusive, beyond the first (default 2; docs/load.md)",
    )
    mx = sub.add_parser("matrix", parents=[common], help="run the NAT x NAT matrix and write a report")
    mx.add_argument("--turn", choices=TURN_CHOICES, default=UDP)
    mx.add_argument(
        "--kinds", default=",".join(NAT_KINDS), help="comma-separated NAT kinds (or rules files' paths)"
    )
    mx.add_argument(
        "--ipv6",
        default=None,
        metavar="MODE[,MODE]",
        help="IP modes: every kind x kind cell runs for every mode x mode (default none; e.g. none,dual); "
        "with --mix, only the mix's cells in these modes (the mix's IP-mode shares choose the rest)",
    )
    mx.add_argument(
        "--peers", default="aiortc,aiortc", type=stacks, help="the stacks of a and b (default aiortc,aiortc)"
    )
    mx.add_argument(
        "--mix",
        default=None,
        metavar="MIX",
        help="run exactly the cells this mix needs: a file, a shipped mix's name or a blend (NAME=SHARE,...)",
    )
    mx.add_argument("--mix-b", default=None, metavar="MIX", help="the callees' mix (with --mix)")
    mx.set_defaults(func=cmd_matrix)
    run = sub.add_parser("run", parents=[common], help="run the session of scenario TOML files")
    run.add_argument("files", nargs="+", type=Path)
    run.set_defaults(func=cmd_run)
    pop = sub.add_parser("population", parents=[common], help="run pairings drawn from a NAT mix")
    pop.add_argument("--size", type=positive_int, default=20)
    pop.add_argument(
        "--mix",
        default=None,
        help="a mix file, a shipped mix's name, a blend (mobile=0.5,residential=0.5) or your own "
        f"kind=weight,... (default: the cited {DEFAULT_MIX} mix)",
    )
    pop.add_argument("--mix-b", default=None, help="the callees' mix, in the same forms (default: --mix)")
    pop.add_argument(
        "--matrix", type=Path, default=None, metavar="RUN_DIR", help="a matrix run: show its estimate beside"
    )
    pop.add_argument(
        "--concurrent",
        type=positive_int,
        default=None,
        metavar="K",
        help="pairs in ONE lab (one coturn, one signaling server), K sessions at once; more pairs than a lab "
        "holds go to successive labs",
    )
    pop.add_argument(
        "--peers", default="aiortc,aiortc", type=stacks, help="the stacks of a and b (default aiortc,aiortc)"
    )
    pop.add_argument("--seed", type=int, default=1)
    pop.add_argument("--turn", choices=TURN_CHOICES, default=UDP)
    pop.set_defaults(func=cmd_population)
    rerun = sub.add_parser("rerun", parents=[common], help="run one session of a run again, from its record")
    rerun.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="run directory, e.g. reports/<run-id>")
    rerun.add_argument("scenario", metavar="SCENARIO_ID", help="the record's scenario, e.g. lan/same-lan")
    rerun.add_argument("--repeat", type=int, default=None, help="which repeat's record (default: the first)")
    rerun.set_defaults(func=cmd_rerun)


def reports_root(args: argparse.Namespace) -> Path:
    """--reports, else $NETSIM_REPORTS, else ./reports of the working directory."""
    return Path(args.reports or os.environ.get(REPORTS_ENV) or "reports")


def _run(
    scenarios: list[Any],
    args: argparse.Namespace,
    table: dict[str, Any] | None = None,
    directory: Path | None = None,
) -> int:
    return _run_in(scenarios, args, table, directory)[0]


def _run_in(
    scenarios: list[Any],
    args: argparse.Namespace,
    table: dict[str, Any] | None = None,
    directory: Path | None = None,
) -> tuple[int, Path | None]:
    """Run scenarios into a new run directory; exit 1 if any expectation was violated, else 4 if sessions
    stayed inconclusive. Interrupted or stopped by a full disk, the records so far get a summary marked
    partial."""
    from netsim.results.finish import finish_run
    from netsim.suite.parallel import auto_jobs
    from netsim.suite.runner import run_many

    if not scenarios:
        raise InputError("nothing to run")
    table = _expectations(args) if table is None else table
    root = reports_root(args)
    directory = directory or runfiles.run_dir(root, runfiles.new_run_id())
    jobs, browsers = auto_jobs() if args.jobs == 0 else (args.jobs, None)
    with partial_on_stop(directory, root):
        counts = run_many(
            scenarios,
            args.repeats,
            table,
            directory,
            pcap=args.pcap,
            jobs=jobs,
            retries=args.retries,
            max_browsers=browsers,
        )
    summary = finish_run(directory, root, report=not args.no_report)
    if summary is not None:
        for _group, table_text in summary.matrices:
            print(table_text)
        print(summary.line)
        if summary.report is not None:
            print(f"HTML report: {summary.report}")
    if counts.retried:
        print(
            f"retried: {counts.retried} sessions inconclusive at first (load), {counts.recovered} concluded "
            f"on a retry, {counts.inconclusive} stayed inconclusive"
        )
    return exit_code(counts.violated, counts.inconclusive), directory


@contextlib.contextmanager
def partial_on_stop(directory: Path, root: Path) -> Iterator[None]:
    """An interrupt (Ctrl-C, SIGTERM) or a full disk ends the run: the records written so far get a
    summary.json marked partial (no report: the run stops within seconds), then the stop goes on."""
    from netsim.results.finish import finish_run
    from netsim.suite.parallel import WriteStop

    try:
        yield
    except (KeyboardInterrupt, WriteStop):
        with contextlib.suppress(OSError, runfiles.WriteError):  # the disk may still be full
            finish_run(directory, root, report=False, partial=True)
        raise


def _expectations(args: argparse.Namespace) -> dict[str, Any]:
    """--expected FILE, else the shipped table, whatever the working directory (netsim.suite.expectations)."""
    from netsim.suite.expectations import load_expectations, shipped_table

    if args.expected is not None:
        return load_expectations(args.expected)
    return shipped_table()


def cmd_matrix(args: argparse.Namespace) -> int:
    from netsim.suite.blend import resolve
    from netsim.suite.catalog import matrix, mix_cells

    peer_a, peer_b = args.peers
    if args.mix is not None:
        mix = resolve(args.mix, "--mix")
        mix_b = resolve(args.mix_b, "--mix-b") if args.mix_b is not None else None
        if args.ipv6 is not None and not (mix.has_ip or (mix_b is not None and mix_b.has_ip)):
            raise InputError(
                "--ipv6: the mix has no IP-mode shares (give it an [ip] table: docs/population.md)"
            )
        cells = mix_cells(mix, mix_b, turn=args.turn, peer_a=peer_a, peer_b=peer_b)
        if args.ipv6 is not None:  # only the mix's cells whose two modes are among these
            wanted = set(ip_modes(args.ipv6))
            cells = [c for c in cells if {s.ipv6 for s in c.topology.sites} <= wanted]
        print(f"mix cells: {len(cells)} (x {args.repeats} repeats = {len(cells) * args.repeats} sessions)")
        return _run(cells, args)
    if args.mix_b is not None:
        raise InputError("--mix-b: goes with --mix")
    modes = ip_modes(args.ipv6 or IPV4_ONLY)
    return _run(matrix(args.turn, matrix_kinds(args.kinds), peer_a, peer_b, modes), args)


def cmd_run(args: argparse.Namespace) -> int:
    from netsim.suite.expectations import beside_its_file
    from netsim.suite.scenario import load_scenario_file

    scenarios = [load_scenario_file(f) for f in args.files]
    if args.expected is not None:
        return _run(scenarios, args)
    tables: dict[Path, Any] = {}
    return _run([beside_its_file(s, tables) for s in scenarios], args, table={})  # each file's own table


def cmd_population(args: argparse.Namespace) -> int:
    """Sessions drawn from a mix; with a mix file, the sampled shares with Wilson intervals (and a matrix
    run's estimate beside them, with --matrix)."""
    from netsim.suite.catalog import population

    mix, mix_file = _mix_weights(args.mix or DEFAULT_MIX, "--mix")
    mix_b, mix_b_file = _mix_weights(args.mix_b, "--mix-b") if args.mix_b is not None else (None, None)
    for given in (mix_file, mix_b_file):
        if given is not None:
            print(f"mix {given.name!r}" + (f": {given.note}" if given.note else ""))
    browsers = [s for s in args.peers if s in BROWSERS]
    if args.concurrent is not None and browsers:
        raise InputError(
            f"--concurrent: {browsers[0]} peers start a browser each (~0.4 GiB, seconds of CPU): run them "
            "with -j (a lab per pair), or --concurrent with aiortc or pion peers"
        )
    est = _estimate_for(args.matrix, mix_file, mix_b_file)  # before the run: a bad matrix fails fast
    names = (mix_file.name if mix_file else None, mix_b_file.name if mix_b_file else None)
    peer_a, peer_b = args.peers
    scenarios = population(
        args.size, mix, args.seed, args.turn, mix_b=mix_b, names=names, peer_a=peer_a, peer_b=peer_b
    )
    run = _run_crowd if args.concurrent is not None else _run_in
    code, directory = run(scenarios, args)
    if directory is not None:
        print(_sampled_shares(directory, est))
    return code


def _run_crowd(scenarios: list[Any], args: argparse.Namespace) -> tuple[int, Path | None]:
    """Pairs in shared labs, --concurrent at a time; more pairs than one lab holds run in successive labs.
    Prints what each lab's TURN server saw."""
    from netsim.results.finish import finish_run
    from netsim.suite.crowd import crowd_topology, max_pairs, run_crowd

    size = max_pairs()
    waves = [scenarios[i : i + size] for i in range(0, len(scenarios), size)]
    for wave in waves:
        crowd_topology(wave)  # refuse what a lab cannot hold before anything is built
    root = reports_root(args)
    directory = runfiles.run_dir(root, runfiles.new_run_id())
    table, violated, inconclusive, all_stats = _expectations(args), 0, 0, []
    for wave in waves:
        with partial_on_stop(directory, root):
            counts, stats = run_crowd(wave, args.concurrent, table, directory, retries=args.retries)
        violated += counts.violated
        inconclusive += counts.inconclusive
        all_stats.append(dataclasses.asdict(stats))
        print(
            f"one lab: {stats.pairs} pairs, {stats.concurrent} at once; build {stats.build_s} s, sessions "
            f"{stats.run_s} s; coturn: {stats.allocations} allocations, {stats.coturn_cpu_s} s CPU, "
            f"{stats.relayed_bytes} bytes relayed; services waited {stats.services_wait_s} s for a CPU; "
            f"agreement with the matrix expectations: {stats.agreement}"
        )
    (directory / "crowd.json").write_text(json.dumps(all_stats, indent=2) + "\n")
    summary = finish_run(directory, root, report=not args.no_report)
    if summary is not None:
        print(summary.line)
    return exit_code(violated, inconclusive), directory


def _mix_weights(text: str, option: str) -> tuple[dict[str, float], Any]:
    """(kind -> share, the Mix) from a mix file, a shipped mix's name or a blend, or (kind -> weight, None)
    from your own kind=weight,..."""
    from netsim.suite.blend import resolve
    from netsim.suite.catalog import parse_mix
    from netsim.suite.mixes import split_kind

    keys = [part.partition("=")[0].strip() for part in text.split(",")]
    try:
        own = "=" in text and all(split_kind(k) for k in keys)
    except ValueError:
        own = False
    if not own:
        mix = resolve(text, option)
        return mix.shares, mix
    try:
        return parse_mix(text), None
    except ValueError as e:
        raise InputError(str(e).replace("--mix", option, 1)) from None


def _estimate_for(matrix: Path | None, mix: Any, mix_b: Any) -> Any:
    from netsim.results.estimate import estimate

    if matrix is None:
        return None
    if mix is None:
        raise InputError("--matrix: needs --mix FILE (a mix file, not kind=weight)")
    return estimate(matrix, mix, mix_b)


def _sampled_shares(directory: Path, est: Any) -> str:
    from netsim.results import store as results

    return sampled_shares(results.load_records(directory), est)


def sampled_shares(records: Sequence[Mapping[str, Any]], est: Any) -> str:
    """The population's own shares with Wilson 95 % intervals, beside the estimate when there is one.

    needs_relay is a share of every session or none: a session whose relay-less run was left out (as in
    --concurrent runs, where only direct sessions know the answer) would bias it, so the line then gives
    the bounds the unchecked sessions allow and is not compared with the estimate.
    """
    from netsim.results.estimate import wilson
    from netsim.results.tables import counted

    left_out = sum(not counted(r) for r in records)  # inconclusive: load, not the NAT, decided them
    records = [r for r in records if counted(r)]
    unchecked = sum(r.get("needs_relay") is None for r in records)
    counts = {
        "needs_relay": (sum(r.get("needs_relay") is True for r in records), len(records)),
        "relay_won": (sum(r.get("verdict") == RELAY for r in records), len(records)),
        "direct": (sum(r.get("verdict") in DIRECT_VERDICTS for r in records), len(records)),
    }
    lines = [
        "sampled shares (Wilson 95 %)"
        + ("  vs  estimate from the matrix run" if est is not None else "")
        + (f"; {left_out} inconclusive sessions left out" if left_out else "")
    ]
    for name, (k, n) in counts.items():
        if name == "needs_relay" and unchecked:
            lines.append(
                f"  {name:<12} unchecked for {unchecked}/{n} sessions (no relay-less run): between "
                f"{k / n:.1%} and {(k + unchecked) / n:.1%}; not compared"
            )
            continue
        low, high = wilson(k, n) if n else (0.0, 1.0)
        line = f"  {name:<12} {k}/{n} = {k / n if n else 0:.1%}  [{low:.1%}, {high:.1%}]"
        if est is not None:
            iv = getattr(est, name)
            verdict = "agree" if iv.low <= high and low <= iv.high else "DISAGREE"  # intervals overlap?
            line += f"   estimate {iv.share:.1%} [{iv.low:.1%}, {iv.high:.1%}]  {verdict}"
        lines.append(line)
    return "\n".join(lines)


def cmd_rerun(args: argparse.Namespace) -> int:
    """The session of a record, run again exactly: its topology, rules text, options and expectation."""
    from netsim.results.rerun import scenario_to_rerun

    if not (args.run_dir / runfiles.RESULTS_FILE).is_file():
        raise InputError(f"{args.run_dir}: not a run directory (no results.jsonl)")
    directory = runfiles.run_dir(reports_root(args), runfiles.new_run_id())
    try:
        scn = scenario_to_rerun(args.run_dir, args.scenario, args.repeat, rules_dir=directory / "rules")
    except Exception:
        shutil.rmtree(directory)  # bad input leaves nothing behind
        raise
    return _run([scn], args, table={}, directory=directory)  # exactly the record's expectation, or none
