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
