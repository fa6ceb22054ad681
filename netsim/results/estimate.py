"""How many calls need TURN: expected shares for a NAT mix from a measured matrix run, with 95 % intervals.

Every call falls in one matrix cell (caller's kind, callee's kind) with probability w = share_a * share_b
(netsim.suite.mixes.cell_weights). Each cell's probabilities come from the run's sessions of that cell:

- needs_relay: sessions whose relay-less run failed, of those where that is known;
- relay_won: sessions whose selected pair went through the relay (TURN offered);
- direct: sessions that connected without the relay (verdict direct or direct-host).

The expected share is the weighted sum of the per-cell proportions. Its 95 % interval accounts for each cell's
repeat count: a Wilson score interval per cell, combined into an interval for the weighted sum by the MOVER
method (method of variance estimates recovery; Zou & Donner 2008, Newcombe): the distances from each cell's
estimate to its Wilson limits are weighted and added in quadrature. Unlike a percentile interval of a
simulation, it always contains the estimate, is deterministic, and never shrinks to a point for a cell that
agreed in all of its few repeats (5 of 5 leaves a true rate up to 43 % plausible). The mix weights themselves
are taken as exact: their uncertainty is the mix file's, stated there.

A session counts for its (nat_a, nat_b) cell when its group is one of ESTIMATE_GROUPS (the matrix with TURN,
the UDP firewall, CGN-layered sites), TURN was offered, the ICE policy was `all` and there was no glare.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from netsim.records import ResultRecord
from netsim.results import store
from netsim.suite.mixes import Mix, cell_weights
from netsim.vocab import AIORTC, DIRECT_VERDICTS, MATRIX_TURN, NO_TURN

ESTIMATE_GROUPS: Final = (MATRIX_TURN, "firewall", "double-nat")
NEEDED_KEYS: Final = ("nat_a", "nat_b", "verdict", "needs_relay", "turn", "policy", "glare")
Z95: Final = 1.959963984540054  # two-sided 95 %
DEFAULT_BITRATE_KBPS: Final = 1000.0  # per direction of a call; an assumption the output states
CALLS: Final = 1000  # capacity is given per this many concurrent calls
METHOD: Final = "per-cell Wilson 95 % intervals combined by MOVER (Zou & Donner 2008)"

Cell = tuple[str, str]


class EstimateError(ValueError):
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

    def add(self, record: ResultRecord) -> CellCounts:
        needs, verdict = record.get("needs_relay"), record.get("verdict")
        relayed = verdict == "relay"
        return CellCounts(
            self.sessions + 1,
            self.known + (needs is not None),
            self.needs_relay + (needs is True),
            self.relay_won + relayed,
            self.direct + (verdict in DIRECT_VERDICTS),
            self.relay_paths + (relayed and (2 if record.get("relay_side") == "both" else 1)),
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
    capacity: Capacity


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


def _counts_for_cell(record: ResultRecord, peers: tuple[str, str] = (AIORTC, AIORTC)) -> bool:
    group = str(record.get("group"))
    return (
        (group in ESTIMATE_GROUPS or group.startswith(MATRIX_TURN))  # matrix-turn of any stack pairing
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
    cells: dict[Cell, CellCounts] = {}
    for i, r in enumerate(records, 1):
        if "group" not in r:
            raise EstimateError(f"{where}: record {i} has no 'group' key (not a suite run's record)")
        if not _needs_keys(r, i, where, peers):
            continue
        cell = (str(r.get("nat_a")), str(r.get("nat_b")))
        cells[cell] = cells.get(cell, CellCounts()).add(r)
    return cells


def _needs_keys(record: ResultRecord, index: int, where: str, peers: tuple[str, str]) -> bool:
    """Whether a record counts for a cell; raises when a record of a cell group lacks a needed key."""
    group = str(record.get("group"))
    if group not in ESTIMATE_GROUPS and not group.startswith(MATRIX_TURN):
        return False
    missing = [key for key in NEEDED_KEYS if key not in record]
    if missing:
        scenario = record.get("scenario") or "?"
        raise EstimateError(f"{where}: record {index} ({scenario}) has no {missing[0]!r} key")
    return _counts_for_cell(record, peers)


def _check_cells(
    weights: dict[Cell, float], cells: dict[Cell, CellCounts], mix: Mix, mix_b: Mix | None, where: str
) -> None:
    missing = [c for c in weights if c not in cells]
    mixes = repr(mix.name) + (f" calling {mix_b.name!r}" if mix_b else "")
    if missing:
        names = ", ".join(f"{a} x {b}" for a, b in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise EstimateError(
            f"{where}: lacks {len(missing)} cell(s) mix {mixes} needs: {names} "
            f"(run `netsim matrix --mix {mix.path}`)"
        )
    unknown = [c for c in weights if cells[c].known == 0]
    if unknown:
        a, b = unknown[0]
        raise EstimateError(f"{where}: cell {a} x {b} has no session with a known needs_relay")


# --- the estimate ---


def estimate(
    run_dir: Path | str,
    mix: Mix,
    mix_b: Mix | None = None,
    bitrate_kbps: float = DEFAULT_BITRATE_KBPS,
    peers: tuple[str, str] = (AIORTC, AIORTC),
) -> Estimate:
    """The estimate for calls from `mix` to `mix_b` (default: `mix` again) from a matrix run directory."""
    path = Path(run_dir)
    if not path.is_dir():
        raise EstimateError(f"{path}: run directory not found")
    records = store.load_records(path)
    return estimate_records(records, mix, mix_b, str(path / store.RESULTS_FILE), bitrate_kbps, peers)


def estimate_records(
    records: Sequence[ResultRecord],
    mix: Mix,
    mix_b: Mix | None = None,
    where: str = store.RESULTS_FILE,
    bitrate_kbps: float = DEFAULT_BITRATE_KBPS,
    peers: tuple[str, str] = (AIORTC, AIORTC),
) -> Estimate:
    if not bitrate_kbps > 0:
        raise EstimateError(f"bitrate: must be greater than 0 kbit/s, got {bitrate_kbps}")
    weights = cell_weights(mix, mix_b)
    counts = cell_counts(records, where, peers)
    _check_cells(weights, counts, mix, mix_b, where)
    used = {c: (w, counts[c]) for c, w in weights.items()}
    relay_won = weighted_share([(w, n.relay_won, n.sessions) for w, n in used.values()])
    return Estimate(
        mix=mix,
        mix_b=mix_b,
        run=str(Path(where).parent),
        cells=used,
        needs_relay=weighted_share([(w, n.needs_relay, n.known) for w, n in used.values()]),
        relay_won=relay_won,
        direct=weighted_share([(w, n.direct, n.sessions) for w, n in used.values()]),
        capacity=capacity(relay_won, used.values(), bitrate_kbps),
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


# --- output ---


def as_json(est: Estimate) -> dict[str, Any]:
    """The `netsim estimate --json` object."""
    cap = est.capacity
    return {
        "mix": est.mix.name,
        "source": est.mix.source,
        "mix_b": est.mix_b.name if est.mix_b else None,
        "source_b": est.mix_b.source if est.mix_b else None,
        "needs_relay": est.needs_relay.as_dict(),
        "relay_won": est.relay_won.as_dict(),
        "direct": est.direct.as_dict(),
        "capacity": {
            "calls": cap.calls,
            "bitrate_kbps": cap.bitrate_kbps,
            "relayed_calls": cap.relayed_calls.as_dict(1),
            "allocations": cap.allocations.as_dict(1),
            "relay_mbps": cap.relay_mbps.as_dict(1),
        },
        "run": est.run,
        "method": METHOD,
        "assumptions": {"a": est.mix.assumptions, "b": est.mix_b.assumptions if est.mix_b else None},
        "cells": [
            {
                "nat_a": a,
                "nat_b": b,
                "weight": round(w, 6),
                "sessions": n.sessions,
                "needs_relay": n.needs_relay,
                "needs_relay_known": n.known,
                "relay_won": n.relay_won,
                "direct": n.direct,
            }
            for (a, b), (w, n) in est.cells.items()
        ],
    }


def _pct(iv: Interval) -> tuple[str, str]:
    return f"{100 * iv.share:.1f} %", f"{100 * iv.low:.1f} % - {100 * iv.high:.1f} %"


def _count(iv: Interval, unit: str = "") -> str:
    return f"{iv.share:,.0f}{unit} ({iv.low:,.0f} - {iv.high:,.0f})"


def format_table(est: Estimate) -> str:
    """The estimate for the terminal: the three shares with intervals, then relay capacity."""
    sessions = [n.sessions for _, n in est.cells.values()]
    callee = f"{est.mix_b.name!r}" if est.mix_b else "the same mix"
    rows = [
        ("calls that need a relay", *_pct(est.needs_relay)),
        ("calls where a relay won", *_pct(est.relay_won)),
        ("calls connected without TURN", *_pct(est.direct)),
    ]
    width = max(len(r[0]) for r in rows)
    cap = est.capacity
    lines = [
        f"mix {est.mix.name!r} calling {callee}; run {est.run}",
        f"{len(est.cells)} cells, {sum(sessions)} sessions ({min(sessions)}-{max(sessions)} per cell)",
        "",
        f"{'':{width}}  {'share':>7}  95 % interval",
        *(f"{name:{width}}  {share:>7}  {interval}" for name, share, interval in rows),
        "",
        f"per {cap.calls:,} concurrent calls at {cap.bitrate_kbps:g} kbit/s each way (an assumption; "
        "--bitrate-kbps):",
        f"  relayed calls {_count(cap.relayed_calls)}, TURN allocations carrying media "
        f"{_count(cap.allocations)}",
        f"  relay traffic {_count(cap.relay_mbps, ' Mbit/s')} in, the same out",
    ]
    if est.mix.assumptions or (est.mix_b and est.mix_b.assumptions):
        lines.append("assumed weights (see the mix files): " + _assumed(est))
    return "\n".join(lines)


def _assumed(est: Estimate) -> str:
    parts = [f"{est.mix.name}: {', '.join(est.mix.assumptions)}"] if est.mix.assumptions else []
    if est.mix_b and est.mix_b.assumptions:
        parts.append(f"{est.mix_b.name}: {', '.join(est.mix_b.assumptions)}")
    return "; ".join(parts)
