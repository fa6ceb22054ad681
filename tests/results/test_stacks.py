"""The report's stack comparison: per cell, each stack pairing's first and settled pair types, first echo,
verdicts, and where the pairings disagree (no root)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from netsim.results.report import render
from netsim.results.stacks import pair_types, stack_comparison


def _pair(local: str, remote: str, turn: str | None = None) -> dict[str, Any]:
    return {"t": 0.1, "local_type": local, "remote_type": remote, "turn_transport": turn}


def _record(
    stacks: tuple[str, str],
    cell: tuple[str, str],
    verdict: str,
    first: tuple[dict[str, Any], dict[str, Any]],
    settled: tuple[dict[str, Any], dict[str, Any]],
    echo_s: float | None,
    needs_relay: bool | None = False,
) -> dict[str, Any]:
    sides = {
        side: {"peer": stack, "first": f, "settled": s, "state": "connected"}
        for side, stack, f, s in zip("ab", stacks, first, settled, strict=True)
    }
    return {
        "scenario": f"m/{cell[0]}__{cell[1]}",
        "group": "m",
        "nat_a": cell[0],
        "nat_b": cell[1],
        "turn": "udp",
        "verdict": verdict,
        "first_verdict": "relay" if first[0]["local_type"] == "relay" else verdict,
        "needs_relay": needs_relay,
        "timings": {"first_echo_s": echo_s},
        **sides,
    }


PRC, SYM = "port-restricted-cone", "symmetric"
DIRECT = (_pair("srflx", "srflx"), _pair("srflx", "srflx"))
RELAY_FIRST = (_pair("relay", "srflx", "udp"), _pair("srflx", "relay"))
RECORDS = [
    # aiortc's aggressive nomination lets a relay win where a direct path exists; Firefox settles direct.
    _record(("aiortc", "aiortc"), (PRC, PRC), "relay", RELAY_FIRST, RELAY_FIRST, 0.80),
    _record(("aiortc", "aiortc"), (PRC, PRC), "direct", DIRECT, DIRECT, 0.20),
    _record(("firefox", "firefox"), (PRC, PRC), "direct", DIRECT, DIRECT, 0.10),
    _record(("firefox", "chromium"), (PRC, PRC), "direct", RELAY_FIRST, DIRECT, 0.30),
    _record(("firefox", "firefox"), (PRC, SYM), "relay", RELAY_FIRST, RELAY_FIRST, None, needs_relay=True),
]


def test_pair_types_label_each_sides_view() -> None:
    assert pair_types(_pair("relay", "srflx", "tls")) == "relay -> srflx (tls)"
    assert pair_types(None) == "-" and pair_types({"local_type": None}) == "-"


def test_each_cell_shows_every_pairing_that_ran_it() -> None:
    cmp = stack_comparison(RECORDS)  # type: ignore[arg-type]
    assert cmp["pairings"] == ["aiortc x aiortc", "firefox x chromium", "firefox x firefox"]
    prc = cmp["rows"][0]
    assert (prc["cell"], prc["turn"]) == (f"{PRC} x {PRC}", "udp")
    aiortc = prc["columns"]["aiortc x aiortc"]
    assert aiortc["sessions"] == 2 and aiortc["verdict"] in ("relay 1, direct 1", "direct 1, relay 1")
    assert aiortc["sides"][0]["settled"] in (
        "relay -> srflx (udp) 1, srflx -> srflx 1",
        "srflx -> srflx 1, relay -> srflx (udp) 1",
    )
    assert aiortc["first_echo"] == "0.500 s"  # the median of 0.8 and 0.2
    mixed = prc["columns"]["firefox x chromium"]
    assert [s["stack"] for s in mixed["sides"]] == ["firefox", "chromium"]
    assert (
        mixed["sides"][0]["first"] == "relay -> srflx (udp)"
        and mixed["sides"][0]["settled"] == "srflx -> srflx"
    )
    assert mixed["first_verdict"] == "relay" and mixed["verdict"] == "direct"


def test_disagreement_names_each_pairings_verdicts() -> None:
    cmp = stack_comparison(RECORDS)  # type: ignore[arg-type]
    prc, sym = cmp["rows"]
    assert prc["disagree"].startswith("settled: aiortc x aiortc ")
    assert "firefox x firefox direct" in prc["disagree"] and "first: " in prc["disagree"]
    assert sym["disagree"] is None  # one pairing ran it: nothing to compare
    assert sym["columns"]["firefox x firefox"]["first_echo"] == "–"
    assert cmp["disagreeing"] == 1


def test_the_report_shows_the_comparison_with_two_pairings_or_more(tmp_path: Path) -> None:
    html = render(tmp_path, RECORDS)  # type: ignore[arg-type]
    assert 'id="stack-comparison"' in html and "firefox x chromium" in html
    assert "a (firefox): first relay -&gt; srflx (udp); settled srflx -&gt; srflx" in html
    one = render(
        tmp_path, [r for r in RECORDS if r["a"]["peer"] == "firefox" and r["b"]["peer"] == "firefox"]
    )  # type: ignore[arg-type]
    assert 'id="stack-comparison"' not in one


# --- address families: which family won, per stack (dual-stack labs) ---

V6 = ("ipv4", "ipv6")


def _dual(stacks: tuple[str, str], won: str, gathered_b: tuple[str, ...] = V6) -> dict[str, Any]:
    """A symmetric x symmetric session with both sites dual-stack (no TURN: needs_relay false over IPv6)."""
    r = _record(stacks, (SYM, SYM), "direct", DIRECT, DIRECT, 0.3)
    r["group"], r["turn"] = "dual-stack", "none"
    sites = [{"name": f"nat-{s}", "hosts": [s], "ipv6": "dual", "nat": {}} for s in "ab"]
    r["experiment"] = {"topology": {"site": sites}}
    r["families"] = {"a": ["ipv4", "ipv6"], "b": list(gathered_b), "won": won, "ipv6_pair": won == "ipv6"}
    return r


DUAL = [
    _dual(("chromium", "chromium"), "ipv6"),
    _dual(("aiortc", "aiortc"), "ipv6"),
    _dual(("aiortc", "aiortc"), "ipv4"),
    _dual(("pion", "pion"), "ipv4", gathered_b=("ipv4",)),
]


def test_a_dual_stack_cell_is_not_its_ipv4_twin_and_shows_the_family_per_stack() -> None:
    v4_twin = _record(("pion", "pion"), (SYM, SYM), "relay", RELAY_FIRST, RELAY_FIRST, 0.9)
    cmp = stack_comparison([*DUAL, v4_twin])  # type: ignore[arg-type]
    cells = {(row["cell"], row["turn"]): row for row in cmp["rows"]}
    dual = cells[(f"{SYM} x {SYM} (dual x dual)", "none")]
    v4 = cells[(f"{SYM} x {SYM}", "udp")]
    assert dual["columns"]["chromium x chromium"]["family"] == "ipv6"
    assert dual["columns"]["aiortc x aiortc"]["family"] in ("ipv6 1, ipv4 1", "ipv4 1, ipv6 1")
    pion = dual["columns"]["pion x pion"]
    assert pion["family"] == "ipv4" and [s["gathered"] for s in pion["sides"]] == ["ipv4+ipv6", "ipv4"]
    assert "family: " in dual["disagree"] and "chromium x chromium ipv6" in dual["disagree"]
    assert v4["columns"]["pion x pion"]["family"] is None  # an IPv4 lab: no family shown
    assert "family" not in str(v4["disagree"])


def test_the_report_shows_the_family_per_stack(tmp_path: Path) -> None:
    html = render(tmp_path, DUAL)  # type: ignore[arg-type]
    assert f"{SYM} x {SYM} (dual x dual)" in html
    assert "; won ipv6; needs_relay false" in html  # chromium's column of the comparison
    assert "settled srflx -&gt; srflx; gathered ipv4</div>" in html  # pion's b side gathered IPv4 only


def test_chromiums_ipv4_only_twin_is_a_pairing_of_its_own() -> None:
    twin = _dual(("chromium", "chromium"), "ipv4", gathered_b=("ipv4",))
    twin["b"]["settings"] = {"flags": [], "mdns": False, "ipv4_only": True}
    cmp = stack_comparison([DUAL[0], twin])  # type: ignore[list-item]
    assert cmp["pairings"] == ["chromium x chromium", "chromium x chromium (ipv4-only)"]
    col = cmp["rows"][0]["columns"]["chromium x chromium (ipv4-only)"]
    assert col["family"] == "ipv4" and col["sides"][1]["stack"] == "chromium (ipv4-only)"
