"""The report's palette and its one chart: connect-time distributions per verdict (matplotlib, PNG)."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable

from netsim.records import ResultRecord
from netsim.results.tables import FAILED_LABEL
from netsim.vocab import FAILED, VERDICTS

# Verdict colours: greens for direct, amber for relay, red for failure (readable with the label pill on top).
COLOURS = {
    "direct-host": "#2e7d32",
    "direct": "#7cc47f",
    "relay": "#f6b04d",
    FAILED_LABEL: "#e0524f",
    "needed": "#f6b04d",
    "not needed": "#7cc47f",
    "unknown": "#c4c4c4",
}
OTHER_COLOUR = "#9e9e9e"
# Lines need more contrast between the two greens than filled cells do.
LINE_COLOURS = {"direct-host": "#1b5e20", "direct": "#5cb860", "relay": "#ef8f00"}


def connect_time_chart(records: Iterable[ResultRecord]) -> str | None:
    """Base64 PNG of connect-time distributions per verdict (box + points, and ECDF), or None without data.

    Deterministic: the same records give the same bytes.
    """
    by_verdict: dict[str, list[float]] = {}
    for r in records:
        t, verdict = r.get("connect_s"), r.get("verdict")
        if isinstance(t, int | float) and verdict not in (None, FAILED):
            by_verdict.setdefault(str(verdict), []).append(float(t))
    if not by_verdict:
        return None
    import matplotlib  # imported late: about 0.3 s, and only a report with connected sessions needs it

    matplotlib.use("Agg")  # never needs a display; pyplot is avoided so no global figure state leaks
    from matplotlib.figure import Figure

    order = [v for v in VERDICTS if v in by_verdict] + sorted(set(by_verdict) - set(VERDICTS))
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


def call_timeline_chart(record: ResultRecord) -> str | None:
    """Base64 PNG of a held call: each side's echoes over time (answered, lost), the network events as
    vertical marks, and the selected-pair changes; None for a session that was not held."""
    call = record.get("call")
    if not call:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 2.4), dpi=110, layout="constrained")
    ax = fig.subplots()
    for row, side in enumerate(("a", "b")):
        echoes = (call.get(side) or {}).get("echoes") or []  # type: ignore[attr-defined]
        answered = [e[0] for e in echoes if e[0] is not None and e[1] is not None]
        lost = [e[0] for e in echoes if e[0] is not None and e[1] is None]
        ax.scatter(
            answered, [row] * len(answered), s=14, color=COLOURS["direct"], label="answered" if row else None
        )
        ax.scatter(
            lost, [row] * len(lost), s=22, marker="x", color=COLOURS["FAILED"], label="lost" if row else None
        )
    for event in call.get("events") or []:
        at = event.get("t")
        if at is not None:
            ax.axvline(at, color="#555", lw=1, ls="--")
            ax.annotate(str(event.get("action")), (at, 1.35), fontsize=8, ha="left")
    for change in call.get("pair_changes") or []:
        at = change.get("t")
        if at is not None:
            row = 0 if change.get("side") == "a" else 1
            ax.scatter([at], [row + 0.2], marker="v", s=30, color=COLOURS["relay"])
    ax.set_yticks([0, 1], ["peer a", "peer b"])
    ax.set_ylim(-0.6, 1.6)
    ax.set_xlabel("seconds from the offer (▼ selected pair changed, dashed: network event)")
    ax.set_title(f"Held call: {call.get('outcome')}", fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    ax.spines[["top", "right"]].set_visible(False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")
