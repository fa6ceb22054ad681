"""netsim.results.estimate: shares of calls that need a relay for a NAT mix, with intervals (and the CLI)."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from netsim.cli import main
from netsim.results.estimate import (
    EstimateError,
    Interval,
    estimate,
    estimate_records,
    weighted_share,
    wilson,
)
from netsim.results.estimate_text import as_json, format_table
from netsim.results.sensitivity import point
from netsim.suite.blend import resolve
from netsim.suite.mixes import Mix, cells_needed, load_mix, mix_from_dict, split_endpoint
from netsim.vocab import NAT_KINDS
from tests.results.report_fixtures import make_record, truth_needs_relay, write_results

MIXES = Path(__file__).resolve().parents[2] / "mixes"


def _mix(name: str, **weights: float) -> Mix:
    kinds = {k.replace("_", "-"): {"weight": w, "assumption": "test"} for k, w in weights.items()}
    return mix_from_dict({"name": name, "source": "test", "kinds": kinds}, f"{name}.toml")


def _matrix(kinds: tuple[str, ...] = NAT_KINDS, repeats: int = 5, **overrides: Any) -> list[dict[str, Any]]:
    """A matrix-turn run with the textbook outcomes, `repeats` sessions per cell."""
    rng = random.Random(3)
    return [
        make_record(rng, "matrix-turn", a, b, repeat=i, scenario=f"matrix-turn/{a}__{b}", **overrides)
        for a in kinds
        for b in kinds
        for i in range(repeats)
    ]


def test_wilson_matches_published_values() -> None:
    assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson(0, 5) == pytest.approx((0.0, 0.4345), abs=1e-4)
    assert wilson(5, 5) == pytest.approx((0.5655, 1.0), abs=1e-4)
    with pytest.raises(ValueError):
        wilson(0, 0)


def test_one_cell_is_its_wilson_interval() -> None:
    iv = weighted_share([(1.0, 3, 10)])
    assert iv == Interval(pytest.approx(0.3), *(pytest.approx(x) for x in wilson(3, 10)))  # type: ignore[arg-type]


def test_the_interval_covers_the_true_share_95_percent_of_the_time() -> None:
    """Simulated matrices with known per-cell rates: the interval must hold the true weighted share."""
    rng = np.random.default_rng(11)
    weights = rng.dirichlet(np.ones(9))
    for n in (5, 20):
        hits, trials = 0, 1500
        for _ in range(trials):
            p = rng.uniform(0, 1, 9)
            k = rng.binomial(n, p)
            iv = weighted_share([(float(w), int(x), n) for w, x in zip(weights, k, strict=True)])
            hits += iv.low <= float(weights @ p) <= iv.high
        assert hits / trials >= 0.93, (n, hits / trials)


def test_illustrative_mix_on_the_textbook_matrix_gives_22_percent() -> None:
    est = estimate_records(_matrix(), load_mix(MIXES / "illustrative.toml"))
    assert est.needs_relay.share == pytest.approx(0.22)
    assert est.relay_won.share == pytest.approx(0.22)
    assert est.direct.share == pytest.approx(0.78)
    for iv in (est.needs_relay, est.relay_won, est.direct):
        assert iv.low < iv.share < iv.high  # 5 repeats per cell: an interval, never a point
    assert len(est.cells) == 25 and {n.sessions for _, n in est.cells.values()} == {5}


def test_more_repeats_narrow_the_interval() -> None:
    mix = load_mix(MIXES / "illustrative.toml")
    few, many = (estimate_records(_matrix(repeats=r), mix).needs_relay for r in (5, 50))
    assert many.high - many.low < (few.high - few.low) / 2
    assert few.share == many.share


def test_cells_use_their_own_proportions_and_weights() -> None:
    """Two kinds, hand-computed: P(sym) = 0.5 each side; sym x sym needs a relay 3 of 4 times."""
    rng = random.Random(1)
    recs = []
    for a, b, needs in [("open", "open", [False] * 4), ("open", "symmetric", [False] * 4)]:
        recs += [make_record(rng, "matrix-turn", a, b, verdict="direct", needs_relay=x) for x in needs]
        recs += [make_record(rng, "matrix-turn", b, a, verdict="direct", needs_relay=x) for x in needs]
    for needs in [True, True, True, False]:
        verdict = "relay" if needs else "direct"
        recs.append(
            make_record(rng, "matrix-turn", "symmetric", "symmetric", verdict=verdict, needs_relay=needs)
        )
    est = estimate_records(recs, _mix("half", open=1, symmetric=1))
    assert est.needs_relay.share == pytest.approx(0.25 * 0.75)
    assert est.relay_won.share == pytest.approx(0.25 * 0.75)
    assert est.direct.share == pytest.approx(1 - 0.25 * 0.75)


def test_callee_mix_picks_rows_from_one_mix_and_columns_from_the_other() -> None:
    caller, callee = _mix("caller", symmetric=1), _mix("callee", open=1, port_restricted_cone=3)
    assert cells_needed(caller, callee) == [("symmetric", "open"), ("symmetric", "port-restricted-cone")]
    est = estimate_records(_matrix(), caller, callee)
    assert est.needs_relay.share == pytest.approx(0.75)
    assert as_json(est)["mix_b"] == "callee"


def test_only_cell_measuring_sessions_count() -> None:
    """A hairpin pair behind one port-restricted NAT needs a relay; it is not the prc x prc cell."""
    rng = random.Random(2)
    extra = [
        make_record(
            rng,
            group,
            "port-restricted-cone",
            "port-restricted-cone",
            verdict="relay",
            needs_relay=True,
            **kw,
        )
        for group, kw in [
            ("hairpin", {}),
            ("population", {}),
            ("matrix-noturn", {"turn": "none"}),
            ("policy", {"policy": "relay"}),
        ]
    ]
    recs = _matrix(kinds=("port-restricted-cone",)) + extra
    est = estimate_records(recs, _mix("prc", port_restricted_cone=1))
    assert est.needs_relay.share == 0.0 and est.cells[("port-restricted-cone",) * 2][1].sessions == 5


def test_unknown_needs_relay_is_left_out_of_that_share_only() -> None:
    rng = random.Random(4)
    recs = [
        make_record(rng, "matrix-turn", "open", "open", verdict="direct", needs_relay=None) for _ in range(2)
    ]
    recs += [make_record(rng, "matrix-turn", "open", "open", verdict="direct", needs_relay=True)]
    est = estimate_records(recs, _mix("open", open=1))
    assert est.needs_relay.share == 1.0 and est.direct.share == 1.0
    with pytest.raises(EstimateError, match="cell open x open has no session with a known needs_relay"):
        estimate_records(recs[:2], _mix("open", open=1))


def test_a_run_lacking_a_cell_is_refused_naming_it() -> None:
    recs = [r for r in _matrix() if not (r["nat_a"] == "symmetric" and r["nat_b"] == "open")]
    with pytest.raises(EstimateError, match=r"lacks 1 cell\(s\) mix 'illustrative' needs: symmetric x open"):
        estimate_records(recs, load_mix(MIXES / "illustrative.toml"), where="run/results.jsonl")


def test_a_record_without_a_needed_key_is_refused() -> None:
    recs = _matrix(kinds=("open",))
    del recs[2]["verdict"]
    with pytest.raises(
        EstimateError, match=r"run/results.jsonl: record 3 \(matrix-turn/open__open\) has no 'verdict' key"
    ):
        estimate_records(recs, _mix("open", open=1), where="run/results.jsonl")
    del recs[1]["group"]
    with pytest.raises(EstimateError, match="record 2 has no 'group' key"):
        estimate_records(recs, _mix("open", open=1))


def test_capacity_counts_relayed_paths_and_both_directions() -> None:
    rng = random.Random(5)
    recs = [
        make_record(rng, "matrix-turn", "symmetric", "symmetric", verdict="relay", relay_side=side)
        for side in ("both", "a", "both", "b")
    ]
    est = estimate_records(recs, _mix("sym", symmetric=1), bitrate_kbps=1500)
    cap = est.capacity
    assert cap.relayed_calls.share == pytest.approx(1000)
    assert cap.allocations.share == pytest.approx(1500)  # half the calls relay on both sides
    assert cap.relay_mbps.share == pytest.approx(1500 * 2 * 1.5)  # each path: both directions in (and out)
    assert cap.allocations.low == pytest.approx(cap.relayed_calls.low * 1.5)


def test_json_has_the_issue_shape_and_the_table_states_the_bitrate(tmp_path: Path) -> None:
    est = estimate_records(_matrix(), load_mix(MIXES / "illustrative.toml"))
    out = as_json(est)
    assert out["mix"] == "illustrative" and out["source"].startswith("none: invented")
    for key in ("needs_relay", "relay_won", "direct"):
        assert set(out[key]) == {"share", "low", "high"} and out[key]["low"] < out[key]["high"]
    assert out["capacity"]["bitrate_kbps"] == 1000.0 and len(out["cells"]) == 25
    assert set(out["assumptions"]["a"]) == set(NAT_KINDS)
    text = format_table(est)
    assert "calls that need a relay" in text and "22.0 %" in text and "1000 kbit/s each way" in text


def test_estimate_reads_a_run_directory(tmp_path: Path) -> None:
    write_results(tmp_path / "run", _matrix())
    est = estimate(tmp_path / "run", load_mix(MIXES / "illustrative.toml"))
    assert est.needs_relay.share == pytest.approx(0.22) and est.run == str(tmp_path / "run")
    with pytest.raises(EstimateError, match="run directory not found"):
        estimate(tmp_path / "nope", load_mix(MIXES / "illustrative.toml"))


# --- the command ---


def test_cli_prints_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_results(tmp_path / "run", _matrix())
    argv = [
        "estimate",
        "--matrix",
        str(tmp_path / "run"),
        "--mix",
        str(MIXES / "illustrative.toml"),
        "--json",
    ]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["needs_relay"]["share"] == 0.22 and out["mix_b"] is None


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_results(tmp_path / "run", _matrix(kinds=("open", "symmetric")))
    assert main(["estimate", "--matrix", str(tmp_path / "run"), "--mix", str(MIXES / "mobile.toml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "netsim: error:" in err and "open x port-restricted-cone" in err
    bad = tmp_path / "bad.toml"
    bad.write_text('source = "x"\n[kinds.cone]\nweight = 1\nfrom = "y"\n')
    assert main(["estimate", "--matrix", str(tmp_path / "run"), "--mix", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err == f"netsim: error: {bad}: kinds.'cone': unknown NAT kind 'cone'\n"


# --- what a reader needs to weigh the figure (issue 17) ---


def test_the_table_says_what_the_figure_rests_on_and_leaves_out() -> None:
    est = estimate_records(_matrix(), load_mix(MIXES / "mobile.toml").ipv4_only())  # issue 17's IPv4 figures
    text = format_table(est)
    assert "peers: aiortc (caller) x aiortc (callee)" in text
    assert "note: Wang et al. would give 58 %" in text
    assert "assumed weights: open" in text and "secondary sources: port-restricted-cone, symmetric" in text
    assert "calls that failed even with TURN" in text
    assert "mobile: symmetric (secondary, both sides) 40.0 % in 11.0-58.0 %  ->  19.2 % - 78.3 %" in text
    assert "IPv6-only endpoints without a CLAT" in text and "NAT66" in text
    out = as_json(est)
    assert out["peers"] == ["aiortc", "aiortc"] and out["note"].startswith("Wang")
    assert out["uncertain_weights"]["a"] == {
        "open": "assumed",
        "port-restricted-cone": "secondary",
        "symmetric": "secondary",
    }
    assert out["sensitivity"][0]["kind"] == "symmetric" and out["sensitivity"][0]["range"] == [0.11, 0.58]
    assert out["failed_with_turn"]["share"] == 0.0 and any("NAT66" in x for x in out["leaves_out"])


def test_calls_that_failed_even_with_turn() -> None:
    recs = _matrix(kinds=("open", "symmetric"))
    for r in recs:
        if (r["nat_a"], r["nat_b"]) == ("symmetric", "symmetric") and r["repeat"] < 2:
            r["verdict"] = "failed"
    est = estimate_records(recs, _mix("half", open=1, symmetric=1))
    assert est.failed.share == pytest.approx(0.25 * 2 / 5)


def test_a_run_with_other_stacks_names_the_peers_that_would_work() -> None:
    recs = _matrix(kinds=("open", "symmetric"))
    for r in recs:
        r["a"]["peer"] = r["b"]["peer"] = "chromium"
    mix = _mix("half", open=1, symmetric=1)
    with pytest.raises(
        EstimateError, match=r"has every cell for other stacks: use --peers chromium,chromium$"
    ):
        estimate_records(recs, mix)
    assert estimate_records(recs, mix, peers=("chromium", "chromium")).peers == ("chromium", "chromium")
    with pytest.raises(EstimateError, match=r"\(run `netsim matrix --mix mobile --peers aiortc,chromium`\)"):
        estimate_records(recs, load_mix(MIXES / "mobile.toml"), peers=("aiortc", "chromium"))


def test_min_repeats_refuses_thin_cells() -> None:
    mix = _mix("half", open=1, symmetric=1)
    recs = _matrix(kinds=("open", "symmetric"), repeats=2)
    with pytest.raises(
        EstimateError, match=r"cell open x open has 2 session\(s\), fewer than --min-repeats 3"
    ):
        estimate_records(recs, mix, min_repeats=3)
    assert "warning: 2 session(s) in the thinnest cell" in format_table(estimate_records(recs, mix))
    assert "warning" not in format_table(estimate_records(_matrix(kinds=("open", "symmetric")), mix))


def test_cli_names_and_blends(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_results(tmp_path / "run", _dual_matrix(NAT_KINDS, repeats=1))
    run = str(tmp_path / "run")
    assert main(["estimate", "--matrix", run, "--mix", "mobile=0.5,illustrative=0.5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [p["mix"] for p in out["parts"]] == ["mobile", "illustrative"]
    blended = resolve("mobile=0.5,illustrative=0.5")
    rates = {cell: _truth(*cell) for cell in cells_needed(blended)}
    assert out["needs_relay"]["share"] == pytest.approx(point((blended, None), rates), abs=1e-4)
    assert 0.22 < out["needs_relay"]["share"] < 0.60  # between illustrative's and mobile's own
    assert main(["estimate", "--matrix", run, "--mix", "mobile", "--min-repeats", "9"]) == 2
    assert "fewer than --min-repeats 9" in capsys.readouterr().err


def _truth(a: str, b: str) -> float:
    """The textbook answer for a cell of endpoints: IPv6 on both sides needs no relay."""
    (kind_a, mode_a), (kind_b, mode_b) = split_endpoint(a), split_endpoint(b)
    return float("none" in (mode_a, mode_b) and truth_needs_relay(kind_a, kind_b))


def _site(side: str, mode: str) -> dict[str, Any]:
    return {"name": f"nat-{side}", "hosts": [side], **({"ipv6": mode} if mode != "none" else {})}


def _dual_matrix(kinds: tuple[str, ...], repeats: int = 3) -> list[dict[str, Any]]:
    """A matrix run over IP modes: IPv4 cells the textbook's, a cell with IPv6 on both sides direct (as
    measured through two apdf firewalls), a cell with IPv6 on one side only the IPv4 answer."""
    rng = random.Random(5)
    out = []
    for ma, mb in [(x, y) for x in ("none", "dual", "clat") for y in ("none", "dual", "clat")]:
        group = "matrix-turn" if (ma, mb) == ("none", "none") else "matrix-turn-ipv6"
        for a, b in [(a, b) for a in kinds for b in kinds if ("open", "clat") not in ((a, ma), (b, mb))]:
            v6 = "none" not in (ma, mb)
            for i in range(repeats):
                r = make_record(
                    rng,
                    group,
                    a,
                    b,
                    repeat=i,
                    needs_relay=not v6 and truth_needs_relay(a, b),
                    verdict="direct" if v6 else None,
                )
                r["experiment"] = {"topology": {"site": [_site("a", ma), _site("b", mb)]}}
                out.append(r)
    return out


def test_dual_stack_weights_cells_by_kind_and_ip_mode_on_both_sides() -> None:
    """mobile: half of every kind's endpoints have IPv6, so a quarter of calls have it on both sides and
    need no relay: 60 % of calls need one on IPv4 alone, 0.60 x 0.75 = 45 % with IPv6."""
    mobile = load_mix(MIXES / "mobile.toml")
    est = estimate_records(_dual_matrix(("open", "port-restricted-cone", "symmetric")), mobile)
    assert est.needs_relay.share == pytest.approx(0.45) and est.ipv4_only is not None
    assert est.ipv4_only.share == pytest.approx(0.60)
    assert est.ipv4_only.low < 0.60 < est.ipv4_only.high and len(est.cells) == 64
    out = as_json(est)
    assert out["needs_relay"]["share"] == pytest.approx(0.45, abs=1e-4)
    assert set(out["ipv4_only"]) == {"share", "low", "high"} and out["ipv4_only"]["share"] == pytest.approx(
        0.6
    )
    assert {(c["ip_a"], c["ip_b"]) for c in out["cells"]} >= {("clat", "dual"), ("none", "none")}
    assert out["ip_modes"]["a"]["symmetric"]["shares"] == {"none": 0.5, "dual": 0.35, "clat": 0.15}
    text = format_table(est)
    assert re.search(r"calls that need a relay +45.0 %", text)
    assert re.search(r"  the same mix, IPv4-only +60.0 %", text)
    assert "endpoints with IPv6: 50.0 % (none 50.0 %, dual 35.8 %, clat 14.3 %)" in text  # open: no clat
    assert "endpoints with IPv6 (assumed, both sides) 50.0 % in 25.0-80.0 %  ->  " in text
    assert "NAT66" in text and "until the dual-stack issue lands" not in text


def test_a_mix_without_ip_shares_prints_the_same_figure_twice() -> None:
    est = estimate_records(_matrix(), load_mix(MIXES / "illustrative.toml"))
    assert est.ipv4_only == est.needs_relay and as_json(est)["ipv4_only"] == as_json(est)["needs_relay"]


def test_a_run_without_the_ipv6_cells_names_the_command_that_runs_them() -> None:
    with pytest.raises(
        EstimateError, match=r"lacks 55 cell\(s\) .*open x open@dual, .*run `netsim matrix --mix mobile`"
    ):
        estimate_records(
            _matrix(kinds=("open", "port-restricted-cone", "symmetric")), load_mix(MIXES / "mobile.toml")
        )


def test_ipv4_only_reads_a_run_of_the_mix_s_ipv4_cells(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run of `netsim matrix --mix mobile --ipv6 none` lacks the IPv6 cells; --ipv4-only reads it."""
    write_results(tmp_path / "run", _matrix(kinds=("open", "port-restricted-cone", "symmetric")))
    argv = ["estimate", "--matrix", str(tmp_path / "run"), "--mix", "mobile", "--json"]
    assert main(argv) == 2 and "lacks 55 cell(s)" in capsys.readouterr().err
    assert main([*argv, "--ipv4-only"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["needs_relay"] == out["ipv4_only"] and out["needs_relay"]["share"] == pytest.approx(0.6)
