"""Self-contained HTML report of one run: reports/<run-id>/index.html (issue 6).

One file, no external URLs: CSS inline, heatmaps as coloured HTML tables (crisp, fast), connect-time chart as
an embedded PNG. Records may be partial (a crashed session still leaves one), so every field is optional here.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import re
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from netsim.results import store as results

TEMPLATE = "report.html.j2"
TEMPLATE_DIR = Path(__file__).parent / "templates"
INDEX_FILE = "index.html"
LATEST_LINK = "latest"
MATRIX_GROUPS = ("matrix-turn", "matrix-noturn")

# Verdict colours: greens for direct, amber for relay, red for failure (readable with the label pill on top).
COLOURS = {
    "direct-host": "#2e7d32",
    "direct": "#7cc47f",
    "relay": "#f6b04d",
    "FAILED": "#e0524f",
    "needed": "#f6b04d",
    "not needed": "#7cc47f",
    "unknown": "#c4c4c4",
}
OTHER_COLOUR = "#9e9e9e"
# Lines need more contrast between the two greens than filled cells do.
LINE_COLOURS = {"direct-host": "#1b5e20", "direct": "#5cb860", "relay": "#ef8f00"}


# --- building blocks ---


def _session_id(index: int) -> str:
    return f"s-{index}"


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


def _needs_relay_word(record: Mapping[str, Any]) -> str:
    value = record.get("needs_relay")
    return "unknown" if value is None else ("needed" if value else "not needed")


def _heatmap(
    cells: Mapping[tuple[str, str], list[tuple[int, Mapping[str, Any]]]], kind: str
) -> dict[str, Any] | None:
    """Rows/columns of coloured cells; kind 'verdict' (label = outcome) or 'needs_relay'."""
    if not cells:
        return None
    rows = sorted({a for a, _ in cells}, key=results.nat_sort_key)
    cols = sorted({b for _, b in cells}, key=results.nat_sort_key)
    grid = []
    for a in rows:
        line = []
        for b in cols:
            entries = cells.get((a, b))
            line.append(_heatmap_cell(entries, kind) if entries else None)
        grid.append({"nat": a, "cells": line})
    return {"cols": cols, "rows": grid}


def _heatmap_cell(entries: list[tuple[int, Mapping[str, Any]]], kind: str) -> dict[str, Any]:
    recs = [r for _, r in entries]
    if kind == "verdict":
        label = results.cell_label(recs)
        colour_dist = results.distribution([results.coarse_outcome(r) for r in recs])
    else:
        words = [_needs_relay_word(r) for r in recs]
        colour_dist = results.distribution(words)
        label = words[0] if len(colour_dist) == 1 else "/".join(f"{w} {n}" for w, n in colour_dist)
    tooltip = "\n".join(
        f"{r.get('scenario', '?')} #{r.get('repeat', 0)}: {results.outcome_label(r)}"
        + (f" ({r.get('group')})" if kind != "verdict" else "")
        for r in recs
    )
    return {
        "label": label,
        "background": _gradient(colour_dist),
        "href": "#" + _session_id(_most_interesting(entries)),
        "n": len(recs),
        "mismatch": any(r.get("mismatch") for r in recs),
        "failed": any(r.get("passed") is not True for r in recs),
        "title": tooltip,
    }


def _most_interesting(entries: list[tuple[int, Mapping[str, Any]]]) -> int:
    """Index a cell links to: its first unexpected session, else first failed one, else the first."""
    for test in (lambda r: bool(r.get("mismatch")), lambda r: r.get("passed") is not True, lambda r: True):
        for i, r in entries:
            if test(r):
                return i
    return entries[0][0]


def _indexed_cells(
    indexed: Iterable[tuple[int, Mapping[str, Any]]], groups: Iterable[str]
) -> dict[tuple[str, str], list[tuple[int, Mapping[str, Any]]]]:
    wanted = set(groups)
    cells: dict[tuple[str, str], list[tuple[int, Mapping[str, Any]]]] = {}
    for i, r in indexed:
        if r.get("group") in wanted and r.get("nat_a") and r.get("nat_b"):
            cells.setdefault((str(r["nat_a"]), str(r["nat_b"])), []).append((i, r))
    return cells


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def _share_rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = [{"name": "all sessions", "overall": True, **summary}]
    rows += [{"name": kind, "overall": False, **vals} for kind, vals in summary["per_nat"].items()]
    for row in rows:
        for key in ("relay_needed_share", "relay_won_share"):
            row[key + "_pct"] = _pct(row.get(key))
            row[key + "_w"] = 0 if row.get(key) is None else round(100 * row[key], 1)
    return rows


def _group_rows(records: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    order = {g: i for i, g in enumerate(MATRIX_GROUPS)}
    groups = sorted({str(r.get("group") or "?") for r in records}, key=lambda g: (order.get(g, 9), g))
    rows = []
    for g in groups:
        mine = [r for r in records if str(r.get("group") or "?") == g]
        verdicts = Counter(results.coarse_outcome(r) for r in mine)
        passed = sum(r.get("passed") is True for r in mine)
        rows.append(
            {
                "group": g,
                "sessions": len(mine),
                "passed": passed,
                "failed": len(mine) - passed,
                "verdicts": verdicts,
            }
        )
    return rows


def _distinct(records: list[Mapping[str, Any]], key: str) -> str:
    values = [str(v[key]) for r in records if isinstance(v := r.get("versions"), Mapping) and v.get(key)]
    uniq = list(dict.fromkeys(values))
    return ", ".join(uniq) if uniq else "unknown"


def _meta(run_dir: Path, records: list[Mapping[str, Any]], summary: Mapping[str, Any]) -> dict[str, Any]:
    stamps = sorted(str(r["started_at"]) for r in records if r.get("started_at"))
    if stamps:
        date = stamps[0] if stamps[0] == stamps[-1] else f"{stamps[0]} – {stamps[-1]}"
    elif (run_dir / results.RESULTS_FILE).exists():
        mtime = (run_dir / results.RESULTS_FILE).stat().st_mtime
        date = datetime.fromtimestamp(mtime, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") + " (file time)"
    else:
        date = "unknown"
    scenarios: dict[str, bool] = {}
    for r in records:
        name = str(r.get("scenario") or "?")
        scenarios[name] = scenarios.get(name, True) and r.get("passed") is True
    return {
        "run_id": summary.get("run_id") or run_dir.name,
        "date": date,
        "generated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "versions": {k: _distinct(records, k) for k in ("aiortc", "aioice", "coturn", "kernel", "python")},
        "scenarios_passed": sum(scenarios.values()),
        "scenarios_failed": len(scenarios) - sum(scenarios.values()),
    }


# --- sessions ---


def _fmt_s(value: Any) -> str:
    return f"{value:.3f} s" if isinstance(value, int | float) else "–"


def _expected_text(expected: Any) -> str:
    if not isinstance(expected, Mapping):
        return "–"
    connect = expected.get("connect")
    nr = expected.get("needs_relay")
    parts = ["connect" if connect else "no connect" if connect is False else "connect ?"]
    if nr is not None:
        parts.append("via relay" if nr else "direct")
    return ", ".join(parts)


def _str_list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _peer_view(peer: Any) -> dict[str, Any]:
    peer = peer if isinstance(peer, Mapping) else {}
    cands = peer.get("candidates") if isinstance(peer.get("candidates"), Mapping) else {}
    selected = None
    if peer.get("local") or peer.get("local_type"):
        selected = {
            "local": f"{peer.get('local') or '?'} ({peer.get('local_type') or '?'})",
            "remote": f"{peer.get('remote') or '?'} ({peer.get('remote_type') or '?'})",
        }
    return {
        "role": peer.get("role") or "?",
        "polite": peer.get("polite"),
        "state": peer.get("state") or "?",
        "turn_transport": peer.get("turn_transport"),
        "selected": selected,
        "local_cands": _str_list(cands.get("local")),
        "remote_cands": _str_list(cands.get("remote")),
        "timings": peer.get("timings") if isinstance(peer.get("timings"), Mapping) else {},
    }


def _timeline(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    events = []
    for side in ("a", "b"):
        peer = record.get(side)
        for ev in (peer.get("states") or []) if isinstance(peer, Mapping) else []:
            if isinstance(ev, Mapping):
                t = ev.get("t")
                t = t if isinstance(t, int | float) else None
                events.append(
                    {"t": t, "side": side, "what": ev.get("what") or "", "state": ev.get("state") or ""}
                )
    events.sort(key=lambda e: (e["t"] is None, e["t"] or 0.0, e["side"]))
    return events


def _pcap_href(run_dir: Path, pcap: Any) -> dict[str, Any] | None:
    """Link relative to index.html; never an external URL."""
    if not pcap:
        return None
    text = str(pcap)
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", text):  # a URL (http:, javascript:, ...): show, never link
        return {"text": text, "href": None, "exists": False}
    path = Path(text)
    rel = os.path.relpath(path, run_dir) if path.is_absolute() else text
    return {"text": text, "href": rel, "exists": (run_dir / rel).exists()}


def _session(run_dir: Path, index: int, r: Mapping[str, Any]) -> dict[str, Any]:
    timings = r.get("timings") if isinstance(r.get("timings"), Mapping) else {}
    return {
        "id": _session_id(index),
        "n": index + 1,
        "scenario": r.get("scenario") or "?",
        "group": r.get("group") or "?",
        "nat_a": r.get("nat_a") or "?",
        "nat_b": r.get("nat_b") or "?",
        "turn": r.get("turn") or "?",
        "policy": r.get("policy") or "?",
        "glare": bool(r.get("glare")),
        "repeat": r.get("repeat", 0),
        "verdict": results.coarse_outcome(r),
        "outcome": results.outcome_label(r),
        "pair": results.pair_types(r) or "–",
        "needs_relay": _needs_relay_word(r),
        "expected": _expected_text(r.get("expected")),
        "passed": r.get("passed") is True,
        "mismatch": r.get("mismatch"),
        "reason": r.get("reason"),
        "connect": _fmt_s(r.get("connect_s")),
        "timings": timings,
        "a": _peer_view(r.get("a")),
        "b": _peer_view(r.get("b")),
        "timeline": _timeline(r),
        "coturn_log": r.get("coturn_log"),
        "pcap": _pcap_href(run_dir, r.get("pcap")),
        "started_at": r.get("started_at") or "?",
    }


# --- chart ---


def connect_time_chart(records: list[Mapping[str, Any]]) -> str | None:
    """Base64 PNG of connect-time distributions per verdict (box + points, and ECDF), or None without data."""
    by_verdict: dict[str, list[float]] = {}
    for r in records:
        t = r.get("connect_s")
        if isinstance(t, int | float) and r.get("verdict") not in (None, "failed"):
            by_verdict.setdefault(str(r["verdict"]), []).append(float(t))
    if not by_verdict:
        return None
    import matplotlib

    matplotlib.use("Agg")  # never needs a display; pyplot is avoided so no global figure state leaks
    from matplotlib.figure import Figure

    order = [v for v in results.VERDICTS if v in by_verdict] + sorted(set(by_verdict) - set(results.VERDICTS))
    fig = Figure(figsize=(10, 3.4), dpi=110, layout="constrained")
    box_ax, cdf_ax = fig.subplots(1, 2, width_ratios=[1.2, 1])
    data = [sorted(by_verdict[v]) for v in order]
    colours = [COLOURS.get(v, OTHER_COLOUR) for v in order]
    # `vert` is deprecated from 3.10 on, `orientation` does not exist before it
    horizontal = {"orientation": "horizontal"} if matplotlib.__version_info__ >= (3, 10) else {"vert": False}
    parts = box_ax.boxplot(data, widths=0.55, patch_artist=True, showfliers=False, **horizontal)
    for patch, colour in zip(parts["boxes"], colours, strict=True):
        patch.set(facecolor=colour, alpha=0.45, edgecolor="#444")
    for i, (values, colour) in enumerate(zip(data, colours, strict=True), 1):
        # deterministic jitter so repeated builds give the same picture
        jitter = [i + 0.18 * (((k * 7919) % 97) / 97 - 0.5) for k in range(len(values))]
        box_ax.scatter(values, jitter, s=9, color=colour, edgecolors="#333", linewidths=0.3, zorder=3)
    box_ax.set_yticks(range(1, len(order) + 1), [f"{v}\n(n={len(by_verdict[v])})" for v in order])
    box_ax.set_xlabel("connect time (s)")
    box_ax.set_title("Connect time by verdict", fontsize=10)
    for values, colour, v in zip(data, colours, order, strict=True):
        ys = [(k + 1) / len(values) for k in range(len(values))]
        cdf_ax.step(values, ys, where="post", color=LINE_COLOURS.get(v, colour), label=v, lw=1.8)
    cdf_ax.set_xlabel("connect time (s)")
    cdf_ax.set_ylabel("share of sessions")
    cdf_ax.set_ylim(0, 1.02)
    cdf_ax.set_title("Cumulative distribution", fontsize=10)
    cdf_ax.legend(fontsize=8, frameon=False, loc="lower right")
    for ax in (box_ax, cdf_ax):
        ax.grid(axis="x", alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})  # no tool URL inside the page
    return base64.b64encode(buf.getvalue()).decode("ascii")


# --- report ---


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


def report_context(run_dir: Path, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    summary = results.summarize(records)
    indexed = list(enumerate(records))
    heatmaps = []
    for group in MATRIX_GROUPS:
        hm = _heatmap(_indexed_cells(indexed, [group]), "verdict")
        if hm is not None:
            heatmaps.append({"group": group, "title": f"{group}: verdict and winning pair", **hm})
    nr_map = _heatmap(_indexed_cells(indexed, MATRIX_GROUPS), "needs_relay")
    return {
        "meta": _meta(run_dir, list(records), summary),
        "summary": summary,
        "heatmaps": heatmaps,
        "needs_relay_map": nr_map,
        "shares": _share_rows(summary),
        "groups": _group_rows(list(records)),
        "chart": connect_time_chart(list(records)),
        "sessions": [_session(run_dir, i, r) for i, r in indexed],
        "colours": COLOURS,
    }


def render(run_dir: Path, records: Sequence[Mapping[str, Any]]) -> str:
    return _environment().get_template(TEMPLATE).render(**report_context(run_dir, records))


def point_latest(reports_root: Path, run_dir: Path) -> Path:
    """Make reports_root/latest a symlink to run_dir, replaced atomically (rename over the old link)."""
    link = reports_root / LATEST_LINK
    if link.exists() and not link.is_symlink():
        raise FileExistsError(f"{link} exists and is not a symlink; not replacing it")
    same_root = run_dir.parent.resolve() == reports_root.resolve()
    target = run_dir.name if same_root else str(run_dir.resolve())
    tmp = reports_root / f".{LATEST_LINK}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, link)
    return link


def build_report(run_dir: Path, reports_root: Path | None = None) -> Path:
    """Write run_dir/index.html from run_dir/results.jsonl and point reports_root/latest at run_dir.

    reports_root defaults to run_dir's parent. Raises FileNotFoundError naming the missing path.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory not found: {run_dir}")
    run_dir = run_dir.resolve()  # `reports/latest` itself may be given
    records = results.load_records(run_dir)
    html = render(run_dir, records)
    out = run_dir / INDEX_FILE
    tmp = run_dir / f".{INDEX_FILE}.{os.getpid()}.tmp"
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, out)  # a browser or CI never sees a half-written page
    point_latest(Path(reports_root) if reports_root is not None else run_dir.parent, run_dir)
    return out


# --- CLI glue (wired from netsim/cli.py) ---


def add_cli(sub: Any) -> argparse.ArgumentParser:
    """Register `report RUN_DIR` on an argparse subparsers object; sets func=cli_report."""
    p: argparse.ArgumentParser = sub.add_parser(
        "report",
        help="build the HTML report of a run",
        description="Write RUN_DIR/index.html from results.jsonl.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="run directory, e.g. reports/latest")
    p.add_argument(
        "--reports-root",
        type=Path,
        default=None,
        help="where the `latest` link lives (default: RUN_DIR's parent)",
    )
    p.set_defaults(func=cli_report)
    return p


def cli_report(args: argparse.Namespace) -> int:
    try:
        out = build_report(args.run_dir, getattr(args, "reports_root", None))
    except (FileNotFoundError, FileExistsError) as exc:
        print(f"netsim report: error: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0
