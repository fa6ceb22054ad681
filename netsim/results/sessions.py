"""The report's view of one session: its row and drill-down (peers, timeline, settings, held call).

Records may be partial (a crashed session still leaves one), so every field is optional here.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from netsim import runfiles
from netsim.errors import printable
from netsim.records import PeerRecord, ResultRecord
from netsim.results import tables
from netsim.results.charts import call_timeline_chart
from netsim.vocab import PASSED, SIDES


def session_id(index: int) -> str:
    return f"s-{index}"


def needs_relay_word(record: ResultRecord) -> str:
    value = record.get("needs_relay")
    return "unknown" if value is None else ("needed" if value else "not needed")


def relay_needed_text(share: float | None, unknown: int) -> str:
    """A relay-needed share as shown: of the sessions that know it, saying how many do not (a share over
    the known ones alone would pass for the whole run's, e.g. 0 % when only direct sessions know it)."""
    if share is None:
        return f"unknown ({unknown})" if unknown else "–"
    text = f"{100 * share:.0f}%"
    return f"{text} of known ({unknown} unknown)" if unknown else text


def fmt_s(value: object) -> str:
    return f"{value:.3f} s" if isinstance(value, int | float) else "–"


def _expected_text(expected: object) -> str:
    if not isinstance(expected, Mapping):
        return "none (unchecked)"
    connect = expected.get("connect")
    nr = expected.get("needs_relay")
    parts = ["connect" if connect else "no connect" if connect is False else "connect ?"]
    if nr is not None:
        parts.append("via relay" if nr else "direct")
    return ", ".join(parts)


def _str_list(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def mapping(value: object) -> Mapping[str, Any]:
    """The value when it is a JSON object, else an empty one (records on disk are not validated)."""
    return value if isinstance(value, Mapping) else {}


def _peer_panel(peer: PeerRecord | None) -> dict[str, Any]:
    """What the report shows of one peer: role, state, selected pair, candidates, timings."""
    p = mapping(peer)
    cands = mapping(p.get("candidates"))
    selected = None
    if p.get("local") or p.get("local_type"):
        selected = {
            "local": f"{p.get('local') or '?'} ({p.get('local_type') or '?'})",
            "remote": f"{p.get('remote') or '?'} ({p.get('remote_type') or '?'})",
        }
    return {
        "role": p.get("role") or "?",
        "polite": p.get("polite"),
        "state": p.get("state") or "?",
        "turn_transport": p.get("turn_transport"),
        "selected": selected,
        "local_cands": _str_list(cands.get("local")),
        "remote_cands": _str_list(cands.get("remote")),
        "timings": mapping(p.get("timings")),
    }


def _timeline(record: ResultRecord) -> list[dict[str, Any]]:
    """Both peers' state changes in time order."""
    events = []
    for side in SIDES:
        states = mapping(record.get(side)).get("states")
        for ev in states if isinstance(states, list) else []:
            if isinstance(ev, Mapping):
                t = ev.get("t")
                events.append(
                    {
                        "t": t if isinstance(t, int | float) else None,
                        "side": side,
                        "what": ev.get("what") or "",
                        "state": ev.get("state") or "",
                    }
                )
    events.sort(key=lambda e: (e["t"] is None, e["t"] or 0.0, e["side"]))
    return events


# A scheme (javascript:, data:, http:, ...), as a browser reads an href after normalising it.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_C0_AND_SPACE = "".join(map(chr, range(0x21)))


def as_a_browser_reads(href: str) -> str:
    """An href as a browser parses it (WHATWG URL): leading and trailing C0 controls and spaces stripped,
    tabs and newlines removed anywhere (so "java", a tab, "script:" is `javascript:`)."""
    return re.sub(r"[\t\n\r]", "", href.strip(_C0_AND_SPACE))


def pcap_link(run_dir: Path, pcap: object) -> dict[str, Any] | None:
    """A capture as shown: a link relative to index.html only to a file inside the run (no scheme after
    normalisation, no `//host` or backslashes, then runfiles.inside), percent-encoded so no part of it can
    become a scheme; anything else is text, never a link."""
    if not pcap:
        return None
    text = str(pcap)
    seen = as_a_browser_reads(text)
    as_text = {"text": printable(text), "href": None, "exists": False}
    if _SCHEME.match(seen) or seen.startswith(("/", "\\")) or "\\" in seen:
        return as_text
    try:
        path = runfiles.inside(run_dir, text)
    except runfiles.PathError:
        return as_text
    return {"text": text, "href": urllib.parse.quote(text), "exists": path.is_file()}


def session_view(run_dir: Path, index: int, r: ResultRecord) -> dict[str, Any]:
    return {
        "id": session_id(index),
        "n": index + 1,
        "scenario": r.get("scenario") or "?",
        "group": r.get("group") or "?",
        "nat_a": r.get("nat_a") or "?",
        "nat_b": r.get("nat_b") or "?",
        "turn": r.get("turn") or "?",
        "policy": r.get("policy") or "?",
        "glare": bool(r.get("glare")),
        "repeat": r.get("repeat", 0),
        "verdict": tables.coarse_outcome(r),
        "outcome": tables.outcome_label(r),
        "pair": tables.pair_types(r) or "–",
        "needs_relay": needs_relay_word(r),
        "expected": _expected_text(r.get("expected")),
        "check": tables.outcome(r),
        # Did not connect, and was expected not to: shown apart from a failure that matters.
        "expected_fail": tables.outcome(r) == PASSED and tables.coarse_outcome(r) == tables.FAILED_LABEL,
        "mismatch": r.get("mismatch"),
        "settings": _settings(r),
        "call": _call_summary(r),
        "call_chart": call_timeline_chart(r),
        "reason": r.get("reason"),
        "disagreement": r.get("disagreement"),
        "connect": fmt_s(r.get("connect_s")),
        "timings": mapping(r.get("timings")),
        "a": _peer_panel(r.get("a")),
        "b": _peer_panel(r.get("b")),
        "timeline": _timeline(r),
        "coturn_log": r.get("coturn_log"),
        "pcap": pcap_link(run_dir, r.get("pcap")),
        "started_at": r.get("started_at") or "?",
    }


def _settings(r: ResultRecord) -> list[tuple[str, str]]:
    """The experiment in a few rows for the drill-down: options, each NAT with its knobs, impairments."""
    exp = mapping(r.get("experiment"))
    if not exp:
        return []
    rows = [("options", ", ".join(f"{k}={v}" for k, v in mapping(exp.get("options")).items()))]
    topo = mapping(exp.get("topology"))
    for kind in ("carrier", "site"):
        for item in topo.get(kind) or []:
            nat = ", ".join(f"{k}={v}" for k, v in mapping(item.get("nat")).items())
            extra = f"; impair {mapping(item.get('impair'))}" if item.get("impair") else ""
            hosts = f" hosts {', '.join(item.get('hosts') or [])}" if kind == "site" else ""
            rows.append((f"{kind} {item.get('name')}", f"{nat}{extra}{hosts}"))
    for rules in exp.get("rules") or []:
        rows.append(
            (
                f"rules of {rules.get('site')}",
                f"{rules.get('path')} (sha256 {str(rules.get('sha256'))[:12]}…)",
            )
        )
    if exp.get("scenario_file"):
        rows.append(("scenario file", str(exp.get("scenario_file"))))
    if exp.get("population"):
        draw = mapping(exp.get("population"))
        rows.append(
            ("population draw", f"seed {draw.get('seed')}, #{draw.get('index')} of {draw.get('size')}")
        )
    return rows


# --- report ---


def _call_summary(r: ResultRecord) -> str | None:
    call = mapping(r.get("call"))
    if not call:
        return None
    parts = [
        f"outcome {call.get('outcome')}",
        f"held {call.get('hold_s')} s, echo every {call.get('interval_s')} s",
    ]
    if call.get("recovery_s") is not None:
        parts.append(f"recovered in {fmt_s(call.get('recovery_s'))}")
    for side in ("a", "b"):
        s = mapping(call.get(side))
        parts.append(
            f"{side}: {s.get('answered')}/{s.get('sent')} echoes answered, restart {s.get('restart')}"
        )
    return "; ".join(parts)
