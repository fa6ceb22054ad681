"""How many calls need TURN: expected shares for a NAT mix from a measured matrix run, with 95 % intervals.

Every call falls in one matrix cell (caller's kind, callee's kind) with probability w = share_a * share_b
(netsim.suite.mixes.cell_weights). Each cell's probabilities come from the run's sessions of that cell:

- needs_relay: sessions whose relay-less run failed, of those where that is known;
- relay_won: sessions whose selected pair went through the relay (TURN offered);
- direct: sessions that connected without the relay (verdict direct or direct-host);
- failed: sessions that did not connect although TURN was offered.

The expected share is the weighted sum of the per-cell proportions. Its 95 % interval accounts for each cell's
repeat count: a Wilson score interval per cell, combined into an interval for the weighted sum by the MOVER
method (method of variance estimates recovery; Zou & Donner 2008, Newcombe): the distances from each cell's
estimate to its Wilson limits are weighted and added in quadrature. Unlike a percentile interval of a
simulation, it always contains the estimate, is deterministic, and never shrinks to a point for a cell that
agreed in all of its few repeats (5 of 5 leaves a true rate up to 43 % plausible). The mix weights themselves
are taken as exact there; how far the answer moves with each uncertain weight is reported beside it
(netsim.results.sensitivity).

A session counts for its (nat_a, nat_b) cell when its group is one of ESTIMATE_GROUPS (the matrix with TURN,
the UDP firewall, CGN-layered sites, and their `-ipv6` groups), TURN was offered, the ICE policy was `all`
and there was no glare. A cell's sides are endpoints (netsim.suite.mixes.endpoint): the NAT kind, with the
site's IP mode when it is not IPv4-only, read from the record's experiment. Beside the estimate for the mix as
given, `ipv4_only` is the same mix on an IPv4-only internet (every endpoint IP mode none), from the same run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from netsim.errors import InputError
from netsim.records import ResultRecord
from netsim.results import store, tables
from netsim.results.sensitivity import Moved, sensitivity
from netsim.suite.blend import spec
from netsim.suite.mixes import Mix, cell_weights, endpoint
from netsim.vocab import (
    AIORTC,
    DIRECT_VERDICTS,
    FAILED,
    IPV4_ONLY,
    IPV6_GROUP_SUFFIX,
    MATRIX_TURN,
    NO_TURN,
    RELAY,
)

ESTIMATE_GROUPS: Final = (MATRIX_TURN, "firewall", "double-nat")
NEEDED_KEYS: Final = ("nat_a", "nat_b", "verdict", "needs_relay", "turn", "policy", "glare")
Z95: Final = 1.959963984540054  # two-sided 95 %
DEFAULT_BITRATE_KBPS: Final = 1000.0  # per direction of a call; an assumption the output states
CALLS: Final = 1000  # capacity is given per this many concurrent calls
METHOD: Final = "per-cell Wilson 95 % intervals combined by MOVER (Zou & Donner 2008)"
# What no estimate here measures, said with every estimate.
LEAVES_OUT: Final = (
    "IPv6-only endpoints without a CLAT (IP mode `only`, reaching IPv4 through DNS64 and NAT64): not "
    "buildable yet, so no mix gives them a share",
    "NAT66 (IPv6 translated by the home router): every IPv6 site here has a firewall and no translation",
    "stacks other than the ones sized with: each stack gathers and nominates its own way",
    "calls within one NAT (hairpinning) and on one LAN",
    "networks that also block TURN over TCP and TLS on port 443",
)

Cell = tuple[str, str]


class EstimateError(InputError):
    """A run that cannot give the estimate (a missing cell, records without the needed keys)."""


@dataclass(frozen=True)
class Interval:
    share: float
    low: float
    high: float

    def scaled(self, factor: float) -> Interval:
        return Interval(self.share * factor, self.low * factor, self.high * factor)

    def as_dict(self, digits: int = 4) -> dict[str, float]:
        return {
            k: round(v, digits) for k, v in (("share", self.share), ("low", self.low), ("high", self.high))
        }


@dataclass(frozen=True)
class CellCounts:
    """One cell's sessions: how many, how many with needs_relay known, and the counts of each outcome."""

    sessions: int = 0
    known: int = 0
    needs_relay: int = 0
    relay_won: int = 0
    direct: int = 0
    relay_paths: int = 0  # relayed paths over the relay-won sessions (2 when both sides relay)
    failed: int = 0  # no connection although TURN was offered

    def add(self, record: ResultRecord) -> CellCounts:
        needs, verdict = record.get("needs_relay"), record.get("verdict")
        relayed = verdict == RELAY
        return CellCounts(
            self.sessions + 1,
            self.known + (needs is not None),
            self.needs_relay + (needs is True),
            self.relay_won + relayed,
            self.direct + (verdict in DIRECT_VERDICTS),
            self.relay_paths + (relayed and (2 if record.get("relay_side") == "both" else 1)),
            self.failed + (verdict == FAILED),
        )


