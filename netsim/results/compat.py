"""Whether runs can be merged: what decides their outcomes, compared key by key.

Runs merge when their sessions would mean the same thing. Compared across runs:

- each version under test (`versions`: aiortc, aioice, coturn, python, each browser's), key by key; a key a
  session lacks is no difference (a run without browser sessions has no browser version). The kernel is
  the exception: runner images roll out over days, so a kernel difference is a warning, not a refusal;
- the record schema;
- the expectations: whether the runs were checked at all, and per scenario each part of the expectation
  (its `source` and `notes` say where it came from, which may differ between checkouts);
- launch settings per scenario: each side's stack and its browser's flags, with per-lab paths and pins
  replaced by placeholders (the same scenario must launch the same way in every run).

Every difference is one line under `LINE_MAX` characters naming the key and the two values with their runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from netsim.records import ResultRecord
from netsim.vocab import AIORTC

LINE_MAX: Final = 240  # leaves room for "netsim: error: " and "(+N more; --force merges anyway)" in 300
WARN_ONLY: Final = ("kernel",)  # versions whose difference is a warning
LEGACY_FLAGS: Final = "chromium_flags"  # launch flags older records kept under versions (no longer a field)
LAUNCH_KEYS: Final = (LEGACY_FLAGS,)
EXPECTATION_PARTS: Final = ("connect", "needs_relay", "verdict", "turn_transport", "call")
PATH_PLACEHOLDER: Final = "<path>"
PIN_PLACEHOLDER: Final = "<pin>"
# Flags whose value is per lab whatever it looks like: the TURN certificate's pin is made per lab.
PER_LAB_FLAGS: Final = ("--ignore-certificate-errors-spki-list",)


@dataclass(frozen=True)
class Difference:
    """One key whose value differs between two runs (`what`: e.g. "versions.aiortc")."""

    what: str
    value_a: str
    run_a: Path
    value_b: str
    run_b: Path

    def line(self, limit: int = LINE_MAX) -> str:
        """'KEY differs: A in RUN_A, B in RUN_B', each part clipped so the line stays under `limit`."""
        text = (
            f"{_clip(self.what, 72)} differs: {_clip(self.value_a, 48)} in {_tail(self.run_a, 40)}, "
            f"{_clip(self.value_b, 48)} in {_tail(self.run_b, 40)}"
        )
        return _clip(text, limit)


@dataclass(frozen=True)
class Verdict:
    refusals: list[Difference]
    warnings: list[Difference]


def check(runs: Sequence[Any]) -> Verdict:
    """The differences that refuse a merge and those that are only warned about (runs: merge.Run)."""
    refusals = [
        *_versions(runs, warn=False),
        *_schema(runs),
        *_expectations(runs),
        *_launches(runs),
    ]
    return Verdict(refusals, list(_versions(runs, warn=True)))


# --- clipping ---


def _clip(text: str, limit: int) -> str:
    text = " ".join(str(text).split())  # one line, whatever the value held
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _tail(path: Path, limit: int) -> str:
    text = str(path)
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


def _show(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def _first_difference(found: Mapping[Path, Sequence[str]], what: str) -> Difference | None:
    """The first two runs whose values of a key differ (each run: the distinct values its sessions hold),
    shown by a value one has and the other lacks."""
    runs = list(found.items())
    for i, (run_a, values_a) in enumerate(runs):
        for run_b, values_b in runs[i + 1 :]:
            if set(values_a) != set(values_b):
                only_a = [v for v in values_a if v not in values_b] or list(values_a)
                only_b = [v for v in values_b if v not in values_a] or list(values_b)
                return Difference(what, only_a[0], run_a, only_b[0], run_b)
    return None


def _collect(pairs: Iterable[tuple[str, str, Path]]) -> dict[str, dict[Path, list[str]]]:
    """(key, value, run) -> key -> run -> its distinct values, in order of appearance. A run whose sessions
    lack the key is not in it: a key a session lacks is no difference."""
    out: dict[str, dict[Path, list[str]]] = {}
    for key, value, run in pairs:
        values = out.setdefault(key, {}).setdefault(run, [])
        if value not in values:
            values.append(value)
    return out


def _differences(collected: Mapping[str, Mapping[Path, Sequence[str]]], prefix: str) -> list[Difference]:
    found = (_first_difference(values, f"{prefix}{key}") for key, values in collected.items())
    return [d for d in found if d is not None]


# --- versions, schema ---


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _versions(runs: Sequence[Any], warn: bool) -> list[Difference]:
    def pairs() -> Iterable[tuple[str, str, Path]]:
        for run in runs:
            for r in run.records:
                for key, value in _mapping(r.get("versions")).items():
                    if key in LAUNCH_KEYS or (key in WARN_ONLY) != warn:
                        continue
                    yield key, _show(value), run.path

    return _differences(_collect(pairs()), "versions.")


def _schema(runs: Sequence[Any]) -> list[Difference]:
    """Records without a schema_version are schema 1 (netsim.results.store.schema_version)."""
    pairs = (
        ("schema_version", _show(r.get("schema_version", 1)), run.path) for run in runs for r in run.records
    )
    return _differences(_collect(pairs), "")


# --- expectations ---


def _expectations(runs: Sequence[Any]) -> list[Difference]:
    checked = {run.path: any(r.get("expected") is not None for r in run.records) for run in runs}
    if len(set(checked.values())) > 1:
        yes = next(p for p, c in checked.items() if c)
        no = next(p for p, c in checked.items() if not c)
        return [Difference("expectations", "checked", yes, "none (unchecked)", no)]

    def pairs() -> Iterable[tuple[str, str, Path]]:
        for run in runs:
            for r in run.records:
                scenario, expected = r.get("scenario"), r.get("expected")
                if scenario is None or not isinstance(expected, Mapping):
                    continue
                for part in EXPECTATION_PARTS:
                    yield f"expected.{part} of {scenario}", _show(expected.get(part)), run.path

    return _differences(_collect(pairs()), "")


# --- launch settings ---


def placeholder(flag: str) -> str:
    """A launch flag with its per-lab part replaced: a pin by <pin>, an absolute path by <path>."""
    name, eq, value = flag.partition("=")
    if eq and name in PER_LAB_FLAGS:
        return f"{name}={PIN_PLACEHOLDER}"
    if eq and value.startswith("/"):
        return f"{name}={PATH_PLACEHOLDER}"
    if not eq and flag.startswith("/"):
        return PATH_PLACEHOLDER
    return flag


def launch_settings(record: ResultRecord) -> dict[str, Any]:
    """How a session launched its peers, comparable between labs and machines: per side the stack and
    the browser's flags with placeholders."""
    out: dict[str, Any] = {}
    for side in ("a", "b"):
        peer = _mapping(record.get(side))
        browser = _mapping(peer.get("browser"))
        flags = browser.get("flags")
        out[side] = {
            "stack": peer.get("peer") or AIORTC,
            "flags": [placeholder(str(f)) for f in flags] if isinstance(flags, list) else None,
        }
    old = _mapping(record.get("versions")).get(LEGACY_FLAGS)
    if isinstance(old, list):  # records before flags left `versions`
        out["versions.chromium_flags"] = [placeholder(str(f)) for f in old]
    return out


