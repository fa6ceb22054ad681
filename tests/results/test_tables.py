"""netsim.results.tables: outcome labels, NAT order, cells and the terminal matrix table (no root)."""

from __future__ import annotations

from typing import Any

import pytest

from netsim.results import tables


def rec(nat_a: str | None, nat_b: str | None, verdict: str | None, **kw: Any) -> Any:
    return {"group": "matrix-turn", "nat_a": nat_a, "nat_b": nat_b, "verdict": verdict, **kw}


def direct(nat_a: str, nat_b: str, local: str = "srflx", remote: str = "prflx", **kw: Any) -> Any:
    return rec(nat_a, nat_b, "direct", a={"local_type": local, "remote_type": remote}, **kw)


def test_nat_order_known_then_alphabetical() -> None:
    kinds = ["zeta", "symmetric", "udp-blocked", "cgn", "open", "restricted-cone", "full-cone"]
    assert sorted(kinds, key=tables.nat_sort_key) == [
        "open",
        "full-cone",
        "restricted-cone",
        "symmetric",
        "udp-blocked",
        "cgn",
        "zeta",
    ]


def test_nat_kinds_of_both_sides_in_display_order() -> None:
    records = [rec("symmetric", "open", "relay"), rec("cgn", None, "failed"), {}]
    assert tables.nat_kinds(records) == ["open", "symmetric", "cgn"]


def test_outcome_labels() -> None:
    assert tables.outcome_label(direct("x", "y")) == "direct srflx/prflx"
    assert tables.outcome_label(rec("x", "y", "direct-host", a={"local_type": "host"})) == "direct-host"
    assert tables.outcome_label(rec("x", "y", "relay", relay_side="b")) == "relay(b)"
    assert tables.outcome_label(rec("x", "y", "relay", relay_side=None)) == "relay"
    assert tables.outcome_label(rec("x", "y", "failed", a={"state": "failed"})) == "FAILED"
    assert tables.outcome_label({}) == "FAILED"
    assert tables.outcome_label(rec("x", "y", "sideways")) == "sideways"  # unknown verdicts as they are
    assert tables.pair_types(rec("x", "y", "direct", a=None)) is None


def test_cell_label_agreement_and_distributions() -> None:
    srflx_prflx, srflx_srflx = direct("x", "y"), direct("x", "y", remote="srflx")
    relay_b, failed = rec("x", "y", "relay", relay_side="b"), rec("x", "y", "failed")
    assert tables.cell_label([]) == ""
    assert tables.cell_label([srflx_prflx, srflx_prflx]) == "direct srflx/prflx"
    # Verdicts differ: coarse words, most frequent first, ties in first-seen order.
    assert tables.cell_label([srflx_prflx, relay_b, srflx_srflx, failed]) == "direct 2/relay 1/FAILED 1"
    # Same verdict, different pairs: the distribution keeps the pairs.
    assert tables.cell_label([srflx_prflx, srflx_srflx, srflx_srflx]) == (
        "direct srflx/srflx 2/direct srflx/prflx 1"
    )


def test_agreed_label() -> None:
    assert tables.agreed_label([]) == ""
    assert tables.agreed_label(["needed", "needed"]) == "needed"
    assert tables.agreed_label(["a", "b", "b"]) == "b 2/a 1"


def test_group_cells_positions_by_group() -> None:
    records = [
        direct("open", "symmetric"),
        rec("open", "symmetric", "relay", group="matrix-noturn"),
        rec("open", None, "failed"),  # no cell without both NAT kinds
        direct("open", "symmetric"),
        rec("symmetric", "open", "relay", group="firewall"),
    ]
    assert tables.group_cells(records, ["matrix-turn"]) == {("open", "symmetric"): [0, 3]}
    assert tables.group_cells(records, ["matrix-turn", "matrix-noturn"]) == {("open", "symmetric"): [0, 1, 3]}
    assert tables.group_cells(records) == {("open", "symmetric"): [0, 1, 3], ("symmetric", "open"): [4]}
    assert tables.group_cells(records, []) == {}


def test_group_cells_refuses_a_bare_group_name() -> None:
    with pytest.raises(TypeError, match="not the string 'matrix-turn'"):
        tables.group_cells([], "matrix-turn")


def test_cell_axes_in_display_order() -> None:
    cells = [("symmetric", "open"), ("cgn", "full-cone"), ("open", "open")]
    assert tables.cell_axes(cells) == (["open", "symmetric", "cgn"], ["open", "full-cone"])


def test_matrix_table_whole_text() -> None:
    records = [
        direct("open", "open", "host", "host"),
        direct("full-cone", "symmetric"),
        rec("full-cone", "symmetric", "relay", relay_side="a"),
        direct("full-cone", "symmetric"),
        rec("symmetric", "symmetric", "relay", relay_side="both"),
        rec("symmetric", "udp-blocked", "failed"),
        rec("cgn-symmetric", "open", "relay", relay_side="b"),
        rec("open", "open", "failed", group="matrix-noturn"),  # another group: not in this table
    ]
    assert tables.matrix_table(records, "matrix-turn") == "\n".join(
        [
            "matrix-turn:",
            "nat_a \\ nat_b  open              symmetric         udp-blocked",
            "-------------  ----------------  ----------------  -----------",
            "open           direct host/host  -                 -",
            "full-cone      -                 direct 2/relay 1  -",
            "symmetric      -                 relay(both)       FAILED",
            "cgn-symmetric  relay(b)          -                 -",
        ]
    )
    assert tables.matrix_table(records, "matrix-noturn") == "\n".join(
        [
            "matrix-noturn:",
            "nat_a \\ nat_b  open",
            "-------------  ------",
            "open           FAILED",
        ]
    )


def test_matrix_table_empty_group() -> None:
    assert tables.matrix_table([direct("open", "open")], "nope") == "nope: no sessions"


# --- address families (dual-stack labs) ---


def _fams(a: list[str], b: list[str], won: str | None, ipv6_pair: bool = False) -> dict[str, Any]:
    return {"families": {"a": a, "b": b, "won": won, "ipv6_pair": ipv6_pair}}


def test_family_label_only_where_a_side_gathered_ipv6() -> None:
    v4 = _fams(["ipv4"], ["ipv4"], "ipv4")
    assert tables.family_label([v4, v4]) is None  # an IPv4 lab: every winner is IPv4, no news
    assert tables.family_label([{"verdict": "direct"}]) is None  # records before dual-stack labs
    six = _fams(["ipv4", "ipv6"], ["ipv4", "ipv6"], "ipv6", True)
    assert tables.family_label([six, six]) == "ipv6"
    failed = _fams(["ipv4", "ipv6"], ["ipv4"], None)
    assert tables.family_label([six, six, failed]) == "ipv6 2/none 1"
    assert tables.dual_stack(failed) and not tables.dual_stack(v4)


def test_families_text_names_each_side_and_the_winner() -> None:
    text = tables.families_text(_fams(["ipv4", "ipv6"], ["ipv4"], "ipv4"))
    assert text == "a gathered ipv4+ipv6 · b gathered ipv4 · won ipv4 · an IPv6 pair selected: no"
    assert tables.families_text({"verdict": "relay"}) is None
    assert "b gathered nothing" in str(tables.families_text({"families": {"a": ["ipv6"], "b": "junk"}}))
