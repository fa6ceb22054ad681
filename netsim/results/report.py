"""Self-contained HTML report of one run: reports/<run-id>/index.html.

One file, no external URLs: CSS inline, heatmaps as coloured HTML tables (crisp, fast), the connect-time
chart (netsim/results/charts.py) as an embedded PNG. Records may be partial (a crashed session still leaves
one), so every field is read with `.get()` here.
"""

from __future__ import annotations

import os
import secrets
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2

from netsim import runfiles
from netsim.records import ResultRecord, Summary
from netsim.results import reader, store, tables
from netsim.results.charts import COLOURS, OTHER_COLOUR, connect_time_chart
from netsim.results.report_run import failures, run_meta
from netsim.results.sessions import (
    fmt_s,
    mapping,
    needs_relay_word,
    relay_needed_text,
    session_id,
    session_view,
)
from netsim.results.stacks import pairing_name, stack_comparison
from netsim.vocab import AIORTC, CALL_OUTCOMES, MATRIX_GROUPS, MATRIX_TURN

TEMPLATE = "report.html.j2"
TEMPLATE_DIR = Path(__file__).parent / "templates"
INDEX_FILE = "index.html"
LATEST_LINK = "latest"


# --- building blocks ---


def _gradient(dist: list[tuple[str, int]]) -> str:
    """CSS background: one colour, or hard-stop stripes proportional to the distribution."""
    total = sum(n for _, n in dist)
    if len(dist) == 1:
        return COLOURS.get(dist[0][0], OTHER_COLOUR)
    stops, at = [], 0.0
    for label, n in dist:
        colour = COLOURS.get(label, OTHER_COLOUR)
        end = at + 100.0 * n / total
        stops.append(f"{colour} {at:.1f}% {end:.1f}%")
        at = end
    return f"linear-gradient(90deg, {', '.join(stops)})"


def _heatmap(records: Sequence[ResultRecord], groups: Sequence[str], kind: str) -> dict[str, Any] | None:
    """Rows/columns of coloured cells of the groups' sessions, or None when there are none.

    kind 'verdict' (label = outcome) or 'needs_relay'.
    """
    cells = tables.group_cells(records, groups)
    if not cells:
        return None
    rows, cols = tables.cell_axes(cells)
    grid = []
    for a in rows:
        line = [_heatmap_cell(records, cells[(a, b)], kind) if (a, b) in cells else None for b in cols]
        grid.append({"nat": a, "cells": line})
    return {"cols": cols, "rows": grid}


def _heatmap_cell(records: Sequence[ResultRecord], positions: list[int], kind: str) -> dict[str, Any]:
    recs = [records[i] for i in positions]
    if kind == "verdict":
        label = tables.cell_label(recs)
        colour_dist = tables.distribution(tables.coarse_outcome(r) for r in recs)
    else:
        words = [needs_relay_word(r) for r in recs]
        label = tables.agreed_label(words)
        colour_dist = tables.distribution(words)
    tooltip = "\n".join(
        f"{r.get('scenario', '?')} #{r.get('repeat', 0)}: {tables.outcome_label(r)}"
        + (f" ({r.get('group')})" if kind != "verdict" else "")
        for r in recs
    )
    # Where a stack switched pairs after connecting, the cell also says how the first pairs went.
    switched = [r for r in recs if r.get("first_verdict") and r.get("first_verdict") != r.get("verdict")]
    first = tables.agreed_label([f"first {r.get('first_verdict')}" for r in switched]) if switched else None
    return {
        "label": label,
        "first": first if kind == "verdict" else None,
        # Which family won, where a session gathered IPv6 (dual-stack labs): the address-family dimension.
        "family": tables.family_label(recs) if kind == "verdict" else None,
        "background": _gradient(colour_dist),
        "href": "#" + session_id(_most_interesting(records, positions)),
        "n": len(recs),
        "mismatch": any(r.get("mismatch") for r in recs),
        "title": tooltip,
    }


