"""netsim.suite.blend: mixes by name, blends that keep their parts (no root)."""

from __future__ import annotations

import pytest

from netsim.suite.blend import SHIPPED_DIR, blend, resolve, shipped, spec
from netsim.suite.mixes import ASSUMPTION, FROM, MixFileError, load_mix


def test_shipped_mixes_are_named() -> None:
    assert {"residential", "mobile", "enterprise", "illustrative"} <= set(shipped())
    mix = resolve("mobile")
    assert mix.name == "mobile" and mix.path == str(SHIPPED_DIR / "mobile.toml") and spec(mix) == "mobile"
    assert resolve(str(SHIPPED_DIR / "mobile.toml")).shares == mix.shares


def test_half_mobile_half_residential_keeps_its_provenance() -> None:
    mobile, residential = load_mix(SHIPPED_DIR / "mobile.toml"), load_mix(SHIPPED_DIR / "residential.toml")
    mix = resolve("mobile=0.5,residential=0.5")
    assert mix.name == "0.5 mobile + 0.5 residential" and [(m.name, s) for m, s in mix.parts] == [
        ("mobile", 0.5),
        ("residential", 0.5),
    ]
    assert sum(mix.shares.values()) == pytest.approx(1.0)
    assert mix.shares["symmetric"] == pytest.approx(
        0.5 * mobile.shares["symmetric"] + 0.5 * residential.shares["symmetric"]
    )
    assert mix.shares["udp-blocked"] == pytest.approx(0.5 * residential.shares["udp-blocked"])
    sources = list(mix.source)
    assert any(s.startswith("mobile: Richter") for s in sources) and any(
        s.startswith("residential: Halkes") for s in sources
    )
    assert "mobile: " in str(mix.note) and "residential: " in str(mix.note)
    kinds = {k.kind: k for k in mix.kinds}
    assert kinds["symmetric"].basis == FROM and "mobile (secondary): " in kinds["symmetric"].text
    assert kinds["open"].basis == ASSUMPTION  # assumed in either part: assumed in the blend
    assert resolve(spec(mix)).shares == pytest.approx(mix.shares)  # the spec reads back


def test_with_share_keeps_the_other_kinds_proportions() -> None:
    mobile = resolve("mobile")
    moved = mobile.with_share("symmetric", 0.1)
    assert moved.shares["symmetric"] == pytest.approx(0.1) and sum(moved.shares.values()) == pytest.approx(1)
    ratio = mobile.shares["open"] / mobile.shares["port-restricted-cone"]
    assert moved.shares["open"] / moved.shares["port-restricted-cone"] == pytest.approx(ratio)
    with pytest.raises(ValueError):
        resolve("mobile=1,residential=1").with_share("open", 0.1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "nope",
            "no mix file or shipped mix named 'nope' (shipped: enterprise, illustrative, mobile, residential",
        ),
        ("mobile=x", "--mix: bad share in 'mobile=x'"),
        ("mobile=-1,residential=1", "share of 'mobile' must be a number >= 0"),
        ("mobile=0,residential=0", "the blend's shares must add up to a positive number"),
        ("symmetric=1,mobile=1", "'symmetric' is a NAT kind; a blend names mixes"),
        ("missing.toml", "missing.toml: mix file not found"),
    ],
)
def test_bad_names_and_blends(text: str, message: str) -> None:
    with pytest.raises(MixFileError) as info:
        resolve(text)
    assert message in str(info.value)


def test_blends_of_blends_are_refused() -> None:
    inner = resolve("mobile=1,residential=1")
    with pytest.raises(MixFileError, match="a blend of blends"):
        blend([(inner, 1.0), (resolve("mobile"), 1.0)])
