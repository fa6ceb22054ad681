"""How far the estimate moves when an uncertain mix weight moves: the mix's uncertainty beside the repeats'.

The repeat interval (netsim.results.estimate) takes the mix as exact. But most shipped weights are
assumptions or figures read from secondary summaries, and one of them alone can move the answer more than
every repeat together (issue 17's trial: the mobile mix's symmetric share moved mobile x mobile from 18 % to
77 %, while the printed interval was 44.8-73.3 %). So every such weight (`KindWeight.uncertain`) is moved,
one at a time, across its range while the other kinds keep their proportions, and the lowest and highest
needs-a-relay share over that range are reported. The range is the mix file's `range` where it states one
(with its reason); otherwise half to double the weight's share, and the output says so.

A mix with IP-mode shares has one more knob, its share of endpoints with IPv6 (dual or clat), moved across
the range its `[ip]` table states (else half to double) with every kind's IPv6 modes scaled alike.

A weight of a mix that calls itself moves on both sides of the call; with a callee mix, each side's weights
move alone. In a blend, each part's weights move within that part.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from netsim.suite.blend import blend
from netsim.suite.mixes import ASSUMPTION, FROM, KindWeight, Mix, cell_weights

IPV6_KNOB: Final = "endpoints with IPv6"
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


def _ipv6_knob(mix: Mix) -> KindWeight | None:
    """The mix's IPv6 share as a pseudo-weight to move, when its IP-mode split is uncertain."""
    splits = [k.ip for k in mix.kinds if k.share > 0]
    share = mix.ipv6_share
    if not 0 < share < 1 or not any(ip.uncertain for ip in splits):
        return None
    ranged = next((ip for ip in splits if ip.range is not None), None)
    basis = ASSUMPTION if any(ip.basis == ASSUMPTION for ip in splits) else FROM
    text = "; ".join(dict.fromkeys(ip.text for ip in splits))
    low_high, note = (ranged.range, ranged.range_note) if ranged else (None, None)
    return KindWeight(IPV6_KNOB, share, share, basis, text, None, low_high, note)


def _ipv6_in(mix: Mix, index: int | None) -> Callable[[float], Mix]:
    if index is None:
        return mix.with_ipv6_share
    return lambda v: blend(
        [(p.with_ipv6_share(v) if j == index else p, s) for j, (p, s) in enumerate(mix.parts)]
    )


def _moves(mix: Mix) -> list[tuple[str, KindWeight, Callable[[float], Mix]]]:
    """(owner, kind, share -> the mix with that kind at that share) for every uncertain weight (and the
    IPv6 share); a kind that is the whole mix has nothing to trade with."""
    owners = [(mix, None)] if not mix.parts else [(p, i) for i, (p, _) in enumerate(mix.parts)]
    out: list[tuple[str, KindWeight, Callable[[float], Mix]]] = []
    for part, i in owners:
        for k in part.kinds:
            if 0 < k.share < 1 and k.uncertain:
                out.append((part.name, k, _in_mix(mix, k.kind) if i is None else _in_part(mix, i, k.kind)))
        knob = _ipv6_knob(part)
        if knob is not None:
            out.append((part.name, knob, _ipv6_in(mix, i)))
    return out


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
