"""netsim.suite.mixes: the shipped mix files, validation errors, layered kinds, the cells a mix needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from netsim.suite.mixes import (
    ASSUMPTION,
    MixError,
    MixFileError,
    cell_weights,
    cells_needed,
    cells_to_run,
    endpoint,
    layered,
    load_mix,
    mix_from_dict,
    split_endpoint,
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


def _ip_mix(ip: dict[str, object], kind: str = "symmetric", **top: object) -> dict[str, Any]:
    return {"source": "test", **top, "kinds": {kind: {"weight": 1, "assumption": "t", "ip": ip}}}


def test_a_mix_without_ip_shares_is_all_ipv4_as_before() -> None:
    mix = load_mix(MIXES / "enterprise.toml")
    assert not mix.has_ip and mix.endpoint_shares == mix.shares
    assert cells_needed(mix) == [(a, b) for a in mix.shares for b in mix.shares]


def test_shipped_ip_shares_cite_their_figures() -> None:
    mobile, residential = load_mix(MIXES / "mobile.toml"), load_mix(MIXES / "residential.toml")
    assert mobile.ipv6_share == pytest.approx(0.5) and residential.ipv6_share == pytest.approx(0.42)
    sym = dict(mobile.endpoint_shares)
    assert sym["symmetric@clat"] == pytest.approx(mobile.shares["symmetric"] * 0.15)
    assert "open@clat" not in sym and sym["open@dual"] == pytest.approx(mobile.shares["open"] * 0.5)
    assert not any(e.endswith("@clat") for e in residential.endpoint_shares)
    assert "42 %" in residential.kinds[0].ip.text and "T-Mobile US" in str(mobile.source)
    assert len(cells_needed(mobile)) == 64  # open: none, dual; the other two kinds: none, dual, clat


def test_ip_shares_by_kind_override_the_mix_default() -> None:
    data = _ip_mix({"none": 1, "dual": 3, "from": "figure", "checked": "primary"})
    data["ip"] = {"none": 1, "assumption": "v4"}  # the default of kinds without their own
    data["kinds"]["open"] = {"weight": 1, "assumption": "t"}
    mix = mix_from_dict(data, "m.toml")
    assert mix.endpoint_shares == pytest.approx({"open": 0.5, "symmetric": 0.125, "symmetric@dual": 0.375})
    assert split_endpoint("symmetric@dual") == ("symmetric", "dual") and endpoint("open", "none") == "open"
    assert mix.ipv4_only().endpoint_shares == pytest.approx({"open": 0.5, "symmetric": 0.5})
    # the estimate can always print the IPv4-only twin beside: its cells are run too
    assert set(cells_to_run(mix)) == set(cells_needed(mix)) | set(cells_needed(mix.ipv4_only()))


def test_moving_the_ipv6_share_keeps_the_split_of_modes() -> None:
    mobile = load_mix(MIXES / "mobile.toml")
    moved = mobile.with_ipv6_share(0.25)
    assert moved.ipv6_share == pytest.approx(0.25)
    sym = dict(next(k for k in moved.kinds if k.kind == "symmetric").ip.shares)
    assert sym["dual"] / sym["clat"] == pytest.approx(0.35 / 0.15) and sym["none"] == pytest.approx(0.75)
    everything = mobile.with_ipv6_share(1.0)
    assert everything.ipv6_share == pytest.approx(1.0) and "symmetric" not in everything.endpoint_shares


@pytest.mark.parametrize(
    ("ip", "kind", "message"),
    [
        ({"only": 1, "assumption": "x"}, "symmetric", "kinds.'symmetric'.ip.only: IPv6-only without a CLAT"),
        ({"dual": 1, "bogus": 1, "assumption": "x"}, "symmetric", "unknown key 'bogus'"),
        ({"dual": -1, "none": 1, "assumption": "x"}, "symmetric", "ip.dual: expected a share >= 0, got -1"),
        ({"dual": 0, "assumption": "x"}, "symmetric", "must add up to a positive number"),
        ({"dual": 1}, "symmetric", "give exactly one of 'from' or 'assumption'"),
        ({"clat": 1, "assumption": "x"}, "open", "a clat share needs a translating NAT kind"),
        ({"clat": 1, "assumption": "x"}, "udp-blocked", "not 'udp-blocked'"),
        ({"dual": 1, "assumption": "x", "range": [0.5]}, "symmetric", "ip.range: expected [low, high]"),
    ],
)
def test_bad_ip_shares_name_the_field(ip: dict[str, object], kind: str, message: str) -> None:
    with pytest.raises(MixFileError) as info:
        mix_from_dict(_ip_mix(ip, kind), "m.toml")
    assert "m.toml: " in str(info.value) and message in str(info.value)


def test_a_clat_default_is_refused_for_the_kind_that_cannot_take_it() -> None:
    data = {
        "source": "s",
        "ip": {"clat": 1, "assumption": "x"},
        "kinds": {"open": {"weight": 1, "assumption": "t"}},
    }
    with pytest.raises(MixFileError, match=r"kinds.'open' \(with the mix's \[ip\]\).clat"):
        mix_from_dict(data, "m.toml")
