"""Comparing two runs cell by cell: which verdicts, needs_relay answers or winning pair types changed.

A cell is a scenario (repeats pooled); population sessions pool by their NAT pair, since two draws of the
same mix hold different numbers of each pairing. Distributions are compared as shares, so a cell run three
times in one run and five in the other changes only if what happened changed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import jinja2

from netsim.records import ResultRecord
from netsim.results.tables import agreed_label, coarse_outcome, outcome_label
from netsim.vocab import POPULATION

ASPECTS = ("verdict", "needs_relay", "pair")


def cell_key(record: ResultRecord) -> str:
    if record.get("group") == POPULATION:
        return f"{POPULATION}/{record.get('nat_a')}__{record.get('nat_b')}"
    return str(record.get("scenario") or f"{record.get('nat_a')}__{record.get('nat_b')}")


def _labels(records: list[ResultRecord], aspect: str) -> list[str]:
    if aspect == "verdict":
        return [coarse_outcome(r) for r in records]
    if aspect == "needs_relay":
        return [str(r.get("needs_relay")).lower() for r in records]
    return [outcome_label(r) for r in records]


def _shares(labels: list[str]) -> dict[str, float]:
    counts = Counter(labels)
    return {label: round(n / len(labels), 3) for label, n in counts.items()}


@dataclass(frozen=True)
class Change:
    """One aspect of one cell that differs between the runs (`before`/`after` are labels with counts)."""

    cell: str
    aspect: str  # verdict | needs_relay | pair | presence
    before: str
    after: str
    n_before: int
    n_after: int


def cells(records: Iterable[ResultRecord]) -> dict[str, list[ResultRecord]]:
    out: dict[str, list[ResultRecord]] = {}
    for r in records:
        out.setdefault(cell_key(r), []).append(r)
    return out


def compare(run_a: Iterable[ResultRecord], run_b: Iterable[ResultRecord]) -> list[Change]:
    """Every changed aspect of every cell, cells in sorted order; a cell in one run only is a change."""
    a, b = cells(run_a), cells(run_b)
    changes: list[Change] = []
    for key in sorted(set(a) | set(b)):
        ra, rb = a.get(key, []), b.get(key, [])
        if not ra or not rb:
            changes.append(
                Change(
                    key,
                    "presence",
                    "-" if not ra else "present",
                    "-" if not rb else "present",
                    len(ra),
                    len(rb),
                )
            )
            continue
        for aspect in ASPECTS:
            la, lb = _labels(ra, aspect), _labels(rb, aspect)
            if _shares(la) != _shares(lb):
                changes.append(Change(key, aspect, _with_counts(la), _with_counts(lb), len(ra), len(rb)))
    return changes


def _with_counts(labels: list[str]) -> str:
    if len(set(labels)) == 1:
        return f"{labels[0]} {len(labels)}"
    return agreed_label(labels)


def format_changes(changes: list[Change], name_a: str, name_b: str) -> str:
    """A plain-text table of changes (or a line saying there are none)."""
    if not changes:
        return f"no cell changed between {name_a} and {name_b}"
    rows = [("cell", "aspect", name_a, name_b)] + [(c.cell, c.aspect, c.before, c.after) for c in changes]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(text.ljust(w) for text, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + f"\n{len({c.cell for c in changes})} cell(s) changed"


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>netsim compare {{ a }} / {{ b }}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f4f4f4}</style></head>
<body><h1>{{ a }} &rarr; {{ b }}</h1>
{% if changes %}<p>{{ cells }} cell(s) changed.</p>
<table><tr><th>cell</th><th>aspect</th><th>{{ a }}</th><th>{{ b }}</th></tr>
{% for c in changes %}<tr><td>{{ c.cell }}</td><td>{{ c.aspect }}</td>
<td>{{ c.before }}</td><td>{{ c.after }}</td></tr>{% endfor %}</table>
{% else %}<p>No cell changed.</p>{% endif %}</body></html>
"""


def write_html(changes: list[Change], name_a: str, name_b: str, path: Path) -> None:
    """The changes as a small self-contained page."""
    template = jinja2.Environment(autoescape=True).from_string(_PAGE)
    cells_changed = len({c.cell for c in changes})
    path.write_text(template.render(changes=changes, a=name_a, b=name_b, cells=cells_changed))
