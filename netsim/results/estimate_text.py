"""`netsim estimate`'s output: the terminal table and the JSON object (netsim.results.estimate computes).

Both say what a reader needs to weigh the figure: the stacks sized with, the mix's sources and note, which
weights are assumptions or secondary figures, the interval from the repeats, how far each uncertain weight
moves the answer, and what the figure leaves out.
"""

from __future__ import annotations

from typing import Any

from netsim.results.estimate import LEAVES_OUT, METHOD, Estimate, Interval
from netsim.results.sensitivity import DEFAULT_RANGE, Moved
from netsim.suite.mixes import Mix, split_endpoint

MOVED_SHOWN = 6  # the widest few in the table; --json has them all


def _parts(mix: Mix | None) -> list[dict[str, Any]] | None:
    if mix is None or not mix.parts:
        return None
    return [{"mix": m.name, "path": m.path, "share": round(s, 4)} for m, s in mix.parts]


def _uncertain(mix: Mix | None) -> dict[str, str] | None:
    """kind -> 'assumed' or how its figure was checked, for every weight the estimate varies."""
    if mix is None:
        return None
    return {k.kind: k.mark for k in mix.kinds if k.share > 0 and k.uncertain}


def _ip_modes(mix: Mix | None) -> dict[str, dict[str, Any]] | None:
    """kind -> its IP-mode shares and where they come from (every kind IPv4-only when the mix says none)."""
    if mix is None:
        return None
    return {
        k.kind: {"shares": {m: round(v, 4) for m, v in k.ip.shares}, "mark": k.ip.mark, "text": k.ip.text}
        for k in mix.kinds
        if k.share > 0
    }


def _moved_json(m: Moved) -> dict[str, Any]:
    k = m.knob
    return {
        "mix": k.mix,
        "kind": k.kind,
        "mark": k.mark,
        "side": k.side,
        "share": round(k.share, 4),
        "range": [round(k.low, 4), round(k.high, 4)],
        "range_from": k.why,
        "needs_relay": [round(m.low, 4), round(m.high, 4)],
    }


def as_json(est: Estimate) -> dict[str, Any]:
    """The `netsim estimate --json` object."""
    cap = est.capacity
    return {
        "mix": est.mix.name,
        "source": est.mix.source,
        "note": est.mix.note,
        "parts": _parts(est.mix),
        "mix_b": est.mix_b.name if est.mix_b else None,
        "source_b": est.mix_b.source if est.mix_b else None,
        "note_b": est.mix_b.note if est.mix_b else None,
        "parts_b": _parts(est.mix_b),
        "peers": list(est.peers),
        "needs_relay": est.needs_relay.as_dict(),
        "ipv4_only": (est.ipv4_only or est.needs_relay).as_dict(),  # the same mix, every endpoint IPv4-only
        "ip_modes": {"a": _ip_modes(est.mix), "b": _ip_modes(est.mix_b)},
        "relay_won": est.relay_won.as_dict(),
        "direct": est.direct.as_dict(),
        "failed_with_turn": est.failed.as_dict(),
        "capacity": {
            "calls": cap.calls,
            "bitrate_kbps": cap.bitrate_kbps,
            "relayed_calls": cap.relayed_calls.as_dict(1),
            "allocations": cap.allocations.as_dict(1),
            "relay_mbps": cap.relay_mbps.as_dict(1),
        },
        "run": est.run,
        "inconclusive_left_out": est.inconclusive,
        "method": METHOD,
        "assumptions": {"a": est.mix.assumptions, "b": est.mix_b.assumptions if est.mix_b else None},
        "uncertain_weights": {"a": _uncertain(est.mix), "b": _uncertain(est.mix_b)},
        "sensitivity": [_moved_json(m) for m in est.moved],
        "leaves_out": list(LEAVES_OUT),
        "cells": [
            {
                "nat_a": split_endpoint(a)[0],
                "ip_a": split_endpoint(a)[1],
                "nat_b": split_endpoint(b)[0],
                "ip_b": split_endpoint(b)[1],
                "weight": round(w, 6),
                "sessions": n.sessions,
                "needs_relay": n.needs_relay,
                "needs_relay_known": n.known,
                "relay_won": n.relay_won,
                "direct": n.direct,
                "failed": n.failed,
            }
            for (a, b), (w, n) in est.cells.items()
        ],
    }


def _pct(iv: Interval) -> tuple[str, str]:
    return f"{100 * iv.share:.1f} %", f"{100 * iv.low:.1f} % - {100 * iv.high:.1f} %"


def _count(iv: Interval, unit: str = "") -> str:
    return f"{iv.share:,.0f}{unit} ({iv.low:,.0f} - {iv.high:,.0f})"


