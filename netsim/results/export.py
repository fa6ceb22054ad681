"""Flat exports of a run: one CSV row per session, for spreadsheets and pandas.

Cells are data, never formulas: a text cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return
(what a spreadsheet may run: `=HYPERLINK(...)`, `@SUM(...)`) gets a single quote in front, which
spreadsheets show as text (OWASP's CSV injection advice); numbers stay numbers. A cell holding a line
break is quoted (RFC 4180), so a record's text never starts a row of its own.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from typing import Any, Final, TextIO, cast

from netsim.records import ResultRecord
from netsim.results.tables import outcome


def _peer(side: str, key: str) -> Callable[[ResultRecord], Any]:
    def get(record: ResultRecord) -> Any:
        peer: Any = cast("dict[str, Any]", record).get(side)  # side is "a" or "b"
        return peer.get(key) if isinstance(peer, dict) else None

    return get


def _option(key: str) -> Callable[[ResultRecord], Any]:
    def get(record: ResultRecord) -> Any:
        experiment: Any = record.get("experiment") or {}
        return (experiment.get("options") or {}).get(key)

    return get


def _timing(key: str) -> Callable[[ResultRecord], Any]:
    def get(record: ResultRecord) -> Any:
        timings: Any = record.get("timings") or {}
        return timings.get(key)

    return get


def _call(key: str) -> Callable[[ResultRecord], Any]:
    def get(record: ResultRecord) -> Any:
        call: Any = record.get("call") or {}
        return call.get(key)

    return get


def _keepalive(side: str) -> Callable[[ResultRecord], Any]:
    """The keepalive interval measured at that side's NAT router during a held call."""

    def get(record: ResultRecord) -> Any:
        call: Any = record.get("call") or {}
        measured: Any = (call.get("keepalive") or {}).get(side)
        return measured.get("interval_s") if isinstance(measured, dict) else None

    return get


COLUMNS: dict[str, Callable[[ResultRecord], Any]] = {
    "run_id": lambda r: r.get("run_id"),
    "scenario": lambda r: r.get("scenario"),
    "group": lambda r: r.get("group"),
    "repeat": lambda r: r.get("repeat"),
    "nat_a": lambda r: r.get("nat_a"),
    "nat_b": lambda r: r.get("nat_b"),
    "peer_a": _option("peer_a"),
    "peer_b": _option("peer_b"),
    "turn": lambda r: r.get("turn"),
    "policy": lambda r: r.get("policy"),
    "glare": lambda r: r.get("glare"),
    "verdict": lambda r: r.get("verdict"),
    "relay_side": lambda r: r.get("relay_side"),
    "needs_relay": lambda r: r.get("needs_relay"),
    "outcome": outcome,
    "connect_s": lambda r: r.get("connect_s"),
    "first_echo_s": _timing("first_echo_s"),
    "rtt_ms": _timing("rtt_ms"),
    "a_local_type": _peer("a", "local_type"),
    "a_remote_type": _peer("a", "remote_type"),
    "b_local_type": _peer("b", "local_type"),
    "b_remote_type": _peer("b", "remote_type"),
    "a_turn_transport": _peer("a", "turn_transport"),
    "b_turn_transport": _peer("b", "turn_transport"),
    "reason": lambda r: r.get("reason"),
    "call_outcome": _call("outcome"),  # a held call: held, recovered or dropped
    "recovery_s": _call("recovery_s"),
    "keepalive_a_s": _keepalive("a"),
    "keepalive_b_s": _keepalive("b"),
    "started_at": lambda r: r.get("started_at"),
}


FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def write_csv(records: Iterable[ResultRecord], out: TextIO) -> int:
    """Write a header and one row per record; returns the number of rows."""
    out.write(_row(list(COLUMNS)))
    n = 0
    for record in records:
        out.write(_row([_cell(get(record)) for get in COLUMNS.values()]))
        n += 1
    return n


def _row(cells: list[Any]) -> str:
    """One CSV line ending in \\n; with \\r\\n as csv's terminator, a cell holding either is quoted."""
    line = io.StringIO()
    csv.writer(line, lineterminator="\r\n").writerow(cells)
    return line.getvalue()[:-2] + "\n"
