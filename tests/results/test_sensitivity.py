"""netsim.results.sensitivity: how far the estimate moves with each uncertain weight (no root)."""

from __future__ import annotations

import pytest

from netsim.results.sensitivity import DEFAULT_RANGE, knobs, point, sensitivity
from netsim.suite.blend import resolve
from netsim.suite.mixes import cells_needed, mix_from_dict
from tests.results.report_fixtures import truth_needs_relay


def _textbook(*mixes: object) -> dict[tuple[str, str], float]:
    return {(a, b): float(truth_needs_relay(a, b)) for a, b in cells_needed(*mixes)}  # type: ignore[arg-type]


def test_the_mobile_symmetric_share_alone_moves_mobile_x_mobile_from_a_fifth_to_three_quarters() -> None:
    """Issue 17's trial: 18 % to 77 % by the symmetric share alone, while the repeat interval printed was
    44.8-73.3 %."""
    mobile = resolve("mobile").ipv4_only()  # issue 17's IPv4-only internet
    rates = _textbook(mobile)
    assert point((mobile, None), rates) == pytest.approx(0.60)
    moved = {m.knob.kind: m for m in sensitivity(mobile, None, rates)}
    sym = moved["symmetric"]
    assert (sym.knob.low, sym.knob.high, sym.knob.side, sym.knob.mark) == (
        0.11,
        0.58,
        "both sides",
        "secondary",
    )
    assert sym.low == pytest.approx(0.192, abs=1e-3) and sym.high == pytest.approx(0.783, abs=1e-3)
    assert sym.at_low == sym.low and "Wang" in sym.knob.why
    assert list(moved)[0] == "symmetric"  # widest first
    assert moved["open"].knob.mark == "assumed"


def test_trusted_figures_stay_put_and_unstated_ranges_are_half_to_double() -> None:
    mix = mix_from_dict(
        {
            "source": "s",
            "kinds": {
                "open": {"weight": 1, "from": "x", "checked": "primary"},
                "symmetric": {"weight": 1, "assumption": "y"},
                "full-cone": {"weight": 2, "from": "z"},  # not said how it was read: secondary
            },
        },
        "m.toml",
    )
    found = {k.kind: k for k in knobs(mix, None)}
    assert set(found) == {"symmetric", "full-cone"}
    assert (found["symmetric"].low, found["symmetric"].high, found["symmetric"].why) == (
        0.125,
        0.5,
        DEFAULT_RANGE,
    )


def test_a_callee_mix_moves_on_its_own_side_and_blend_parts_within_their_part() -> None:
    mobile, illustrative = resolve("mobile"), resolve("illustrative")
    sides = {(k.mix, k.side) for k in knobs(mobile, illustrative)}
    assert ("mobile", "callers") in sides and ("illustrative", "callees") in sides
    blended = resolve("mobile=0.5,illustrative=0.5")
    rates = _textbook(blended)
    moved = sensitivity(blended, None, rates)
    assert {m.knob.mix for m in moved} == {"mobile", "illustrative"}
    for m in moved:
        assert (
            m.low <= point((blended, None), rates) + 1e-9 and m.high >= point((blended, None), rates) - 1e-9
        )
