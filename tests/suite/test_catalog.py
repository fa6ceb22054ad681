"""The scenario catalog: every group, the shipped scenario files, populations (no root)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from netsim.suite.blend import resolve
from netsim.suite.catalog import catalog, matrix, mix_cells, mix_pairing, parse_mix, population
from netsim.suite.mixes import MixError

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def test_catalog_groups_and_counts() -> None:
    cat = catalog(SCENARIOS)
    ids = [s.id for s in cat]
    # Firefox's and Pion's groups (their matrices and dual-stack cell) are deselected by default.
    assert len(ids) == len(set(ids)) == 182 + 151 + 151
    assert Counter(s.group for s in cat) == {
        "firewall": 4,
        "matrix-turn": 25,
        "matrix-noturn": 25,
        "matrix-turn-chromium": 25,
        "matrix-noturn-chromium": 25,
        "matrix-turn-chromium-aiortc": 25,
        "matrix-turn-aiortc-chromium": 25,
        "matrix-turn-firefox": 25,
        "matrix-noturn-firefox": 25,
        "matrix-turn-firefox-chromium": 25,
        "matrix-turn-chromium-firefox": 25,
        "matrix-turn-firefox-aiortc": 25,
        "matrix-turn-aiortc-firefox": 25,
        "matrix-turn-pion": 25,
        "matrix-noturn-pion": 25,
        "matrix-turn-pion-chromium": 25,
        "matrix-turn-chromium-pion": 25,
        "matrix-turn-pion-aiortc": 25,
        "matrix-turn-aiortc-pion": 25,
        "double-nat": 2,
        "dual-stack": 10,
        "dual-stack-pion": 1,
        "dual-stack-firefox": 1,
        "hairpin": 2,
        "lan": 1,
        "impaired": 1,
        "policy": 1,
        "glare": 2,
        "timeline": 9,
    }
    assert {s.options.turn for s in cat if s.group == "matrix-noturn"} == {"none"}
    stacks = {s.group: (s.options.peer_a, s.options.peer_b) for s in cat}
    assert (
        stacks["matrix-turn"] == ("aiortc", "aiortc")
        and stacks["matrix-noturn-chromium"] == ("chromium",) * 2
    )
    assert stacks["matrix-turn-chromium-aiortc"] == ("chromium", "aiortc")
    assert stacks["matrix-turn-aiortc-chromium"] == ("aiortc", "chromium")
    assert stacks["matrix-noturn-firefox"] == ("firefox",) * 2
    assert stacks["matrix-turn-chromium-firefox"] == ("chromium", "firefox")
    assert stacks["matrix-turn-firefox-aiortc"] == ("firefox", "aiortc")
    assert stacks["matrix-noturn-pion"] == ("pion", "pion") and stacks["matrix-turn-chromium-pion"] == (
        "chromium",
        "pion",
    )
    assert {s.options.turn for s in cat if s.group == "firewall"} == {"tcp", "tls"}
    assert {s.options.glare_first for s in cat if s.options.glare} == {"a", "b"}
    assert cat[0].group == "firewall"  # the slowest first, so xdist workers finish together


def test_connect_deadlines_follow_the_one_rule() -> None:
    deadlines = {s.id: s.options.deadline_s for s in catalog(SCENARIOS)}
    assert deadlines["matrix-turn/open__symmetric"] == 3.0
    assert deadlines["firewall/udp-blocked__port-restricted-cone__tcp"] == 9.0
    assert deadlines["firewall/udp-blocked__udp-blocked__tls"] == 14.0
    # Pion controlling waits 2 s before it nominates a relay pair; Pion controlled does not.
    assert (
        deadlines["matrix-turn-pion-aiortc/open__symmetric"]
        == deadlines["matrix-turn-pion/open__open"]
        == 5.0
    )
    assert deadlines["matrix-turn-aiortc-pion/open__symmetric"] == 3.0


def test_matrix_limited_to_kinds() -> None:
    ids = [s.id for s in matrix("none", ("open", "symmetric"))]
    assert ids == [
        "matrix-noturn/open__open",
        "matrix-noturn/open__symmetric",
        "matrix-noturn/symmetric__open",
        "matrix-noturn/symmetric__symmetric",
    ]


def test_population_is_deterministic_and_draws_from_the_mix() -> None:
    mix = {"full-cone": 1.0, "symmetric": 1.0}
    one = [s.id for s in population(10, mix, seed=3)]
    assert one == [s.id for s in population(10, mix, seed=3)]
    assert one != [s.id for s in population(10, mix, seed=4)]
    assert all(s.nat_a in mix and s.nat_b in mix for s in population(10, mix, seed=3))
    assert {s.group for s in population(3, mix, seed=1)} == {"population"}


@pytest.mark.parametrize(
    ("size", "mix", "message"),
    [
        (2, {"warp": 1.0}, r"--mix: unknown NAT kind 'warp'"),
        (2, {"symmetric": -1.0}, r"--mix: negative weight for 'symmetric'"),
        (2, {"symmetric": 0.0}, r"--mix: the weights must add up to a positive number"),
        (0, {"symmetric": 1.0}, r"--size: needs at least one session, got 0"),
    ],
)
def test_population_refuses_bad_input(size: int, mix: dict[str, float], message: str) -> None:
    with pytest.raises(MixError, match=message):
        population(size, mix, seed=1)


def test_parse_mix() -> None:
    assert parse_mix("open=0.5, symmetric=1") == {"open": 0.5, "symmetric": 1.0}
    with pytest.raises(MixError, match=r"--mix: bad weight in 'open'"):
        parse_mix("open")


def test_mix_pairings_layer_cgns_and_pick_the_group_the_estimate_reads() -> None:
    plain = mix_pairing("full-cone", "symmetric")
    assert (plain.id, plain.group, plain.options.turn) == (
        "matrix-turn/full-cone__symmetric",
        "matrix-turn",
        "udp",
    )
    layered = mix_pairing("port-restricted-cone+cgn-symmetric", "open")
    assert layered.group == "double-nat" and layered.nat_a == "port-restricted-cone+cgn-symmetric"
    assert [c.name for c in layered.topology.carriers] == ["cgn-a"]
    assert layered.topology.site("nat-a").behind == "cgn-a" and layered.topology.site("nat-b").behind is None
    assert layered.topology.carriers[0].nat.kind == "symmetric"
    blocked = mix_pairing("udp-blocked", "port-restricted-cone")
    assert (blocked.group, blocked.options.turn, blocked.options.deadline_s) == ("firewall", "tcp", 9.0)


def test_population_from_mix_file_kinds() -> None:
    mix = {"udp-blocked": 1.0, "full-cone+cgn-port-restricted-cone": 1.0}
    drawn = population(6, mix, seed=2, mix_b={"open": 1.0})
    assert {s.nat_b for s in drawn} == {"open"} and {s.nat_a for s in drawn} <= set(mix)
    assert all(s.draw is not None and s.draw.get("mix_b") == {"open": 1.0} for s in drawn)


def test_a_matrix_over_ip_modes_keeps_ipv4_cells_in_their_group_and_the_rest_apart() -> None:
    cells = matrix("udp", ("symmetric",), modes=("none", "dual"))
    assert [c.id for c in cells] == [
        "matrix-turn/symmetric__symmetric",
        "matrix-turn-ipv6/symmetric__symmetric__none__dual",
        "matrix-turn-ipv6/symmetric__symmetric__dual__none",
        "matrix-turn-ipv6/symmetric__symmetric__dual__dual",
    ]
    assert [tuple(s.ipv6 for s in c.topology.sites) for c in cells] == [
        ("none", "none"),
        ("none", "dual"),
        ("dual", "none"),
        ("dual", "dual"),
    ]


def test_a_matrix_cell_may_be_a_rules_file(tmp_path: Path) -> None:
    from netsim.lab.nat import RULES_DIR

    mine = tmp_path / "mine.nft"
    mine.write_text((RULES_DIR / "symmetric.nft").read_text())
    (cell,) = matrix("udp", (str(mine),))
    assert cell.id == "matrix-turn/custom:mine.nft__custom:mine.nft"
    assert cell.topology.sites[0].nat.rules_file == str(mine.resolve())


def test_mix_cells_with_ip_modes_build_the_sides_the_mix_names() -> None:
    clat = mix_pairing("symmetric@clat", "udp-blocked@dual")
    assert clat.group == "firewall-ipv6" and clat.id == "firewall-ipv6/symmetric__udp-blocked__clat__dual"
    a, b = clat.topology.sites
    assert (a.ipv6, a.behind, b.ipv6, b.fw6 and b.fw6.kind) == ("clat", "nat64-a", "dual", "block-udp")
    assert [(c.name, c.nat64, c.nat.kind) for c in clat.topology.carriers] == [("nat64-a", True, "symmetric")]
    layered = mix_pairing("port-restricted-cone+cgn-symmetric@dual", "open")
    assert layered.group == "double-nat-ipv6" and layered.topology.sites[0].behind == "cgn-a"
    assert mix_pairing("open", "symmetric").id == "matrix-turn/open__symmetric"  # IPv4 cells as before
    cells = mix_cells(resolve("mobile"))
    assert len(cells) == 64 and sum(c.group == "matrix-turn" for c in cells) == 9