@dataclass(frozen=True)
class Capacity:
    """What the relay-won share means for a TURN deployment, per CALLS concurrent calls."""

    calls: int
    bitrate_kbps: float
    relayed_calls: Interval
    allocations: Interval  # allocations carrying media (one per relayed side)
    relay_mbps: Interval  # media into the relay, equal to media out of it


@dataclass(frozen=True)
class Estimate:
    mix: Mix
    mix_b: Mix | None
    run: str
    cells: dict[Cell, tuple[float, CellCounts]]  # cell -> (weight, counts)
    needs_relay: Interval
    relay_won: Interval
    direct: Interval
    failed: Interval  # calls that did not connect even with TURN offered
    capacity: Capacity
    peers: tuple[str, str] = (AIORTC, AIORTC)  # the stacks sized with
    moved: tuple[Moved, ...] = ()  # needs_relay as each uncertain weight moves (widest first)
    inconclusive: int = 0  # sessions left out: load made their answers inconclusive (docs/load.md)
    ipv4_only: Interval | None = None  # needs_relay for the mix on an IPv4-only internet (None: not asked)


# --- intervals ---


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of k successes in n trials."""
    if n < 1:
        raise ValueError("no trials")
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def weighted_share(terms: Sequence[tuple[float, int, int]], z: float = Z95) -> Interval:
    """Sum of w * k/n over (w, k, n) terms with a MOVER interval built from each term's Wilson interval."""
    share = down = up = 0.0
    for w, k, n in terms:
        p = k / n
        lo, hi = wilson(k, n, z)
        share += w * p
        down += (w * (p - lo)) ** 2
        up += (w * (hi - p)) ** 2
    return Interval(share, max(0.0, share - math.sqrt(down)), min(1.0, share + math.sqrt(up)))


# --- cells ---


def stacks(record: ResultRecord) -> tuple[str, str]:
    """The (a, b) WebRTC stacks of a session; records before stacks existed are aiortc's."""
    sides = [record.get("a"), record.get("b")]
    return tuple(str((s or {}).get("peer") or AIORTC) for s in sides)  # type: ignore[return-value]


def _cell_group(record: ResultRecord) -> bool:
    """Whether the record's group measures cells (the matrix with TURN of any stack pairing, the estimate
    groups, and the `-ipv6` groups of their cells with IPv6 on a side)."""
    group = str(record.get("group")).removesuffix(IPV6_GROUP_SUFFIX)
    return group in ESTIMATE_GROUPS or group.startswith(MATRIX_TURN)


def side_modes(record: ResultRecord) -> tuple[str, str]:
    """The IP modes of hosts a and b: their sites' in the record's experiment (none when not said)."""
    experiment: Mapping[str, Any] = record.get("experiment") or {}
    topo: Mapping[str, Any] = experiment.get("topology") or {}
    modes = {
        h: str(site.get("ipv6", IPV4_ONLY)) for site in topo.get("site", []) for h in site.get("hosts", [])
    }
    return modes.get("a", IPV4_ONLY), modes.get("b", IPV4_ONLY)