def _most_interesting(records: Sequence[ResultRecord], positions: list[int]) -> int:
    """Position a cell links to: its first unexpected session, else its first failed one, else its first."""
    for i in positions:
        if records[i].get("mismatch"):
            return i
    for i in positions:
        if tables.coarse_outcome(records[i]) == tables.FAILED_LABEL:
            return i
    return positions[0]


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def _share_rows(summary: Summary) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [{"name": "all sessions", "overall": True, **summary}]
    rows += [{"name": kind, "overall": False, **shares} for kind, shares in summary["per_nat"].items()]
    for row in rows:
        for key in ("relay_needed_share", "relay_won_share"):
            row[key + "_pct"] = _pct(row.get(key))
            row[key + "_w"] = 0 if row.get(key) is None else round(100 * row[key], 1)
        row["relay_needed_share_pct"] = relay_needed_text(
            row["relay_needed_share"], row["relay_needed_unknown"]
        )
    return rows


def _group_rows(records: Sequence[ResultRecord]) -> list[dict[str, Any]]:
    """One row per suite group (matrix groups first): sessions, passed, failed, verdict counts."""
    order = {g: i for i, g in enumerate(MATRIX_GROUPS)}
    groups = sorted({str(r.get("group") or "?") for r in records}, key=lambda g: (order.get(g, 9), g))
    rows = []
    for g in groups:
        mine = [r for r in records if str(r.get("group") or "?") == g]
        outcomes = Counter(tables.outcome(r) for r in mine)
        rows.append(
            {
                "group": g,
                "sessions": len(mine),
                "passed": outcomes["passed"],
                "failed": outcomes["violated"],
                "unchecked": outcomes["unchecked"],
                "inconclusive": outcomes["inconclusive"],
                "verdicts": Counter(tables.coarse_outcome(r) for r in mine),
            }
        )
    return rows


# --- sessions ---


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,  # a typo in the template fails loudly in tests
    )
    env.filters["pct"] = _pct
    return env


def report_context(
    run_dir: Path, records: Sequence[ResultRecord], skipped: Sequence[str] = ()
) -> dict[str, Any]:
    """Everything the template shows, from the run's records in file order (session i is `#s-i`), and the
    lines the reader skipped."""
    summary = store.summarize(records)
    heatmaps = []
    groups = _matrix_groups(records)
    # needs_relay is a property of the pairing: pool the suite's matrices, else every matrix shown.
    pooled = [g for g in groups if g in MATRIX_GROUPS] or groups  # aiortc's matrices, when there are
    for group in groups:
        hm = _heatmap(records, [group], "verdict")
        if hm is not None:
            heatmaps.append({"group": group, "title": f"{group}: verdict and winning pair", **hm})
    return {
        "meta": run_meta(run_dir, records, summary),
        "failures": failures(records),
        "summary": summary,
        "relay_needed": relay_needed_text(summary["relay_needed_share"], summary["relay_needed_unknown"]),
        "heatmaps": heatmaps,
        "needs_relay_map": _heatmap(records, pooled, "needs_relay"),
        "shares": _share_rows(summary),
        "groups": _group_rows(records),
        "stacks": _stack_rows(records),
        "comparison": stack_comparison(records),
        "calls": _call_rows(records),
        "chart": connect_time_chart(records),
        "sessions": [
            {**session_view(run_dir, i, r), "families": tables.families_text(r)}
            for i, r in enumerate(records)
        ],
        "colours": COLOURS,
        "skipped": list(skipped),
    }


def _call_rows(records: Sequence[ResultRecord]) -> list[dict[str, Any]]:
    """Held calls per scenario and stack pairing: how many were held, recovered, dropped."""
    rows: dict[tuple[str, str], Counter[str]] = {}
    for r in records:
        call = mapping(r.get("call"))
        if not call:
            continue
        stacks = " x ".join(mapping(r.get(side)).get("peer") or AIORTC for side in ("a", "b"))
        key = (str(r.get("scenario") or "?"), stacks)
        rows.setdefault(key, Counter())[str(call.get("outcome"))] += 1
    return [
        {"scenario": scn, "stacks": stacks, **{o: n.get(o, 0) for o in CALL_OUTCOMES}}
        for (scn, stacks), n in sorted(rows.items())
    ]


