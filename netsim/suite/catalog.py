"""The scenario suite: the catalog of scenarios, the editable table of expected outcomes, and the check.

`pytest scenarios/` parametrizes over `catalog()`; researchers add topologies as TOML files under scenarios/
(a `[session]` table says which hosts pair and how) and expectations in scenarios/expected.toml.
"""

from __future__ import annotations

import argparse
import contextlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netsim.session.run import UDP_BLOCKED_EXTRA_S
from netsim.lab.topology import Topology, TopologyError, from_dict, standard_topology

SCENARIO_DIR = Path(__file__).resolve().parent.parent.parent / "scenarios"
NAT_KINDS = ("open", "full-cone", "restricted-cone", "port-restricted-cone", "symmetric")
VERDICTS = ("direct-host", "direct", "relay", "failed")
SESSION_KEYS = {
    "a",
    "b",
    "turn",
    "policy",
    "glare",
    "glare_first",
    "hide_host",
    "deadline_s",
    "group",
    "label_a",
    "label_b",
}
# The suite's connect deadline. Sessions here connect in under 1 s (at most ~0.7 s seen, hole punching pays
# one 500 ms STUN retransmission), so 3 s leaves a wide margin while failing cells, which wait the whole
# deadline, stay cheap.
DEFAULT_DEADLINE_S = 3.0
# Behind the UDP firewall gathering is slow and varies: a second of margin more.
FIREWALL_MARGIN_S = 4.0


@dataclass(frozen=True)
class Scenario:
    """One pairing to run: a topology, the two hosts, and the session options."""

    id: str
    group: str
    topology: Topology
    nat_a: str
    nat_b: str
    host_a: str = "a"
    host_b: str = "b"
    turn: str = "udp"
    policy: str = "all"
    glare: bool = False
    glare_first: str = "a"
    hide_host: bool = False
    deadline_s: float = DEFAULT_DEADLINE_S

    def session_options(self) -> dict[str, Any]:
        return {
            "turn": self.turn,
            "policy": self.policy,
            "glare": self.glare,
            "glare_first": self.glare_first,
            "deadline_s": self.deadline_s,
            "host_a": self.host_a,
            "host_b": self.host_b,
            "hide_host": self.hide_host,
        }


@dataclass(frozen=True)
class Expectation:
    """What a scenario must show: needs_relay, whether it connects, maybe the verdict and relay transport."""

    needs_relay: bool | None
    connect: bool = True
    verdict: str | None = None
    turn_transport: str | None = None
    source: str = ""  # where in the table this came from, for the mismatch message
    notes: str = field(default="", compare=False)


class ExpectationError(ValueError):
    pass


NO_EXPECTATION = Expectation(needs_relay=None, source="(no expectation)")


# ---- the catalog ------------------------------------------------------------------------------------------


def matrix(turn: str, group: str) -> list[Scenario]:
    return [
        Scenario(f"{group}/{a}__{b}", group, standard_topology(a, b), a, b, turn=turn)
        for a in NAT_KINDS
        for b in NAT_KINDS
    ]


def firewall() -> list[Scenario]:
    out = []
    for other in ("port-restricted-cone", "udp-blocked"):
        for turn in ("tcp", "tls"):
            topo = standard_topology("udp-blocked", other)
            blocked_sides = 1 + (other == "udp-blocked")
            # every blocked side's gathering waits out aioice's STUN timeout (the answerer's after the offer)
            deadline = FIREWALL_MARGIN_S + UDP_BLOCKED_EXTRA_S * blocked_sides
            out.append(
                Scenario(
                    f"firewall/udp-blocked__{other}__{turn}",
                    "firewall",
                    topo,
                    "udp-blocked",
                    other,
                    turn=turn,
                    deadline_s=deadline,
                )
            )
    return out


def policy_and_glare() -> list[Scenario]:
    prc = "port-restricted-cone"
    return [
        Scenario(
            "policy/full-cone__full-cone__relay-only",
            "policy",
            standard_topology("full-cone", "full-cone"),
            "full-cone",
            "full-cone",
            policy="relay",
        ),
        *(
            Scenario(
                f"glare/{prc}__{prc}__{first}-first",
                "glare",
                standard_topology(prc, prc),
                prc,
                prc,
                glare=True,
                glare_first=first,
            )
            for first in ("a", "b")
        ),
    ]


