"""How far the estimate moves when an uncertain mix weight moves: the mix's uncertainty beside the repeats'.

The repeat interval (netsim.results.estimate) takes the mix as exact. But most shipped weights are
assumptions or figures read from secondary summaries, and one of them alone can move the answer more than
every repeat together (issue 17's trial: the mobile mix's symmetric share moved mobile x mobile from 18 % to
77 %, while the printed interval was 44.8-73.3 %). So every such weight (`KindWeight.uncertain`) is moved,
one at a time, across its range while the other kinds keep their proportions, and the lowest and highest
needs-a-relay share over that range are reported. The range is the mix file's `range` where it states one
(with its reason); otherwise half to double the weight's share, and the output says so.

A weight of a mix that calls itself moves on both sides of the call; with a callee mix, each side's weights
move alone. In a blend, each part's weights move within that part.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from netsim.suite.blend import blend
from netsim.suite.mixes import KindWeight, Mix, cell_weights

GRID: Final = 20  # steps across a range: the share is a ratio of quadratics in the weight, not monotone
DEFAULT_RANGE: Final = "no range in the mix file: half to double"

Cell = tuple[str, str]
Mixes = tuple[Mix, Mix | None]


@dataclass(frozen=True)
class Knob:
    """One uncertain weight and the range it is moved over."""

    mix: str  # the mix (or blend part) it belongs to
    kind: str
    mark: str  # assumed, or how its figure was checked (secondary)
    side: str  # both sides, callers or callees
    share: float  # its share now
    low: float
    high: float
    why: str  # where the range comes from
    apply: Callable[[float], Mixes]  # the mixes with this weight at a share


@dataclass(frozen=True)
class Moved:
    knob: Knob
    low: float  # the lowest needs-a-relay share over the range
    high: float
    at_low: float  # with the weight at its range's low end
    at_high: float


def _range(k: KindWeight) -> tuple[float, float, str]:
    if k.range is not None:
        low, high = k.range
        return min(low, k.share), max(high, k.share), k.range_note or "the mix file's range"
    return k.share / 2, min(1.0, 2 * k.share), DEFAULT_RANGE


def _in_mix(mix: Mix, kind: str) -> Callable[[float], Mix]:
    return lambda v: mix.with_share(kind, v)


def _in_part(mix: Mix, index: int, kind: str) -> Callable[[float], Mix]:
    def moved(v: float) -> Mix:
        return blend([(p.with_share(kind, v) if j == index else p, s) for j, (p, s) in enumerate(mix.parts)])

    return moved


def _moves(mix: Mix) -> list[tuple[str, KindWeight, Callable[[float], Mix]]]:
    """(owner, kind, share -> the mix with that kind at that share) for every uncertain weight; a kind
    that is the whole mix has nothing to trade with."""
    if not mix.parts:
        return [(mix.name, k, _in_mix(mix, k.kind)) for k in mix.kinds if 0 < k.share < 1 and k.uncertain]
    return [
        (part.name, k, _in_part(mix, i, k.kind))
        for i, (part, _) in enumerate(mix.parts)
        for k in part.kinds
        if 0 < k.share < 1 and k.uncertain
    ]


def knobs(mix_a: Mix, mix_b: Mix | None) -> list[Knob]:
    """Every uncertain weight of the callers' mix and the callees' (when it is another mix)."""
    sides: list[tuple[str, Mix, Callable[[Mix], Mixes]]] = []
    if mix_b is None:
        sides.append(("both sides", mix_a, lambda m: (m, None)))
    else:
        sides.append(("callers", mix_a, lambda m: (m, mix_b)))
        sides.append(("callees", mix_b, lambda m: (mix_a, m)))
    out = []
    for side, mix, place in sides:
        for owner, k, move in _moves(mix):
            low, high, why = _range(k)
            out.append(Knob(owner, k.kind, k.mark, side, k.share, low, high, why, _placed(place, move)))
    return out


def _placed(place: Callable[[Mix], Mixes], move: Callable[[float], Mix]) -> Callable[[float], Mixes]:
    return lambda v: place(move(v))


def point(mixes: Mixes, rates: Mapping[Cell, float]) -> float:
    """The needs-a-relay share for these mixes from the per-cell rates (cells with no weight need none)."""
    return sum(w * rates[cell] for cell, w in cell_weights(*mixes).items() if w > 0)


def sensitivity(mix_a: Mix, mix_b: Mix | None, rates: Mapping[Cell, float]) -> list[Moved]:
    """How far the needs-a-relay share moves with each uncertain weight, widest first."""
    out = []
    for knob in knobs(mix_a, mix_b):
        steps = [knob.low + (knob.high - knob.low) * i / GRID for i in range(GRID + 1)]
        values = [point(knob.apply(v), rates) for v in [*steps, knob.share]]
        out.append(Moved(knob, min(values), max(values), values[0], values[GRID]))
    return sorted(out, key=lambda m: (-(m.high - m.low), m.knob.mix, m.knob.kind))
