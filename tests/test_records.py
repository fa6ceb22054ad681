"""netsim.records: the record types, the fixtures that stand in for real records, and DESIGN.md."""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Any, Literal, NotRequired, Union, get_args, get_origin, get_type_hints

import pytest
import typing_extensions

from netsim import records
from netsim.records import PeerRecord, ResultRecord
from tests.results.report_fixtures import sample_records, synthetic_records

DESIGN = Path(__file__).resolve().parents[1] / "docs" / "DESIGN.md"


def _is_typeddict(tp: Any) -> bool:
    return isinstance(tp, type) and typing_extensions.is_typeddict(tp)


def problems(value: Any, tp: Any, where: str = "record") -> list[str]:
    """Where `value` (parsed JSON) does not fit the type `tp` (TypedDicts, Literal, unions, list, dict)."""
    origin = get_origin(tp)
    if tp is Any:
        return []
    if origin is NotRequired:
        return problems(value, get_args(tp)[0], where)
    if origin in (Union, types.UnionType):
        fits = [problems(value, arg, where) for arg in get_args(tp)]
        return [] if any(not f for f in fits) else [f"{where}: {value!r} is none of {tp}"]
    if tp is type(None):
        return [] if value is None else [f"{where}: {value!r} is not null"]
    if origin is Literal:
        return [] if value in get_args(tp) else [f"{where}: {value!r} not in {get_args(tp)}"]
    if _is_typeddict(tp):
        if not isinstance(value, dict):
            return [f"{where}: {value!r} is not an object"]
        hints = get_type_hints(tp, include_extras=True)
        out = [f"{where}: unknown key {k!r}" for k in value if k not in hints]
        out += [f"{where}: missing key {k!r}" for k in tp.__required_keys__ if k not in value]
        for key, hint in hints.items():
            if key in value:
                out += problems(value[key], hint, f"{where}.{key}")
        return out
    if origin is list:
        if not isinstance(value, list):
            return [f"{where}: {value!r} is not a list"]
        return [p for i, v in enumerate(value) for p in problems(v, get_args(tp)[0], f"{where}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{where}: {value!r} is not an object"]
        return [p for k, v in value.items() for p in problems(v, get_args(tp)[1], f"{where}.{k}")]
    if tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{where}: {value!r} is not a number"]
    if tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{where}: {value!r} is not an integer"]
    if tp in (str, bool):
        return [] if isinstance(value, tp) else [f"{where}: {value!r} is not {tp.__name__}"]
    raise TypeError(f"{where}: the checker does not know {tp!r}")


def test_checker_catches_drift() -> None:
    good = sample_records()[0]
    assert problems(good, ResultRecord) == []
    bad: dict[str, Any] = {**good, "verdict": "sideways", "colour": "red"}
    del bad["a"]
    bad["b"] = {**bad["b"], "timings": {**bad["b"]["timings"], "rtt_ms": "fast"}}
    assert problems(bad, ResultRecord) == [
        "record: unknown key 'colour'",
        "record: missing key 'a'",
        "record.verdict: 'sideways' not in ('direct-host', 'direct', 'relay', 'failed')",
        "record.b.timings.rtt_ms: 'fast' is none of float | None",
    ]


@pytest.mark.parametrize("make", [sample_records, lambda: synthetic_records(300)], ids=["sample", "bench"])
def test_fixture_records_are_result_records(make: Any) -> None:
    """The report's tests and benchmark read records shaped exactly like the session and suite write."""
    for i, record in enumerate(make()):
        assert problems(record, ResultRecord, f"record {i}") == []


def test_a_crashed_peer_fits_peer_record() -> None:
    """What the session makes of a peer that left only a state and a reason."""
    from netsim.peers.protocol import failed_record
    from netsim.session.verdict import peer_record
    from tests.peers.configs import peer_config

    crashed = peer_record(
        failed_record(peer_config(), "aiortc", "peer process killed after the wait timeout")
    )
    assert problems(dict(crashed), PeerRecord) == []
    assert (crashed["peer"], crashed["pairs"], crashed["first"], crashed["settled"]) == (
        "aiortc",
        [],
        None,
        None,
    )


def test_a_pair_record_has_no_suite_keys() -> None:
    """`netsim pair` records (no run, scenario, group, repeat, expectation, pcap) are ResultRecords too."""
    suite_keys = {
        "run_id",
        "scenario",
        "group",
        "repeat",
        "expected",
        "outcome",
        "passed",
        "experiment",
        "mismatch",
        "pcap",
        "lab_use",
    }
    # a held call's; absent in old records
    session_optional = {"call", "cpu_wait", "cpu_wait_thread", "load", "infrastructure", "families"}
    assert ResultRecord.__optional_keys__ == suite_keys | {"attempts"} | session_optional
    pair = {k: v for k, v in sample_records()[0].items() if k not in suite_keys}
    assert problems(pair, ResultRecord) == []


def test_timing_keys_are_the_timings_fields() -> None:
    session_only = ("wall_s", "cpu_wait_s")  # a session's timings, never a peer's
    assert records.TIMING_KEYS + session_only == tuple(get_type_hints(records.Timings))


def _design_section() -> str:
    text = DESIGN.read_text()
    start = text.index("## Result record")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_design_md_points_at_records_and_lists_every_field() -> None:
    """docs/DESIGN.md's field list is the TypedDicts' keys, no more, no less (it cannot drift silently)."""
    section = _design_section()
    assert "netsim/records/" in section
    listed: dict[str, list[str]] = {}
    for item in re.findall(r"^- .*(?:\n  .*)*", section, re.M):  # list items with their continuation lines
        name, _, fields = item.partition(":")
        listed[name.split("`")[1]] = re.findall(r"`(\w+)`", fields)
    for name in ("ResultRecord", "PeerRecord", "Summary"):
        assert listed.get(name) == list(get_type_hints(getattr(records, name))), name


def test_readers_only_get_record_fields() -> None:
    """mypy types `record.get("typo")` as object instead of flagging it: this catches such typos."""
    fields = {
        key for value in vars(records).values() if _is_typeddict(value) for key in get_type_hints(value)
    }
    package = Path(records.__file__).parent.parent / "results"  # the readers of records
    used = {
        (path.name, key)
        for path in package.glob("*.py")
        for key in re.findall(r"""\.get\(["'](\w+)["']""", path.read_text())
    }
    assert len(used) > 30  # the pattern still finds the readers' keys
    assert sorted((name, key) for name, key in used if key not in fields) == []