def _mix_lines(label: str, mix: Mix) -> list[str]:
    lines = [f"{label} {mix.name!r}" + (f" ({mix.path})" if not mix.parts else "")]
    for part, share in mix.parts:
        lines.append(f"  {100 * share:.0f} % {part.name} ({part.path})")
    if mix.note:
        lines.append(f"  note: {mix.note}")
    if mix.has_ip:
        ipv6 = sum(v for e, v in mix.endpoint_shares.items() if split_endpoint(e)[1] != "none")
        lines.append(f"  endpoints with IPv6: {100 * ipv6:.1f} % ({_mode_totals(mix)})")
    marks: dict[str, list[str]] = {}
    for k in mix.kinds:
        if k.share > 0:
            marks.setdefault(k.mark, []).append(k.kind)
    for mark in ("assumed", "secondary", "abstract", "primary"):
        if marks.get(mark):
            what = "assumed weights" if mark == "assumed" else f"weights read from {mark} sources"
            lines.append(f"  {what}: {', '.join(marks[mark])}")
    return lines


def _mode_totals(mix: Mix) -> str:
    totals: dict[str, float] = {}
    for e, v in mix.endpoint_shares.items():
        mode = split_endpoint(e)[1]
        totals[mode] = totals.get(mode, 0.0) + v
    return ", ".join(f"{mode} {100 * v:.1f} %" for mode, v in totals.items())


def _moved_lines(est: Estimate) -> list[str]:
    if not est.moved:
        return ["no weight of the mix is uncertain: the interval above is the whole uncertainty"]
    lines = [
        "how far 'need a relay' moves as each assumed or secondary weight moves within its range",
        "(the other kinds keep their proportions; the mix's uncertainty, beside the repeats'):",
    ]
    for m in est.moved[:MOVED_SHOWN]:
        k = m.knob
        default = " *" if k.why == DEFAULT_RANGE else ""
        lines.append(
            f"  {k.mix}: {k.kind} ({k.mark}, {k.side}) {100 * k.share:.1f} % in {100 * k.low:.1f}-"
            f"{100 * k.high:.1f} %{default}  ->  {100 * m.low:.1f} % - {100 * m.high:.1f} %"
        )
    if len(est.moved) > MOVED_SHOWN:
        lines.append(f"  ... {len(est.moved) - MOVED_SHOWN} more, each moving it less (--json lists all)")
    if any(m.knob.why == DEFAULT_RANGE for m in est.moved):
        lines.append(f"  * {DEFAULT_RANGE} of the weight's share")
    return lines


def format_table(est: Estimate) -> str:
    """The estimate for the terminal: the mixes, the shares with intervals, how far the uncertain
    weights move the answer, relay capacity, and what the figure leaves out."""
    sessions = [n.sessions for _, n in est.cells.values()]
    v4 = est.ipv4_only or est.needs_relay
    rows = [
        ("calls that need a relay", *_pct(est.needs_relay)),
        ("  the same mix, IPv4-only", *_pct(v4)),
        ("calls where a relay won", *_pct(est.relay_won)),
        ("calls connected without TURN", *_pct(est.direct)),
        ("calls that failed even with TURN", *_pct(est.failed)),
    ]
    width = max(len(r[0]) for r in rows)
    cap = est.capacity
    lines = [*_mix_lines("callers: mix", est.mix)]
    lines += _mix_lines("callees: mix", est.mix_b) if est.mix_b else ["callees: the same mix"]
    lines += [
        f"peers: {est.peers[0]} (caller) x {est.peers[1]} (callee); run {est.run}"
        + (f" ({est.inconclusive} inconclusive sessions left out)" if est.inconclusive else ""),
        f"{len(est.cells)} cells, {sum(sessions)} sessions ({min(sessions)}-{max(sessions)} per cell)",
        "",
        f"{'':{width}}  {'share':>7}  95 % interval (repeats)",
        *(f"{name:{width}}  {share:>7}  {interval}" for name, share, interval in rows),
        "",
        *_moved_lines(est),
        "",
        f"per {cap.calls:,} concurrent calls at {cap.bitrate_kbps:g} kbit/s each way (an assumption; "
        "--bitrate-kbps):",
        f"  relayed calls {_count(cap.relayed_calls)}, TURN allocations carrying media "
        f"{_count(cap.allocations)}",
        f"  relay traffic {_count(cap.relay_mbps, ' Mbit/s')} in, the same out",
        "",
        "not in this figure:",
        *(f"  - {item}" for item in LEAVES_OUT),
    ]
    if min(sessions) < 3:
        lines.append(
            f"warning: {min(sessions)} session(s) in the thinnest cell: the interval is wide; run the mix's "
            "cells with --repeats 3 or more before quoting the figure (--min-repeats refuses thinner runs)"
        )
    return "\n".join(lines)
