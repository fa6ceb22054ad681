"""Outcome labels and NAT x NAT cells, shared by the terminal matrix table and the HTML report.

Pure functions of result records (netsim/records/); every field may be missing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from netsim.records import OLD_VIOLATED, OUTCOMES, Outcome, ResultRecord
from netsim.vocab import (
    FAILED,
    FAMILIES,
    INCONCLUSIVE,
    NAT_PRESETS,
    PASSED,
    RELAY,
    SIDES,
    UNCHECKED,
    VIOLATED,
)

FAILED_LABEL = "FAILED"  # upper case so a failed cell stands out in a table of lower-case words

Cell = tuple[str, str]  # (nat_a, nat_b)
IPV6 = FAMILIES[1]


def nat_sort_key(kind: str) -> tuple[int, str]:
    """Known NAT kinds in vocab.NAT_PRESETS order, then any others alphabetically."""
    try:
        return (NAT_PRESETS.index(kind), "")
    except ValueError:
        return (len(NAT_PRESETS), kind)


def nat_kinds(records: Iterable[ResultRecord]) -> list[str]:
    """Every NAT kind on either side of the records, in display order."""
    kinds = {str(kind) for r in records for kind in (r.get("nat_a"), r.get("nat_b")) if kind}
    return sorted(kinds, key=nat_sort_key)


# --- outcome labels ---


def outcome(record: Mapping[str, Any]) -> Outcome:
    """passed, violated (an expectation did not hold), unchecked (there was none to check) or inconclusive
    (the machine's load made the answer worthless).

    Schema 2 wrote `failed` for violated. Records written before schema 2 have no `outcome`: a record
    without an expectation is unchecked there too, whatever its `passed` said (it used to say true).
    """
    value = record.get("outcome")
    if value in OUTCOMES:
        return value
    if value == OLD_VIOLATED:
        return VIOLATED
    if not record.get("expected") or "passed" not in record:
        return UNCHECKED
    return PASSED if record.get(PASSED) is True else VIOLATED


def counted(record: Mapping[str, Any]) -> bool:
    """Whether a session counts in shares, estimates and comparisons: not one left inconclusive by load."""
    return outcome(record) != INCONCLUSIVE


def pair_types(record: ResultRecord) -> str | None:
    """Winning pair as seen by peer a, e.g. 'srflx/prflx' (local/remote), or None when unknown."""
    peer = record.get("a")
    if not isinstance(peer, dict):
        return None
    local, remote = peer.get("local_type"), peer.get("remote_type")
    if not local or not remote:
        return None
    return f"{local}/{remote}"


def coarse_outcome(record: ResultRecord) -> str:
    """One word per verdict: direct-host, direct, relay, FAILED (or an unknown verdict as-is)."""
    verdict = record.get("verdict")
    if verdict is None or verdict == FAILED:
        return FAILED_LABEL
    return str(verdict)


def outcome_label(record: ResultRecord) -> str:
    """Cell text for one session: 'direct srflx/prflx', 'relay(a)', 'FAILED'."""
    coarse = coarse_outcome(record)
    if coarse == FAILED_LABEL:
        return coarse
    if coarse == RELAY:
        side = record.get("relay_side")
        return f"{RELAY}({side})" if side else RELAY
    pair = pair_types(record)
    return f"{coarse} {pair}" if pair else coarse


def distribution(labels: Iterable[str]) -> list[tuple[str, int]]:
    """Label counts, most frequent first (ties in first-seen order)."""
    return Counter(labels).most_common()


def agreed_label(labels: Sequence[str]) -> str:
    """The label when all agree, else their distribution like 'direct 3/relay 2'; '' for no labels."""
    if len(set(labels)) <= 1:
        return labels[0] if labels else ""
    return "/".join(f"{label} {n}" for label, n in distribution(labels))


def cell_label(records: Sequence[ResultRecord]) -> str:
    """One matrix cell: the outcome when every repeat agrees, else a distribution like 'direct 3/relay 2'.

    The distribution uses coarse verdicts when those differ, full labels when only the pair or relay side
    does.
    """
    full = [outcome_label(r) for r in records]
    coarse = [coarse_outcome(r) for r in records]
    return agreed_label(full if len(set(coarse)) <= 1 else coarse)


# --- address families ---


def _families(record: Mapping[str, Any]) -> Mapping[str, Any]:
    value = record.get("families")
    return value if isinstance(value, Mapping) else {}


def gathered(record: Mapping[str, Any], side: str) -> list[str]:
    """The families a side gathered candidates in (records before dual-stack labs: none known)."""
    value = _families(record).get(side)
    return [str(f) for f in value] if isinstance(value, list) else []


def dual_stack(record: Mapping[str, Any]) -> bool:
    """Whether either side gathered IPv6: only then is the winning family news (an IPv4 lab's is ipv4)."""
    return any(IPV6 in gathered(record, side) for side in SIDES)


def won_family(record: Mapping[str, Any]) -> str:
    """The settled pair's family, or `none` (failed, or a record without families)."""
    return str(_families(record).get("won") or "none")


def family_label(records: Sequence[Mapping[str, Any]]) -> str | None:
    """Which family won in a cell ('ipv6', or 'ipv6 2/ipv4 1'), None when no session gathered IPv6."""
    if not any(dual_stack(r) for r in records):
        return None
    return agreed_label([won_family(r) for r in records])


def families_text(record: Mapping[str, Any]) -> str | None:
    """The session view's line: each side's gathered families and the winner; None for a record that has
    no families (written before dual-stack labs)."""
    fams = _families(record)
    if not fams:
        return None
    sides = " · ".join(f"{s} gathered {'+'.join(gathered(record, s)) or 'nothing'}" for s in SIDES)
    ipv6_pair = "yes" if fams.get("ipv6_pair") else "no"
    return f"{sides} · won {won_family(record)} · an IPv6 pair selected: {ipv6_pair}"


# --- cells ---


def group_cells(
    records: Sequence[ResultRecord], groups: Iterable[str] | None = None
) -> dict[Cell, list[int]]:
    """(nat_a, nat_b) -> positions in `records` of that cell's sessions, in record order.

    Only sessions of `groups` count (every session when None); a session without both NAT kinds is in no
    cell. Positions, not records, so the report can link a cell to its sessions.
    """
    if isinstance(groups, str):
        raise TypeError(f"groups must be a collection of group names, not the string {groups!r}")
    wanted = None if groups is None else set(groups)
    cells: dict[Cell, list[int]] = {}
    for i, r in enumerate(records):
        if wanted is not None and r.get("group") not in wanted:
            continue
        nat_a, nat_b = r.get("nat_a"), r.get("nat_b")
        if nat_a and nat_b:
            cells.setdefault((str(nat_a), str(nat_b)), []).append(i)
    return cells


def cell_axes(cells: Iterable[Cell]) -> tuple[list[str], list[str]]:
    """(rows: the nat_a kinds, columns: the nat_b kinds) of the cells, in display order."""
    cells = list(cells)
    rows = sorted({a for a, _ in cells}, key=nat_sort_key)
    cols = sorted({b for _, b in cells}, key=nat_sort_key)
    return rows, cols


def matrix_table(records: Iterable[ResultRecord], group: str) -> str:
    """Plain-text NAT x NAT table of outcomes (rows nat_a, columns nat_b) for the pytest terminal summary."""
    recs = list(records)
    cells = group_cells(recs, [group])
    if not cells:
        return f"{group}: no sessions"
    rows, cols = cell_axes(cells)
    table = [["nat_a \\ nat_b", *cols]]
    for a in rows:
        line = [cell_label([recs[i] for i in cells[(a, b)]]) if (a, b) in cells else "-" for b in cols]
        table.append([a, *line])
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = [f"{group}:"]
    for i, row in enumerate(table):
        lines.append("  ".join(text.ljust(w) for text, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