def record_cell(record: ResultRecord) -> Cell:
    """The (endpoint a, endpoint b) cell a session measures."""
    mode_a, mode_b = side_modes(record)
    return endpoint(str(record.get("nat_a")), mode_a), endpoint(str(record.get("nat_b")), mode_b)


def _counts_for_cell(record: ResultRecord, peers: tuple[str, str] = (AIORTC, AIORTC)) -> bool:
    return (
        _cell_group(record)
        and stacks(record) == peers
        and record.get("turn") != NO_TURN
        and record.get("policy") == "all"
        and record.get("glare") is False
    )


def cell_counts(
    records: Sequence[ResultRecord], where: str, peers: tuple[str, str] = (AIORTC, AIORTC)
) -> dict[Cell, CellCounts]:
    """Counts per (nat_a, nat_b) cell of the sessions of one stack pairing that measure a cell; `where`
    names the file."""
    return counts_by_stacks(records, where).get(peers, {})


def counts_by_stacks(
    records: Sequence[ResultRecord], where: str
) -> dict[tuple[str, str], dict[Cell, CellCounts]]:
    """cell_counts of every stack pairing the run holds."""
    out: dict[tuple[str, str], dict[Cell, CellCounts]] = {}
    for i, r in enumerate(records, 1):
        if "group" not in r:
            raise EstimateError(f"{where}: record {i} has no 'group' key (not a suite run's record)")
        if not _needs_keys(r, i, where, stacks(r)):
            continue
        cells = out.setdefault(stacks(r), {})
        cell = record_cell(r)
        cells[cell] = cells.get(cell, CellCounts()).add(r)
    return out


def _needs_keys(record: ResultRecord, index: int, where: str, peers: tuple[str, str]) -> bool:
    """Whether a record counts for a cell; raises when a record of a cell group lacks a needed key."""
    if not _cell_group(record):
        return False
    missing = [key for key in NEEDED_KEYS if key not in record]
    if missing:
        scenario = record.get("scenario") or "?"
        raise EstimateError(f"{where}: record {index} ({scenario}) has no {missing[0]!r} key")
    return _counts_for_cell(record, peers)


def _check_cells(
    weights: dict[Cell, float],
    cells: dict[Cell, CellCounts],
    mixes: tuple[Mix, Mix | None],
    where: str,
    peers: tuple[str, str],
    others: dict[tuple[str, str], dict[Cell, CellCounts]],
) -> None:
    mix, mix_b = mixes
    missing = [c for c in weights if c not in cells]
    named = repr(mix.name) + (f" calling {mix_b.name!r}" if mix_b else "")
    if missing:
        names = ", ".join(f"{a} x {b}" for a, b in missing[:3]) + (" ..." if len(missing) > 3 else "")
        complete = [p for p, c in others.items() if p != peers and all(cell in c for cell in weights)]
        if complete:
            use = " or ".join(f"--peers {','.join(p)}" for p in complete)
            raise EstimateError(
                f"{where}: has no {' x '.join(peers)} sessions for {len(missing)} cell(s) mix {named} needs "
                f"({names}), but has every cell for other stacks: use {use}"
            )
        rerun = f"netsim matrix --mix {spec(mix)}" + (f" --mix-b {spec(mix_b)}" if mix_b else "")
        if peers != (AIORTC, AIORTC):
            rerun += f" --peers {','.join(peers)}"
        raise EstimateError(
            f"{where}: lacks {len(missing)} cell(s) mix {named} needs: {names} (run `{rerun}`)"
        )
    unknown = [c for c in weights if cells[c].known == 0]
    if unknown:
        a, b = unknown[0]
        raise EstimateError(f"{where}: cell {a} x {b} has no session with a known needs_relay")


def _check_repeats(weights: dict[Cell, float], cells: dict[Cell, CellCounts], where: str, least: int) -> None:
    few = [c for c in weights if cells[c].sessions < least]
    if few:
        a, b = few[0]
        raise EstimateError(
            f"{where}: cell {a} x {b} has {cells[few[0]].sessions} session(s), fewer than --min-repeats "
            f"{least} ({len(few)} such cell(s); run the mix's cells with --repeats {least})"
        )


