"""The report's stack comparison: per NAT cell, what each stack pairing of the run did there.

For every cell (NAT of a, NAT of b, TURN) and every stack pairing that ran it: which candidate types each
side's first pair (at connect) and settled pair used, the time to the first echo, and the verdicts; and,
per cell, where the pairings disagree (a settled or first verdict, or needs_relay, that differs between
them). Which stack wins which pair is a property of the stack, so these differ where NAT facts do not.
Records on disk are not validated: every key is read with .get().
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

from netsim.records import ResultRecord
from netsim.results import tables
from netsim.results.sessions import fmt_s, mapping
from netsim.vocab import AIORTC, IPV4_ONLY

SIDES = ("a", "b")


def stack_name(peer: object) -> str:
    """A side's stack (records before stacks existed are aiortc's); Chromium's IPv4-only twin says so, as
    it is not the stack a dual-stack cell compares."""
    p = mapping(peer)
    twin = " (ipv4-only)" if mapping(p.get("settings")).get("ipv4_only") else ""
    return f"{p.get('peer') or AIORTC}{twin}"


def pairing_name(record: ResultRecord) -> str:
    """`a x b` stacks of a session."""
    return " x ".join(stack_name(record.get(side)) for side in SIDES)


def pair_types(pair: object) -> str:
    """`local -> remote` candidate types of a selected pair as one side saw it; `-` for none."""
    p = mapping(pair)
    if not p.get("local_type") and not p.get("remote_type"):
        return "-"
    relay = f" ({p['turn_transport']})" if p.get("turn_transport") else ""
    return f"{p.get('local_type') or '?'} -> {p.get('remote_type') or '?'}{relay}"


def _counted(values: list[str]) -> str:
    """The values by frequency, e.g. `srflx -> prflx` or `relay -> srflx 2, srflx -> srflx 1`."""
    counts = Counter(values).most_common()
    if len(counts) == 1 and counts[0][1] == len(values):
        return counts[0][0]
    return ", ".join(f"{v} {n}" for v, n in counts)


def ip_mode(record: ResultRecord, side: str) -> str:
    """The IP mode of a side's host, from the experiment's topology (`none` when not recorded)."""
    topo = mapping(mapping(record.get("experiment")).get("topology"))
    for site in topo.get("site") or []:
        site = mapping(site)
        if side in (site.get("hosts") or []):
            return IPV4_ONLY if side in (site.get("ipv4_hosts") or []) else str(site.get("ipv6") or IPV4_ONLY)
    return IPV4_ONLY


def _cell(record: ResultRecord) -> tuple[str, str]:
    """(NATs, IP modes when either side has IPv6, TURN): a dual-stack cell is not its IPv4 twin."""
    cell = f"{record.get('nat_a') or '?'} x {record.get('nat_b') or '?'}"
    modes = (ip_mode(record, "a"), ip_mode(record, "b"))
    if modes != (IPV4_ONLY, IPV4_ONLY):
        cell += f" ({modes[0]} x {modes[1]})"
    return (cell, str(record.get("turn") or "?"))


def _column(records: list[ResultRecord]) -> dict[str, Any]:
    """One stack pairing in one cell: each side's first and settled pair types, first echo, verdicts."""
    sides = []
    for side in SIDES:
        peers = [mapping(r.get(side)) for r in records]
        sides.append(
            {
                "side": side,
                "stack": stack_name(peers[0]),
                "first": _counted([pair_types(p.get("first")) for p in peers]),
                "settled": _counted([pair_types(p.get("settled")) for p in peers]),
                "gathered": _counted(["+".join(tables.gathered(r, side)) or "?" for r in records]),
            }
        )
    echoes = [
        float(v)
        for r in records
        if isinstance(v := mapping(r.get("timings")).get("first_echo_s"), int | float)
    ]
    return {
        "sessions": len(records),
        "sides": sides,
        "first_echo": fmt_s(statistics.median(echoes)) if echoes else "–",
        "verdict": _counted([str(r.get("verdict")) for r in records]),
        "first_verdict": _counted([str(r.get("first_verdict") or r.get("verdict")) for r in records]),
        "needs_relay": _counted([str(r.get("needs_relay")).lower() for r in records]),
        # Which family won, per stack: shown where a session gathered IPv6 (else every winner is IPv4).
        "family": _counted([tables.won_family(r) for r in records])
        if any(tables.dual_stack(r) for r in records)
        else None,
    }


# What the pairings of a cell are compared on: (column key, label); `family` only in dual-stack cells.
KEYS = (
    ("verdict", "settled"),
    ("first_verdict", "first"),
    ("needs_relay", "needs_relay"),
    ("family", "family"),
)


def _disagreement(columns: dict[str, dict[str, Any]]) -> str | None:
    """Where the stack pairings of a cell differ: settled verdict, first verdict, needs_relay."""
    if len(columns) < 2:
        return None
    parts = []
    for key, label in KEYS:
        values = {name: col[key] for name, col in columns.items()}
        if len(set(values.values())) > 1:
            parts.append(f"{label}: " + "; ".join(f"{name} {v}" for name, v in sorted(values.items())))
    return " | ".join(parts) or None


def stack_comparison(records: Sequence[ResultRecord]) -> dict[str, Any]:
    """Every stack pairing of the run, and per cell (in NAT order of first appearance) a column for each
    pairing that ran it plus the cell's disagreement (None where the pairings agree or only one ran)."""
    by_cell: dict[tuple[str, str], dict[str, list[ResultRecord]]] = {}
    pairings: list[str] = []
    for r in records:
        if not (r.get("nat_a") and r.get("nat_b")):
            continue
        name = pairing_name(r)
        if name not in pairings:
            pairings.append(name)
        by_cell.setdefault(_cell(r), {}).setdefault(name, []).append(r)
    rows = []
    for (cell, turn), cols in by_cell.items():
        columns = {name: _column(recs) for name, recs in cols.items()}
        rows.append(
            {
                "cell": cell,
                "turn": turn,
                "columns": columns,
                "disagree": _disagreement(columns),
            }
        )
    return {"pairings": sorted(pairings), "rows": rows, "disagreeing": sum(bool(r["disagree"]) for r in rows)}