def load_scenario_file(path: Path) -> Scenario:
    """A TOML scenario: a topology plus a `[session]` table naming the pair and the options."""
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise TopologyError(f"{path}: not valid TOML: {e}") from None
    session = data.pop("session", {})
    if not isinstance(session, dict):
        raise TopologyError(f"{path.name}: session: expected a table, got {session!r}")
    for key in session:
        if key not in SESSION_KEYS:
            raise TopologyError(
                f"{path.name}: session.{key}: unknown key (allowed: {', '.join(sorted(SESSION_KEYS))})"
            )
    topo = from_dict(data, default_name=path.stem, base_dir=path.parent)
    hosts = topo.hosts()
    host_a, host_b = session.get("a", hosts[0]), session.get("b", hosts[-1])
    for key, host in (("a", host_a), ("b", host_b)):
        if host not in hosts:
            raise TopologyError(
                f"{path.name}: session.{key}: unknown host {host!r} (hosts: {', '.join(hosts)})"
            )
    group = session.get("group", path.stem)
    return Scenario(
        id=f"{group}/{topo.name}",
        group=group,
        topology=topo,
        nat_a=session.get("label_a", topo.site_of(host_a).nat.kind),
        nat_b=session.get("label_b", topo.site_of(host_b).nat.kind),
        host_a=host_a,
        host_b=host_b,
        turn=session.get("turn", "udp"),
        policy=session.get("policy", "all"),
        glare=bool(session.get("glare", False)),
        glare_first=session.get("glare_first", "a"),
        hide_host=bool(session.get("hide_host", False)),
        deadline_s=float(session.get("deadline_s", DEFAULT_DEADLINE_S)),
    )


def file_scenarios(directory: Path = SCENARIO_DIR) -> list[Scenario]:
    return [load_scenario_file(p) for p in sorted(directory.glob("*.toml")) if p.name != "expected.toml"]


def catalog(directory: Path = SCENARIO_DIR) -> list[Scenario]:
    """Every scenario of the suite, in a stable order (their ids are pytest ids).

    The slow firewall scenarios come first so that pytest-xdist workers finish at about the same time.
    """
    return [
        *firewall(),
        *matrix("udp", "matrix-turn"),
        *matrix("none", "matrix-noturn"),
        *file_scenarios(directory),
        *policy_and_glare(),
    ]


# ---- expectations -----------------------------------------------------------------------------------------