def _stack_rows(records: Sequence[ResultRecord]) -> list[dict[str, Any]]:
    """One row per stack pairing: relay won/needed shares, sessions whose first pair was not the settled
    one, the two sides disagreeing at the end, and the median time to the settled pair."""
    by_pair: dict[str, list[ResultRecord]] = {}
    for r in records:
        by_pair.setdefault(pairing_name(r), []).append(r)
    rows = []
    for name, recs in sorted(by_pair.items()):
        shares = store.summarize(recs)
        settled = sorted(float(s) for r in recs if (s := r.get("settled_s")) is not None)
        rows.append(
            {
                "stacks": name,
                "sessions": len(recs),
                "relay_won": _pct(shares["relay_won_share"]),
                "relay_needed": relay_needed_text(
                    shares["relay_needed_share"], shares["relay_needed_unknown"]
                ),
                "switched": sum(
                    bool(r.get("first_verdict")) and r.get("first_verdict") != r.get("verdict") for r in recs
                ),
                "disagree": sum(bool(r.get("disagreement")) for r in recs),
                "settled_median": fmt_s(settled[len(settled) // 2]) if settled else "–",
                "ipv6_won": _ipv6_won(recs),
            }
        )
    return rows


def _ipv6_won(records: Sequence[ResultRecord]) -> str:
    """Of the sessions where a side gathered IPv6, how many settled on an IPv6 pair ('–' for none)."""
    dual = [r for r in records if tables.dual_stack(r)]
    if not dual:
        return "–"
    return f"{sum(tables.won_family(r) == 'ipv6' for r in dual)} of {len(dual)}"


def _matrix_groups(records: Sequence[ResultRecord]) -> list[str]:
    """Groups shown as NAT x NAT matrices: the suite's matrices first, then any group with NAT labels on
    more than one cell (a researcher's own scenarios, populations)."""
    cells: dict[str, set[tuple[str, str]]] = {}
    for r in records:
        if r.get("nat_a") and r.get("nat_b"):
            cells.setdefault(str(r.get("group") or "?"), set()).add((str(r["nat_a"]), str(r["nat_b"])))
    shown = [g for g, c in cells.items() if g.startswith(MATRIX_GROUPS) or len(c) > 1]
    # The suite's matrices first (with TURN, then without), each stack pairing after aiortc's.
    return sorted(shown, key=lambda g: (not g.startswith(MATRIX_GROUPS), not g.startswith(MATRIX_TURN), g))


def render(run_dir: Path, records: Sequence[ResultRecord], skipped: Sequence[str] = ()) -> str:
    """The report page of these records (run_dir: where relative links such as pcaps point from)."""
    return _environment().get_template(TEMPLATE).render(**report_context(run_dir, records, skipped))


def link_latest(reports_root: Path, run_dir: Path) -> Path:
    """Make reports_root/latest a symlink to run_dir, replaced atomically (rename over the old link).

    The target is relative when run_dir is inside reports_root (the reports directory can move).
    Raises FileExistsError when reports_root/latest is something other than a symlink.
    """
    link = reports_root / LATEST_LINK
    if link.exists() and not link.is_symlink():
        raise FileExistsError(f"{link} exists and is not a symlink; not replacing it")
    same_root = run_dir.parent.resolve() == reports_root.resolve()
    target = run_dir.name if same_root else str(run_dir.resolve())
    tmp = reports_root / f".{LATEST_LINK}.{secrets.token_hex(8)}.tmp"  # unpredictable: nothing planted
    os.symlink(target, tmp)
    os.replace(tmp, link)
    return link


def build_report(
    run_dir: Path | str, reports_root: Path | str | None = None, *, point_latest: bool = True
) -> Path:
    """Write run_dir/index.html from run_dir/results.jsonl and return its path.

    point_latest: also make reports_root/latest (reports_root defaults to run_dir's parent) point at
    run_dir; False rebuilds an older run's page without moving `latest`. run_dir may be `reports/latest`
    itself. Raises FileNotFoundError naming the missing directory or results file, and FileExistsError when
    `latest` exists and is not a symlink.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory not found: {run_dir}")
    run_dir = run_dir.resolve()  # `reports/latest` itself may be given
    data = reader.read_run(run_dir)
    html = render(run_dir, data.records, [s.text(short=True) for s in data.skipped])
    # A browser or CI never sees a half-written page, and a planted symlink never receives it.
    out = runfiles.write_file(run_dir / INDEX_FILE, html)
    if point_latest:
        link_latest(Path(reports_root) if reports_root is not None else run_dir.parent, run_dir)
    return out