def _launch_difference(what: str, a: Any, run_a: Path, b: Any, run_b: Path) -> Difference:
    """The first part of two launch settings that differs, as a short difference."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in dict.fromkeys([*a, *b]):
            if a.get(key) != b.get(key):
                return _launch_difference(f"{what}.{key}", a.get(key), run_a, b.get(key), run_b)
    if isinstance(a, list) and isinstance(b, list):
        only_a = [f for f in a if f not in b]
        only_b = [f for f in b if f not in a]
        if only_a or only_b:
            return Difference(
                f"{what} ({len(only_a)} only in one, {len(only_b)} only in the other)",
                only_a[0] if only_a else "(none other)",
                run_a,
                only_b[0] if only_b else "(none other)",
                run_b,
            )
        return Difference(f"{what} (order)", " ".join(a), run_a, " ".join(b), run_b)
    return Difference(what, _show(a), run_a, _show(b), run_b)


def _launches(runs: Sequence[Any]) -> list[Difference]:
    """Per scenario, the launch settings each run used, compared like a version (as sets per run)."""
    settings: dict[str, Any] = {}  # canonical JSON -> the settings
    pairs = []
    for run in runs:
        for r in run.records:
            if r.get("scenario") is not None:
                launch = launch_settings(r)
                settings.setdefault(_show(launch), launch)
                pairs.append((str(r.get("scenario")), _show(launch), run.path))
    out = []
    for d in _differences(_collect(pairs), "launch of "):
        out.append(_launch_difference(d.what, settings[d.value_a], d.run_a, settings[d.value_b], d.run_b))
    return out