def load_expectations(path: Path = SCENARIO_DIR / "expected.toml") -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ExpectationError(f"expectations file not found: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise ExpectationError(f"{path}: not valid TOML: {e}") from None


def _matrix_needs_relay(table: dict[str, Any], a: str, b: str) -> bool:
    grid = table["matrix"]
    kinds, rows = grid["kinds"], grid["needs_relay"]
    if a not in kinds or b not in kinds:
        raise ExpectationError(f"expected.toml: matrix.kinds has no {a if a not in kinds else b!r}")
    value = rows[kinds.index(a)][kinds.index(b)]
    if not isinstance(value, bool):
        raise ExpectationError(
            f"expected.toml: matrix.needs_relay[{a}][{b}]: expected true or false, got {value!r}"
        )
    return value


def expectation(scn: Scenario, table: dict[str, Any]) -> Expectation:
    """The expectation for one scenario: a `[scenario."<id>"]` entry wins, else the NAT matrix."""
    entry = table.get("scenario", {}).get(scn.id)
    if entry is not None:
        return _from_entry(entry, f'scenario."{scn.id}"')
    if (
        scn.group in ("matrix-turn", "matrix-noturn", "population")
        and scn.nat_a in NAT_KINDS
        and scn.nat_b in NAT_KINDS
    ):
        needs = _matrix_needs_relay(table, scn.nat_a, scn.nat_b)
        source = f"matrix[{scn.nat_a}][{scn.nat_b}]"
        if scn.turn == "none":
            return Expectation(
                needs, connect=not needs, verdict=None if not needs else "failed", source=source
            )
        return Expectation(needs, connect=True, verdict="relay" if needs else None, source=source)
    raise ExpectationError(f'expected.toml: no entry for scenario "{scn.id}" (add [scenario."{scn.id}"])')


def _from_entry(entry: dict[str, Any], where: str) -> Expectation:
    allowed = {"needs_relay", "connect", "verdict", "turn_transport", "notes"}
    for key in entry:
        if key not in allowed:
            raise ExpectationError(
                f"expected.toml: {where}.{key}: unknown key (allowed: {', '.join(sorted(allowed))})"
            )
    verdict = entry.get("verdict")
    if verdict is not None and verdict not in VERDICTS:
        raise ExpectationError(f"expected.toml: {where}.verdict: unknown verdict {verdict!r}")
    needs = entry.get("needs_relay")
    if needs is not None and not isinstance(needs, bool):
        raise ExpectationError(f"expected.toml: {where}.needs_relay: expected true or false, got {needs!r}")
    return Expectation(
        needs_relay=needs,
        connect=bool(entry.get("connect", verdict != "failed")),
        verdict=verdict,
        turn_transport=entry.get("turn_transport"),
        source=where,
        notes=str(entry.get("notes", "")),
    )


def mismatch(record: dict[str, Any], exp: Expectation) -> str | None:
    """None when the record meets the expectation, else expectation and outcome side by side."""
    problems: list[tuple[str, object, object]] = []
    connected = record.get("verdict") != "failed"
    if connected != exp.connect:
        problems.append(("connects", exp.connect, connected))
    if exp.needs_relay is not None and record.get("needs_relay") != exp.needs_relay:
        problems.append(("needs_relay", exp.needs_relay, record.get("needs_relay")))
    if exp.verdict is not None and record.get("verdict") != exp.verdict:
        problems.append(("verdict", exp.verdict, record.get("verdict")))
    if exp.turn_transport is not None:
        used = {record.get(side, {}).get("turn_transport") for side in ("a", "b")}
        if exp.turn_transport not in used:
            problems.append(("turn_transport", exp.turn_transport, sorted(str(u) for u in used)))
    if not problems:
        return None
    lines = [f"{'':<15} {'expected':<12} actual", *(f"{k:<15} {e!s:<12} {a}" for k, e, a in problems)]
    pair = " / ".join(
        f"{side}: {record.get(side, {}).get('local_type')}->{record.get(side, {}).get('remote_type')}"
        for side in ("a", "b")
    )
    lines.append(f"(expectation from {exp.source}; selected pairs {pair}; reason: {record.get('reason')})")
    return "\n".join(lines)


# ---- running ----------------------------------------------------------------------------------------------


def run_one(
    scn: Scenario,
    launcher: Any,
    table: dict[str, Any],
    run_id: str,
    repeat: int = 0,
    strict: bool = True,
    pcap_dir: Path | None = None,
) -> tuple[dict[str, Any], str | None]:
    """Run a scenario in a fresh lab; the result record (with expectation and verdict) and any mismatch.

    strict: a scenario missing from the expectations table is an error (the suite); otherwise (a
    researcher's own file from the command line) it runs and records no expectation.
    pcap_dir: capture the internet segment into pcap_dir/<scenario>-r<repeat>.pcap (recorded relative to
    its parent, the run directory).
    """
    from netsim.session import run as session
    from netsim.lab.lab import Lab

    try:
        expected = expectation(scn, table)
    except ExpectationError:
        if strict:
            raise
        expected = NO_EXPECTATION
    pcap: Path | None = None
    with Lab(scn.topology) as lab, contextlib.ExitStack() as stack:
        if pcap_dir is not None:
            pcap_dir.mkdir(parents=True, exist_ok=True)
            pcap = stack.enter_context(lab.capture(pcap_dir / f"{scn.id.replace('/', '--')}-r{repeat}.pcap"))
        record = session.run_session(lab, launcher=launcher, **scn.session_options())
    problem = None if expected is NO_EXPECTATION else mismatch(record, expected)
    record.update(
        run_id=run_id,
        scenario=scn.id,
        group=scn.group,
        nat_a=scn.nat_a,
        nat_b=scn.nat_b,
        repeat=repeat,
        expected={
            "needs_relay": expected.needs_relay,
            "connect": expected.connect,
            "verdict": expected.verdict,
        },
        passed=problem is None,
        mismatch=problem,
        pcap=None if pcap is None else str(pcap.relative_to(pcap.parent.parent)),
    )
    return record, problem


def population(size: int, mix: dict[str, float], seed: int, turn: str = "udp") -> list[Scenario]:
    """`size` pairings whose two NAT kinds are drawn independently from `mix` (kind -> weight)."""
    import random

    for kind, weight in mix.items():
        if kind not in NAT_KINDS:
            raise ValueError(f"--mix: unknown NAT kind {kind!r} (choose from {', '.join(NAT_KINDS)})")
        if weight < 0:
            raise ValueError(f"--mix: negative weight for {kind!r}: {weight}")
    if size < 1 or sum(mix.values()) <= 0:
        raise ValueError(f"--size: needs at least one session and a positive mix (size={size})")
    rng = random.Random(seed)
    kinds, weights = list(mix), list(mix.values())
    out = []
    for i in range(size):
        a, b = rng.choices(kinds, weights, k=2)
        out.append(
            Scenario(f"population/{i:04d}__{a}__{b}", "population", standard_topology(a, b), a, b, turn=turn)
        )
    return out


def run_many(
    scenarios: list[Scenario], repeats: int, reports_root: Path, report: bool = True, pcap: bool = False
) -> tuple[Path, int]:
    """Run scenarios one after another with one launcher; returns the run directory and the mismatch count."""
    from netsim.results import store as results
    from netsim.peers.launcher import Launcher

    table = load_expectations()
    run_id = results.new_run_id()
    directory = results.run_dir(reports_root, run_id)
    failures = 0
    with Launcher() as launcher:
        for scn in scenarios:
            for repeat in range(repeats):
                pcap_dir = directory / "pcap" if pcap else None
                record, problem = run_one(
                    scn, launcher, table, run_id, repeat, strict=False, pcap_dir=pcap_dir
                )
                results.append_record(directory, record)
                failures += problem is not None
                mark = "ok" if problem is None else "MISMATCH"
                print(f"{scn.id:<64} {record['verdict']:<11} needs_relay={record['needs_relay']!s:<5} {mark}")
                if problem:
                    print("    " + problem.replace("\n", "\n    "))
    results.write_summary(directory)
    if report:
        from netsim.results import report as report_mod

        print(f"HTML report: {report_mod.build_report(directory, reports_root)}")
    return directory, failures


def _parse_mix(text: str) -> dict[str, float]:
    mix = {}
    for part in text.split(","):
        kind, _, weight = part.partition("=")
        try:
            mix[kind.strip()] = float(weight)
        except ValueError:
            raise ValueError(f"--mix: bad weight in {part!r} (use kind=weight,...)") from None
    return mix


DEFAULT_MIX = "open=0.05,full-cone=0.15,restricted-cone=0.15,port-restricted-cone=0.45,symmetric=0.2"


def add_cli(sub: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--repeats", type=int, default=1)
    common.add_argument("--reports", default=str(SCENARIO_DIR.parent / "reports"), help="reports root")
    common.add_argument("--no-report", action="store_true")
    common.add_argument("--pcap", action="store_true", help="capture the internet segment of every session")
    mx = sub.add_parser("matrix", parents=[common], help="run the NAT x NAT matrix and write a report")
    mx.add_argument("--turn", choices=("udp", "tcp", "tls", "none"), default="udp")
    mx.add_argument("--kinds", default=",".join(NAT_KINDS), help="comma-separated NAT kinds")
    mx.set_defaults(func=cli_matrix)
    run = sub.add_parser("run", parents=[common], help="run the session of scenario TOML files")
    run.add_argument("files", nargs="+")
    run.set_defaults(func=cli_run)
    pop = sub.add_parser("population", parents=[common], help="run pairings drawn from a NAT mix")
    pop.add_argument("--size", type=int, default=20)
    pop.add_argument("--mix", default=DEFAULT_MIX, help=f"kind=weight,... (default {DEFAULT_MIX})")
    pop.add_argument("--seed", type=int, default=1)
    pop.add_argument("--turn", choices=("udp", "tcp", "tls", "none"), default="udp")
    pop.set_defaults(func=cli_population)


def _finish(scenarios: list[Scenario], args: argparse.Namespace) -> int:
    if args.repeats < 1:
        raise ValueError(f"--repeats: must be at least 1, got {args.repeats}")
    directory, failures = run_many(
        scenarios, args.repeats, Path(args.reports), report=not args.no_report, pcap=args.pcap
    )
    from netsim.results import store as results

    summary = results.summarize(results.load_records(directory))
    print(
        f"{summary['sessions']} sessions; relay needed in {summary['relay_needed_share']}, "
        f"relay won in {summary['relay_won_share']}; {failures} mismatch(es); results in {directory}"
    )
    return 1 if failures else 0


def cli_matrix(args: argparse.Namespace) -> int:
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    for k in kinds:
        if k not in NAT_KINDS:
            raise ValueError(f"--kinds: unknown NAT kind {k!r} (choose from {', '.join(NAT_KINDS)})")
    group = "matrix-noturn" if args.turn == "none" else "matrix-turn"
    scns = [s for s in matrix(args.turn, group) if s.nat_a in kinds and s.nat_b in kinds]
    return _finish(scns, args)


def cli_run(args: argparse.Namespace) -> int:
    return _finish([load_scenario_file(Path(f)) for f in args.files], args)


def cli_population(args: argparse.Namespace) -> int:
    return _finish(population(args.size, _parse_mix(args.mix), args.seed, args.turn), args)
