"""Comparing two runs cell by cell: which verdicts, needs_relay answers, calls or winning pairs changed.

A cell is a scenario (repeats pooled); population sessions pool by their NAT pair, since two draws of the
same mix hold different numbers of each pairing. Distributions are compared as shares, so a cell run three
times in one run and five in the other changes only if what happened changed.

Aspects of a cell (ASPECTS): the settled `verdict`, the `first_verdict` (the pair at connect), whether a
relay was needed (`needs_relay`), whether it connected at all (`connect`), a held call's outcome (`call`),
the winning `pair` (peer a's local and remote candidate types: `host -> relay` is a direct path from a to
b's relay, `relay <-> relay` both sides relayed), and `presence` (a cell in one run only). Which changes
fail the comparison is the caller's choice (`--fail-on`): aiortc's nomination races flip the winning pair
between identical runs, so a pair change alone is often noise.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import jinja2

from netsim import runfiles
from netsim.errors import printable
from netsim.records import ResultRecord
from netsim.results.tables import agreed_label, coarse_outcome
from netsim.vocab import FAILED, POPULATION

PRESENCE: Final = "presence"


def pair_label(record: ResultRecord) -> str:
    """Peer a's winning pair by candidate type: 'srflx -> prflx', 'host -> relay', 'relay <-> relay'
    (the same type on both ends), or 'none' when no pair was selected."""
    peer = record.get("a")
    local, remote = (
        (peer.get("local_type"), peer.get("remote_type")) if isinstance(peer, dict) else (None, None)
    )
    if not local or not remote:
        return "none"
    return f"{local} <-> {remote}" if local == remote else f"{local} -> {remote}"


def _call(record: ResultRecord) -> str:
    call = record.get("call")
    return str(call.get("outcome")) if isinstance(call, dict) else "no call"


LABELS: Final[dict[str, Callable[[ResultRecord], str]]] = {
    "verdict": coarse_outcome,
    "first_verdict": lambda r: str(r.get("first_verdict") or r.get("verdict")),
    "needs_relay": lambda r: str(r.get("needs_relay")).lower(),
    "connect": lambda r: "connected" if r.get("verdict") not in (FAILED, None) else "not connected",
    "call": _call,
    "pair": pair_label,
}
ASPECTS: Final = tuple(LABELS)
FAIL_ASPECTS: Final = (*ASPECTS, PRESENCE)  # what --fail-on accepts


def cell_key(record: ResultRecord) -> str:
    if record.get("group") == POPULATION:
        return f"{POPULATION}/{record.get('nat_a')}__{record.get('nat_b')}"
    return str(record.get("scenario") or f"{record.get('nat_a')}__{record.get('nat_b')}")


def _shares(labels: list[str]) -> dict[str, float]:
    counts = Counter(labels)
    return {label: round(n / len(labels), 3) for label, n in counts.items()}


@dataclass(frozen=True)
class Change:
    """One aspect of one cell that differs between the runs (`before`/`after` are labels with counts)."""

    cell: str
    aspect: str  # one of ASPECTS, or presence
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
            before, after = "-" if not ra else "present", "-" if not rb else "present"
            changes.append(Change(key, PRESENCE, before, after, len(ra), len(rb)))
            continue
        for aspect, label in LABELS.items():
            la, lb = [label(r) for r in ra], [label(r) for r in rb]
            if _shares(la) != _shares(lb):
                changes.append(Change(key, aspect, _with_counts(la), _with_counts(lb), len(ra), len(rb)))
    return changes


def parse_aspects(text: str) -> tuple[str, ...]:
    """`needs_relay,connect` -> the aspects; ValueError names an unknown one."""
    aspects = tuple(dict.fromkeys(a.strip() for a in text.split(",") if a.strip()))
    if not aspects:
        raise ValueError(f"give at least one aspect ({', '.join(FAIL_ASPECTS)})")
    for aspect in aspects:
        if aspect not in FAIL_ASPECTS:
            raise ValueError(f"unknown aspect {aspect!r} (choose from {', '.join(FAIL_ASPECTS)})")
    return aspects


def failing(changes: Iterable[Change], aspects: Collection[str]) -> list[Change]:
    """The changes in the aspects asked to fail on."""
    return [c for c in changes if c.aspect in aspects]


def _with_counts(labels: list[str]) -> str:
    if len(set(labels)) == 1:
        return f"{labels[0]} {len(labels)}"
    return agreed_label(labels)


def format_changes(changes: list[Change], name_a: str, name_b: str, fail_on: Collection[str] = ()) -> str:
    """A plain-text table of changes (or a line saying there are none); with `fail_on`, the changes in
    those aspects are marked FAIL and counted. Text from records is shown escaped (errors.printable): a
    cell name can neither fake a line nor send a terminal an escape sequence."""
    name_a, name_b = printable(name_a), printable(name_b)
    if not changes:
        return f"no cell changed between {name_a} and {name_b}"
    rows = [("cell", "aspect", name_a, name_b, "")]
    rows += [
        (
            printable(c.cell),
            c.aspect,
            printable(c.before),
            printable(c.after),
            "FAIL" if c.aspect in fail_on else "",
        )
        for c in changes
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(text.ljust(w) for text, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths[:4]))
    tail = f"{len({c.cell for c in changes})} cell(s) changed"
    if fail_on:
        bad = failing(changes, fail_on)
        tail += f"; {len(bad)} change(s) in {', '.join(fail_on)}"
    return "\n".join(lines) + "\n" + tail


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>netsim compare {{ a }} / {{ b }}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f4f4f4}
tr.fail td{background:#fdecea}</style></head>
<body><h1>{{ a }} &rarr; {{ b }}</h1>
{% if changes %}<p>{{ cells }} cell(s) changed.{% if fail_on %} Changes in {{ fail_on | join(', ') }} fail
the comparison (marked).{% endif %}</p>
<table><tr><th>cell</th><th>aspect</th><th>{{ a }}</th><th>{{ b }}</th></tr>
{% for c in changes %}<tr{% if c.aspect in fail_on %} class="fail"{% endif %}><td>{{ c.cell }}</td>
<td>{{ c.aspect }}</td><td>{{ c.before }}</td><td>{{ c.after }}</td></tr>{% endfor %}</table>
{% else %}<p>No cell changed.</p>{% endif %}</body></html>
"""


def write_html(
    changes: list[Change], name_a: str, name_b: str, path: Path, fail_on: Collection[str] = ()
) -> None:
    """The changes as a small self-contained page."""
    template = jinja2.Environment(autoescape=True).from_string(_PAGE)
    cells_changed = len({c.cell for c in changes})
    page = template.render(changes=changes, a=name_a, b=name_b, cells=cells_changed, fail_on=list(fail_on))
    runfiles.write_file(path, page)  # never through a symlink, never half a page