# --- the estimate ---


def estimate(
    run_dir: Path | str,
    mix: Mix,
    mix_b: Mix | None = None,
    bitrate_kbps: float = DEFAULT_BITRATE_KBPS,
    peers: tuple[str, str] = (AIORTC, AIORTC),
    min_repeats: int = 1,
) -> Estimate:
    """The estimate for calls from `mix` to `mix_b` (default: `mix` again) from a matrix run directory."""
    path = Path(run_dir)
    if not path.is_dir():
        raise EstimateError(f"{path}: run directory not found")
    records = store.load_records(path)
    where = str(path / store.RESULTS_FILE)
    return estimate_records(records, mix, mix_b, where, bitrate_kbps, peers, min_repeats)


def estimate_records(
    records: Sequence[ResultRecord],
    mix: Mix,
    mix_b: Mix | None = None,
    where: str = store.RESULTS_FILE,
    bitrate_kbps: float = DEFAULT_BITRATE_KBPS,
    peers: tuple[str, str] = (AIORTC, AIORTC),
    min_repeats: int = 1,
) -> Estimate:
    if not bitrate_kbps > 0:
        raise EstimateError(f"bitrate: must be greater than 0 kbit/s, got {bitrate_kbps}")
    weights = cell_weights(mix, mix_b)
    v4_mixes = (mix.ipv4_only(), mix_b.ipv4_only() if mix_b else None)
    v4_weights = cell_weights(*v4_mixes)
    left_out = sum(not tables.counted(r) for r in records)
    by_stacks = counts_by_stacks([r for r in records if tables.counted(r)], where)
    counts = by_stacks.get(peers, {})
    _check_cells({**weights, **v4_weights}, counts, (mix, mix_b), where, peers, by_stacks)
    _check_repeats({**weights, **v4_weights}, counts, where, min_repeats)
    v4 = [(w, counts[c]) for c, w in v4_weights.items()]
    used = {c: (w, counts[c]) for c, w in weights.items()}
    relay_won = weighted_share([(w, n.relay_won, n.sessions) for w, n in used.values()])
    rates = {c: n.needs_relay / n.known for c, (_, n) in used.items()}
    return Estimate(
        mix=mix,
        mix_b=mix_b,
        run=str(Path(where).parent),
        cells=used,
        needs_relay=weighted_share([(w, n.needs_relay, n.known) for w, n in used.values()]),
        relay_won=relay_won,
        direct=weighted_share([(w, n.direct, n.sessions) for w, n in used.values()]),
        failed=weighted_share([(w, n.failed, n.sessions) for w, n in used.values()]),
        capacity=capacity(relay_won, used.values(), bitrate_kbps),
        peers=peers,
        moved=tuple(sensitivity(mix, mix_b, rates)),
        inconclusive=left_out,
        ipv4_only=weighted_share([(w, n.needs_relay, n.known) for w, n in v4]),
    )


def capacity(relay_won: Interval, cells: Iterable[tuple[float, CellCounts]], bitrate_kbps: float) -> Capacity:
    """Relayed calls, allocations and relay throughput per CALLS concurrent calls.

    A relayed path carries both directions of the call into the relay and out again, so the relay's
    ingress (equal to its egress) is 2 x bitrate per path; a call where both sides relay has two paths.
    """
    cells = list(cells)
    paths = sum(w * n.relay_paths / n.sessions for w, n in cells)
    relayed = sum(w * n.relay_won / n.sessions for w, n in cells)
    per_call = paths / relayed if relayed > 0 else 1.0  # mean relayed paths of a relayed call
    calls = relay_won.scaled(CALLS)
    allocations = calls.scaled(per_call)
    return Capacity(CALLS, bitrate_kbps, calls, allocations, allocations.scaled(2 * bitrate_kbps / 1000))
