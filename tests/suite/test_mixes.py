"""netsim.suite.mixes: the shipped mix files, validation errors, layered kinds, the cells a mix needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from netsim.suite.mixes import (
    ASSUMPTION,
    MixError,
    MixFileError,
    cell_weights,
    cells_needed,
    layered,
    load_mix,
    mix_from_dict,
    split_kind,
)
from netsim.vocab import NAT_KINDS, UDP_BLOCKED

MIXES = Path(__file__).resolve().parents[2] / "mixes"
SHIPPED = sorted(MIXES.glob("*.toml"))


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "m.toml"
    path.write_text(text)
    return path


def test_the_four_mixes_are_shipped() -> None:
    assert {p.stem for p in SHIPPED} >= {"residential", "mobile", "enterprise", "illustrative"}


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_mixes_load_and_name_their_sources(path: Path) -> None:
    mix = load_mix(path)
    assert mix.name == path.stem
    assert sum(mix.shares.values()) == pytest.approx(1.0)
    sources = [mix.source] if isinstance(mix.source, str) else mix.source
    assert sources and all(len(s) > 10 for s in sources)
    for k in mix.kinds:  # every weight says where it comes from
        assert k.text and k.basis in ("from", ASSUMPTION)


def test_illustrative_is_the_old_default_and_all_invented() -> None:
    mix = load_mix(MIXES / "illustrative.toml")
    assert {k: round(v, 6) for k, v in mix.shares.items()} == {
        "open": 0.05,
        "full-cone": 0.15,
        "restricted-cone": 0.15,
        "port-restricted-cone": 0.45,
        "symmetric": 0.2,
    }
    assert set(mix.assumptions) == set(NAT_KINDS) and "invented" in str(mix.source)


def test_residential_layers_cgns_and_enterprise_blocks_udp() -> None:
    res = load_mix(MIXES / "residential.toml")
    assert layered("port-restricted-cone", "symmetric") in res.shares and UDP_BLOCKED in res.shares
    assert (
        load_mix(MIXES / "enterprise.toml").assumptions.keys()
        == load_mix(MIXES / "enterprise.toml").shares.keys()
    )


def test_layered_kinds() -> None:
    assert split_kind("symmetric") == ("symmetric", None)
    assert split_kind(UDP_BLOCKED) == (UDP_BLOCKED, None)
    assert split_kind("full-cone+cgn-symmetric") == ("full-cone", "symmetric")
    for bad in ("open+cgn-symmetric", "full-cone+cgn-open", "udp-blocked+cgn-symmetric", "cone"):
        with pytest.raises(ValueError, match="unknown"):
            split_kind(bad)


def test_cells_needed_and_weights() -> None:
    mix = mix_from_dict(
        {
            "source": "s",
            "kinds": {
                "symmetric": {"weight": 3, "from": "x"},
                "open": {"weight": 1, "from": "x"},
                "full-cone": {"weight": 0, "assumption": "none seen"},
            },
        },
        "m.toml",
    )
    assert list(mix.shares) == ["open", "symmetric"]  # display order, zero weights left out
    assert cells_needed(mix) == [
        ("open", "open"),
        ("open", "symmetric"),
        ("symmetric", "open"),
        ("symmetric", "symmetric"),
    ]
    weights = cell_weights(mix)
    assert weights[("open", "symmetric")] == pytest.approx(0.1875) and sum(weights.values()) == pytest.approx(
        1
    )
    assert mix.name == "mix" and mix.assumptions == {"full-cone": "none seen"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[kinds.open]\nweight = 1\nfrom = 'x'\n", "source: expected a non-empty string or list"),
        ("source = 's'\n", "kinds: expected a table of NAT kinds"),
        ("source = 's'\n[kinds.cone]\nweight = 1\nfrom = 'x'\n", "kinds.'cone': unknown NAT kind 'cone'"),
        (
            "source = 's'\n[kinds.open]\nweight = 0\nfrom = 'x'\n",
            "the weights must add up to a positive number, got 0",
        ),
        (
            "source = 's'\n[kinds.open]\nweight = -1\nfrom = 'x'\n",
            "kinds.'open'.weight: must not be negative",
        ),
        ("source = 's'\n[kinds.open]\nweight = 'a'\nfrom = 'x'\n", "kinds.'open'.weight: expected a number"),
        ("source = 's'\n[kinds.open]\nweight = 1\n", "give exactly one of 'from'"),
        ("source = 's'\n[kinds.open]\nweight = 1\nfrom = 'x'\nassumption = 'y'\n", "give exactly one of"),
        (
            "source = 's'\n[kinds.open]\nweight = 1\nfrom = ''\n",
            "kinds.'open'.from: expected a non-empty string",
        ),
        ("source = 's'\n[kinds.open]\nweigth = 1\nfrom = 'x'\n", "unknown key 'weigth'"),
        ("source = 's'\nsorce = 't'\n[kinds.open]\nweight = 1\nfrom = 'x'\n", "unknown key 'sorce'"),
        ("source = [\n", "not valid TOML"),
    ],
)
def test_bad_mix_files_name_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(MixFileError) as info:
        load_mix(path)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value)
    assert "\n" not in str(info.value).split(" (")[0]


def test_errors_are_mix_errors_so_the_cli_reports_them(tmp_path: Path) -> None:
    with pytest.raises(MixError, match="mix file not found"):
        load_mix(tmp_path / "none.toml")
