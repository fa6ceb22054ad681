"""netsim.results.report and .charts: the HTML report's content, robustness, `latest`, and rendering in
headless Chromium (no root)."""

from __future__ import annotations

import base64
import io
import json
import os
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from netsim.results import charts, report
from netsim.results import store as results
from netsim.results.sessions import fmt_s
from netsim.vocab import NAT_PRESETS
from tests.browser import Browser
from tests.results.report_fixtures import RUN_ID, sample_records, write_results

# --- a tiny DOM reader (stdlib only) ---


class Page(HTMLParser):
    """Collects what the assertions need: elements by id, heatmap cells, table rows, links, images."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: dict[str, dict[str, str]] = {}
        self.heatmaps: dict[str, dict[tuple[str, str], dict[str, str]]] = {}
        self.heatmap_rows: dict[str, list[str]] = {}
        self.session_rows: list[dict[str, Any]] = []
        self.urls: list[str] = []
        self.images: list[str] = []
        self.texts: dict[str, str] = {}
        self._table: str | None = None
        self._cols: list[str] = []
        self._in_thead = False
        self._row: list[Any] = []
        self._cell: dict[str, Any] | None = None
        self._text_id: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids[a["id"]] = {"tag": tag, **a}
            if tag in ("b", "dd", "td", "span"):
                self._text_id.append(a["id"])
                self.texts[a["id"]] = ""
        for key in ("href", "src"):
            if key in a:
                self.urls.append(a[key])
        if tag == "img":
            self.images.append(a.get("src", ""))
        if tag == "table" and a.get("id", "").startswith(("heatmap-", "session-table")):
            self._table = a["id"]
            self._cols = []
            self.heatmaps.setdefault(self._table, {})
            self.heatmap_rows.setdefault(self._table, [])
        elif self._table and tag == "thead":
            self._in_thead = True
        elif self._table and tag == "tr":
            self._row = []
            if self._table == "session-table" and not self._in_thead:
                self.session_rows.append({"class": a.get("class", ""), "cells": self._row, "href": None})
        elif self._table and tag in ("td", "th"):
            self._cell = {"text": "", "class": a.get("class", ""), "style": a.get("style", "")}
        elif self._table and tag == "a" and self._cell is not None:
            self._cell["href"] = a.get("href")
            if self._table == "session-table" and self.session_rows:
                self.session_rows[-1]["href"] = a.get("href")

    def handle_endtag(self, tag: str) -> None:
        if self._text_id and tag in ("b", "dd", "td", "span"):
            self._text_id.pop()
        if not self._table:
            return
        if tag == "thead":
            self._in_thead = False
        elif tag in ("td", "th") and self._cell is not None:
            self._cell["text"] = " ".join(self._cell["text"].split())
            if self._in_thead:
                self._cols.append(self._cell["text"])
            else:
                self._row.append(self._cell)
            self._cell = None
        elif tag == "tr" and not self._in_thead and self._table.startswith("heatmap-") and self._row:
            nat = self._row[0]["text"]
            self.heatmap_rows[self._table].append(nat)
            for col, cell in zip(self._cols[1:], self._row[1:], strict=True):
                self.heatmaps[self._table][(nat, col)] = cell
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell["text"] += data
        if self._text_id:
            self.texts[self._text_id[-1]] += data


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, list[dict[str, Any]], str, Page]:
    records = sample_records()
    run = tmp_path / "reports" / RUN_ID
    write_results(run, records)
    out = report.build_report(run)
    html = out.read_text()
    return run, records, html, Page(html)


def test_build_writes_index_and_latest_link(built: tuple[Path, list[dict[str, Any]], str, Page]) -> None:
    run, _, _, _ = built
    latest = run.parent / "latest"
    assert (run / "index.html").is_file()
    assert latest.is_symlink() and os.readlink(latest) == RUN_ID  # relative: the reports dir can move
    other = run.parent / "20261130-000000-0001"
    write_results(other, sample_records()[:3])
    report.build_report(other)
    assert os.readlink(latest) == other.name
    assert not list(run.parent.glob(".latest*"))  # no temporary link left behind


def test_build_through_latest_link(built: tuple[Path, list[dict[str, Any]], str, Page]) -> None:
    run, _, _, _ = built
    out = report.build_report(run.parent / "latest")  # `netsim report reports/latest`
    assert out == run.resolve() / "index.html"
    assert os.readlink(run.parent / "latest") == RUN_ID


def test_latest_elsewhere_uses_absolute_target(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "r1"
    write_results(run, sample_records()[:2])
    root = tmp_path / "reports"
    root.mkdir()
    report.build_report(run, reports_root=root)
    assert Path(os.readlink(root / "latest")) == run.resolve()


def test_metadata(built: tuple[Path, list[dict[str, Any]], str, Page]) -> None:
    _, records, html, page = built
    assert f"run {RUN_ID}" in html
    for value in ("1.16.0", "0.13.0", "4.6.1", "6.18.44", "2026-11-29T04:35:00Z"):
        assert value in html
    assert page.texts["n-sessions"] == str(len(records))
    assert page.texts["n-passed"] == str(sum(r["passed"] for r in records))
    assert page.texts["n-failed"] == str(sum(not r["passed"] for r in records)) == "3"


def test_verdict_heatmap_cells(built: tuple[Path, list[dict[str, Any]], str, Page]) -> None:
    _, _, _, page = built
    turn = page.heatmaps["heatmap-matrix-turn"]
    assert page.heatmap_rows["heatmap-matrix-turn"] == [*NAT_PRESETS, "cgn-symmetric"]
    mixed = turn[("full-cone", "symmetric")]
    assert mixed["text"].startswith("direct 3/relay 2") and "×5" in mixed["text"]
    assert "linear-gradient" in mixed["style"]  # striped: 60% direct, 40% relay
    assert "60.0%" in mixed["style"]
    assert turn[("open", "udp-blocked")]["text"] == "relay(b)"
    assert turn[("open", "open")]["text"] == "direct host/host"
    failed = turn[("udp-blocked", "udp-blocked")]
    assert failed["text"] == "FAILED" and "mismatch" in failed["class"]
    assert charts.COLOURS["FAILED"] in failed["style"]
    assert "mismatch" in turn[("cgn-symmetric", "full-cone")]["class"]
    assert turn[("cgn-symmetric", "open")]["class"] == "empty"
    assert "mismatch" not in turn[("open", "open")]["class"]
    noturn = page.heatmaps["heatmap-matrix-noturn"]
    assert noturn[("symmetric", "symmetric")]["text"] == "FAILED"
    assert "mismatch" not in noturn[("symmetric", "symmetric")]["class"]  # failing without TURN is expected


def test_needs_relay_heatmap(built: tuple[Path, list[dict[str, Any]], str, Page]) -> None:
    _, _, _, page = built
    nr = page.heatmaps["heatmap-needs-relay"]
    assert nr[("symmetric", "symmetric")]["text"] == "needed ×2"  # one matrix-turn + one matrix-noturn
    assert nr[("open", "full-cone")]["text"] == "not needed"
    assert nr[("udp-blocked", "open")]["text"] == "needed"


def test_every_heatmap_cell_links_to_a_session(built: tuple[Path, list[dict[str, Any]], str, Page]) -> None:
    _, _, _, page = built
    for table in ("heatmap-matrix-turn", "heatmap-matrix-noturn", "heatmap-needs-relay"):
        for cell in page.heatmaps[table].values():
            if cell["class"] != "empty":
                assert page.ids[cell["href"][1:]]["tag"] == "details"


def test_cell_links_to_its_unexpected_session(
    built: tuple[Path, list[dict[str, Any]], str, Page], tmp_path: Path
) -> None:
    _, records, _, page = built
    cell = {"group": "matrix-turn", "nat_a": "open", "nat_b": "symmetric"}
    repeats = [
        {**cell, "verdict": "direct", "passed": True},
        {**cell, "verdict": "failed", "passed": False},
        {**cell, "verdict": "relay", "passed": False, "mismatch": "expected needs_relay=false, got true"},
    ]

    def href(recs: list[dict[str, Any]]) -> str:
        return str(report.report_context(tmp_path, recs)["heatmaps"][0]["rows"][0]["cells"][0]["href"])

    assert href(repeats) == "#s-2"
    assert href(repeats[:2]) == "#s-1"
    mixed = page.heatmaps["heatmap-matrix-turn"][("full-cone", "symmetric")]
    first = next(i for i, r in enumerate(records) if r["scenario"] == "matrix-turn/full-cone__symmetric")
    assert mixed["href"] == f"#s-{first}"  # all passed: the first repeat


def test_shares(built: tuple[Path, list[dict[str, Any]], str, Page]) -> None:
    _, records, html, page = built
    summary = results.summarize(records)
    # 3 sample sessions do not know needs_relay: the share says it is of the known ones, and how many not
    assert summary["relay_needed_unknown"] == 3
    assert page.texts["relay-needed"] == f"{100 * summary['relay_needed_share']:.0f}% of known (3 unknown)"
    assert page.texts["relay-needed"] == "30% of known (3 unknown)"
    assert page.texts["relay-won"] == f"{100 * summary['relay_won_share']:.0f}%"
    row = re.search(r'<tr data-kind="udp-blocked">(.*?)</tr>', html, re.S)
    assert row is not None
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
    assert cells[1] == str(summary["per_nat"]["udp-blocked"]["sessions"])
    assert cells[2].endswith("100%")  # every udp-blocked session needed a relay


def test_session_table_and_details(built: tuple[Path, list[dict[str, Any]], str, Page]) -> None:
    _, records, html, page = built
    rows = page.session_rows
    assert len(rows) == len(records)
    mismatched = [i for i, r in enumerate(rows) if "mismatch" in r["class"]]
    assert mismatched == [i for i, r in enumerate(records) if r["mismatch"]]
    for i, row in enumerate(rows):
        assert row["href"] == f"#s-{i}"
        assert page.ids[f"s-{i}"]["tag"] == "details"
        assert row["cells"][1]["text"].startswith(records[i]["scenario"])
    first_bad = rows[mismatched[0]]["cells"]
    assert "expected connect=true, got false" in first_bad[5]["text"]
    assert first_bad[-1]["text"] == "VIOLATED"


def test_details_contents(built: tuple[Path, list[dict[str, Any]], str, Page]) -> None:
    run, records, html, _ = built
    i = next(i for i, r in enumerate(records) if r["pcap"])
    block = html[html.index(f'id="s-{i}"') :]
    block = block[: block.index("</details>")]
    for cand in records[i]["a"]["candidates"]["local"] + records[i]["b"]["candidates"]["remote"]:
        assert cand in block
    assert records[i]["a"]["local"] in block and records[i]["b"]["remote"] in block
    assert block.count('<tr><td class="num">') == len(records[i]["a"]["states"]) + len(
        records[i]["b"]["states"]
    )
    assert "incoming packet ALLOCATE" in block
    assert f'href="{records[i]["pcap"]}"' in block and "file not found" in block
    (run / records[i]["pcap"]).parent.mkdir()
    (run / records[i]["pcap"]).write_bytes(b"\xd4\xc3\xb2\xa1")
    html = report.build_report(run).read_text()
    block = html[html.index(f'id="s-{i}"') :]
    assert "file not found" not in block[: block.index("</details>")]


def test_failed_session_without_pair(built: tuple[Path, list[dict[str, Any]], str, Page]) -> None:
    _, records, html, _ = built
    i = next(i for i, r in enumerate(records) if r["verdict"] == "failed" and r["turn"] != "none")
    block = html[html.index(f'id="s-{i}"') :]
    block = block[: block.index("</details>")]
    assert block.count("no selected pair") == 2
    assert records[i]["reason"] in block


def test_embedded_chart_and_no_external_urls(built: tuple[Path, list[dict[str, Any]], str, Page]) -> None:
    _, _, html, page = built
    assert len(page.images) == 1
    prefix = "data:image/png;base64,"
    assert page.images[0].startswith(prefix)
    png = base64.b64decode(page.images[0][len(prefix) :])
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    assert not re.search(r"https?://", html)
    assert not [u for u in page.urls if re.match(r"^[a-z]+:", u) and not u.startswith("data:")]
    assert "<link" not in html and "@import" not in html


def test_record_text_is_escaped(built: tuple[Path, list[dict[str, Any]], str, Page]) -> None:
    _, _, html, _ = built
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("<script") == 1  # only the report's own hash helper


def test_partial_records(tmp_path: Path) -> None:
    """Records missing keys (older, or a crashed session's) are reported; a line whose field holds the
    wrong type is skipped by the reader and listed at the top of the page (tests/results/test_untrusted.py
    fuzzes every field)."""
    records: list[dict[str, Any]] = [
        {},
        {"scenario": "matrix-turn/open__open", "group": "matrix-turn", "nat_a": "open", "nat_b": "open"},
        {"scenario": "x", "verdict": "failed", "needs_relay": None, "a": {"state": "failed"}},
        {"scenario": "y", "verdict": "relay", "connect_s": 1.0, "a": {"states": [{"what": "ice"}]}},
        {"scenario": "z", "verdict": "weird"},
        {"scenario": "x", "b": None},
        {"scenario": "y", "a": {"states": [{"what": "ice"}, "junk"]}},
        {"scenario": "z", "expected": "n/a", "timings": None, "versions": "?"},
    ]
    write_results(tmp_path, records)
    html = report.build_report(tmp_path).read_text()
    page = Page(html)
    assert len(page.session_rows) == 5
    assert page.heatmaps["heatmap-matrix-turn"][("open", "open")]["text"] == "FAILED"
    assert page.texts["relay-needed"] == "unknown (5)"  # no record knows needs_relay: said, not blank
    assert len(page.images) == 1  # one relay connect time is enough for a chart
    assert "results.jsonl:6: skipped: b: expected object, got null" in html
    assert "results.jsonl:7: skipped: a.states[1]: expected object, got string" in html
    assert "results.jsonl:8: skipped: expected: expected object or null, got string" in html


def test_pcap_url_is_never_linked(tmp_path: Path) -> None:
    write_results(
        tmp_path, [{"scenario": "x", "pcap": "javascript:alert(1)"}, {"scenario": "y", "pcap": "/abs/c.pcap"}]
    )
    html = report.build_report(tmp_path).read_text()
    assert "javascript:alert(1)" in html and 'href="javascript:' not in html
    # A capture is a name inside the run (runfiles.inside): an absolute path is shown, never linked.
    assert "/abs/c.pcap" in html and 'href="/abs' not in html and 'href="../' not in html


def test_empty_results_says_so(tmp_path: Path) -> None:
    write_results(tmp_path, [])
    html = report.build_report(tmp_path).read_text()
    assert "No sessions recorded" in html
    assert "<img" not in html and "heatmap-matrix-turn" not in html


def test_missing_paths_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nope"))):
        report.build_report(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "results.jsonl"))):
        report.build_report(tmp_path)


def test_refuses_to_replace_a_real_latest_directory(tmp_path: Path) -> None:
    run = tmp_path / "r1"
    write_results(run, [])
    (tmp_path / "latest").mkdir()
    with pytest.raises(FileExistsError, match="latest"):
        report.build_report(run)


def test_rebuild_without_moving_latest(built: tuple[Path, list[dict[str, Any]], str, Page]) -> None:
    run, _, _, _ = built
    newer = run.parent / "20261130-000000-0001"
    write_results(newer, sample_records()[:3])
    report.build_report(newer)
    (run / "index.html").unlink()
    out = report.build_report(run, point_latest=False)  # `netsim report` of an older run
    assert out == run.resolve() / "index.html" and out.is_file()
    assert os.readlink(run.parent / "latest") == newer.name


def test_chart_is_deterministic_and_needs_a_connection() -> None:
    records = sample_records()
    png = charts.connect_time_chart(records)
    assert png is not None and png == charts.connect_time_chart(records)
    assert charts.connect_time_chart([r for r in records if r["verdict"] == "failed"]) is None
    assert charts.connect_time_chart([]) is None


# --- headless Chromium ---


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    from netsim.peers.browser import ChromiumError, chromium_binary

    try:
        binary = chromium_binary()
    except ChromiumError as exc:  # part of the set-up (.ci/setup): missing, the rendering tests fail
        pytest.fail(f"{exc}; .ci/setup installs it", pytrace=False)
    browser = Browser(binary, tmp_path_factory.mktemp("chromium"))
    try:
        yield browser
    finally:
        browser.close()


PAGE_PROBE = """(() => {
  const shown = el => !!el && el.getBoundingClientRect().width > 0
    && getComputedStyle(el).visibility !== "hidden";
  const cells = [...document.querySelectorAll("#heatmap-matrix-turn td.cell")];
  const rows = [...document.querySelectorAll("#session-table tbody tr")];
  const img = document.getElementById("connect-chart");
  const table = document.getElementById("session-table");
  const target = document.getElementById(location.hash.slice(1));
  return {
    heatmapCells: cells.filter(shown).length,
    mixedCell: cells.map(c => c.textContent.trim()).find(t => t.startsWith("direct 3/relay 2")) || null,
    cellBackground: cells.length ? getComputedStyle(cells[0]).backgroundColor : null,
    tableRows: rows.filter(shown).length,
    imageDecoded: !!img && img.complete && img.naturalWidth > 0,
    targetOpen: !!target && target.open === true,
    tableOverflow: table.scrollWidth - table.parentElement.clientWidth,
    pageOverflow: document.documentElement.scrollWidth - window.innerWidth,
  };
})()"""

# Interactions: the CSS-only "failed only" filter, and the hash helper when a link is followed later.
INTERACT_PROBE = """new Promise(resolve => {
  document.getElementById("only-bad").click();
  const visible = [...document.querySelectorAll("#session-table tbody tr")]
    .filter(r => r.getBoundingClientRect().height > 0).length;
  window.addEventListener("hashchange", () => resolve({
    visibleWhenFiltered: visible,
    followedOpen: document.getElementById("s-0").open === true,
  }));
  location.hash = "#s-0";
})"""


def test_renders_in_chromium(
    chromium: Browser, built: tuple[Path, list[dict[str, Any]], str, Page], tmp_path: Path
) -> None:
    run, records, _, _ = built
    bad = next(i for i, r in enumerate(records) if r["mismatch"])
    shot = tmp_path / "report.png"
    got = chromium.visit((run / "index.html").as_uri() + f"#s-{bad}", PAGE_PROBE, shot)
    assert got["problems"] == []
    value = got["value"]
    turn_cells = sum(1 for r in records if r["group"] == "matrix-turn")
    assert value["heatmapCells"] == len(
        {(r["nat_a"], r["nat_b"]) for r in records if r["group"] == "matrix-turn"}
    )
    assert value["heatmapCells"] < turn_cells  # repeats share a cell
    assert value["mixedCell"] is not None
    assert value["cellBackground"] not in (None, "rgba(0, 0, 0, 0)")
    assert value["tableRows"] == len(records)
    assert value["imageDecoded"] is True
    assert value["targetOpen"] is True  # the inline script opened the linked <details>
    # Readable at 1,400 px: the sessions table fits without scrolling sideways (issue 17).
    assert value["tableOverflow"] <= 0 and value["pageOverflow"] <= 0, value
    _assert_not_blank(shot)
    got = chromium.visit((run / "index.html").as_uri(), INTERACT_PROBE)
    assert got["problems"] == []
    assert got["value"] == {
        "visibleWhenFiltered": sum(not r["passed"] for r in records),
        "followedOpen": True,
    }
    if dest := os.environ.get("NETSIM_REPORT_SCREENSHOT"):
        Path(dest).write_bytes(shot.read_bytes())  # for a human to look at


def test_chromium_probe_catches_page_errors(chromium: Browser, tmp_path: Path) -> None:
    """The console check above is only worth something if it sees errors when there are some."""
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><p>x</p><script>console.error('boom'); notDefined();</script>")
    got = chromium.visit(page.as_uri(), "1 + 1")
    kinds = sorted(e["kind"] for e in got["problems"])
    assert kinds == ["console.error", "pageerror"]
    assert got["value"] == 2


def _assert_not_blank(png_path: Path) -> None:
    from PIL import Image

    with Image.open(io.BytesIO(png_path.read_bytes())) as im:
        assert im.width == 1400 and im.height > 1000
        colours = im.convert("RGB").resize((64, 64)).getcolors(64 * 64)
        assert colours is not None and len(colours) > 20  # header, heatmap colours, text: not a blank page


def test_stacks_compared_side_by_side(tmp_path: Path) -> None:
    """Per stack pairing: relay shares, first pair not the settled one, disagreement, time to settle; and a
    cell whose first verdict differed says so."""
    records = [r for r in sample_records() if r["group"] == "matrix-turn"][:4]
    browser = json.loads(json.dumps(records[0]))
    browser.update(group="matrix-turn-chromium", verdict="direct", first_verdict="relay", settled_s=0.8)
    browser["scenario"] = "matrix-turn-chromium/" + browser["scenario"].split("/", 1)[1]
    browser["a"]["peer"] = browser["b"]["peer"] = "chromium"
    context = report.report_context(tmp_path, [*records, browser])
    rows = {row["stacks"]: row for row in context["stacks"]}
    assert sorted(rows) == ["aiortc x aiortc", "chromium x chromium"]
    chromium = rows["chromium x chromium"]
    assert (chromium["sessions"], chromium["switched"], chromium["disagree"]) == (1, 1, 0)
    assert chromium["relay_won"] == "0%" and chromium["settled_median"] == fmt_s(0.8)
    assert rows["aiortc x aiortc"]["switched"] == 0
    (hm,) = [h for h in context["heatmaps"] if h["group"] == "matrix-turn-chromium"]
    cells = [c for row in hm["rows"] for c in row["cells"] if c]
    assert [c["first"] for c in cells] == ["first relay"]


def test_held_calls_get_a_timeline_chart_and_a_row(tmp_path: Path) -> None:
    record = json.loads(json.dumps(sample_records()[0]))
    side = {
        "stack": "aiortc",
        "sent": 4,
        "answered": 3,
        "echoes": [[1.0, 1.01], [2.0, None], [3.0, 3.02], [4.0, 4.01]],
    }
    record["call"] = {
        "hold_s": 5.0,
        "interval_s": 1.0,
        "outcome": "recovered",
        "recovery_s": 1.02,
        "events": [{"at_s": 1.0, "action": "down", "t": 1.5}],
        "pair_changes": [{"side": "a", "t": 2.5}],
        "a": {**side, "restart": "unsupported"},
        "b": {**side, "restart": "unsupported"},
    }
    context = report.report_context(tmp_path, [record])
    assert context["calls"] == [
        {"scenario": record["scenario"], "stacks": "aiortc x aiortc", "held": 0, "recovered": 1, "dropped": 0}
    ]
    (session,) = context["sessions"]
    assert session["call"].startswith("outcome recovered; held 5.0 s, echo every 1.0 s; recovered in ")
    assert base64.b64decode(session["call_chart"]).startswith(b"\x89PNG")
    assert report.report_context(tmp_path, sample_records()[:1])["sessions"][0]["call_chart"] is None


def test_the_head_serves_a_ci_maintainer(tmp_path: Path) -> None:
    """Issue 17: every stack's version (Chromium's was missing), the commit, shards and their durations,
    wall time, the merge's warnings; failures first, expected failures apart from real ones."""
    records = sample_records()
    browser = json.loads(json.dumps(records[0]))
    browser["versions"]["chromium"] = "156.0.8078.129"
    noturn = json.loads(json.dumps(records[0]))
    noturn.update(scenario="matrix-noturn/x", verdict="failed", outcome="passed", passed=True, mismatch=None)
    run = tmp_path / "merged"
    write_results(run, [*records, browser, noturn])
    info = {
        "commit": "0f211a63aa55",
        "started": "2026-11-29T04:35:00Z",
        "finished": "2026-11-29T04:39:16Z",
        "wall_s": 256.0,
        "merged_from": [
            {
                "run": "shard-1",
                "sessions": 40,
                "commit": "0f211a63aa55",
                "started": "2026-11-29T04:35:00Z",
                "finished": "2026-11-29T04:39:16Z",
                "wall_s": 256.0,
                "wall_is_lower_bound": False,
            },
            {
                "run": "shard-2",
                "sessions": 25,
                "commit": None,
                "started": None,
                "finished": None,
                "wall_s": 61.0,
                "wall_is_lower_bound": True,
            },
        ],
        "warnings": ["versions.kernel differs: 6.8.0 in shard-1, 6.11.0 in shard-2"],
        "overridden": [],
    }
    (run / "run.json").write_text(json.dumps(info))
    html = report.build_report(run, point_latest=False).read_text()
    page = Page(html)
    assert page.texts["version-chromium"] == "156.0.8078.129" and page.texts["version-aiortc"] == "1.16.0"
    assert page.texts["commit"] == "0f211a63aa55" and page.texts["wall-time"] == "4 min 16 s"
    assert "shard-1" in html and "1 min 1 s or more" in html and "versions.kernel differs" in html
    assert html.index('id="failures"') < html.index('id="matrix"')  # failures first
    violated = html[html.index('id="violated"') : html.index("</ul>", html.index('id="violated"'))]
    assert violated.count("<li>") == sum(1 for r in records if r["mismatch"])
    assert "matrix-noturn/x" not in violated
    expected = html[html.index('id="failed-as-expected"') :]
    assert "matrix-noturn/x" in expected[: expected.index("</details>")]
    (row,) = [r for r in page.session_rows if r["cells"][1]["text"].startswith("matrix-noturn/x")]
    assert "expected-fail" in row["class"] and "FAILED (expected)" in row["cells"][5]["text"]
    assert 'id="disagree-note"' in html and "Sides disagree" in html


def _dual_record(nat_b: str, won: str | None, ipv6_b: bool = True) -> dict[str, Any]:
    """A dual-stack group's session: a gathered both families, b IPv4 alone unless ipv6_b."""
    return {
        "scenario": f"dual-stack/symmetric__{nat_b}",
        "group": "dual-stack",
        "nat_a": "symmetric",
        "nat_b": nat_b,
        "turn": "none",
        "verdict": "direct" if won else "failed",
        "needs_relay": False,
        "a": {"peer": "chromium", "local_type": "host", "remote_type": "host"},
        "b": {"peer": "chromium"},
        "families": {
            "a": ["ipv4", "ipv6"],
            "b": ["ipv4", "ipv6"] if ipv6_b else ["ipv4"],
            "won": won,
            "ipv6_pair": won == "ipv6",
        },
    }


def test_matrix_cells_and_sessions_show_the_address_family(tmp_path: Path) -> None:
    records = [
        _dual_record("symmetric", "ipv6"),
        _dual_record("symmetric", "ipv6"),
        _dual_record("symmetric", "ipv4"),
        _dual_record("full-cone", "ipv4", ipv6_b=False),
    ]
    page = Page(report.render(tmp_path, records))  # type: ignore[arg-type]
    cells = page.heatmaps["heatmap-dual-stack"]
    assert cells[("symmetric", "symmetric")]["text"] == "direct host/host won ipv6 2/ipv4 1 ×3"
    assert cells[("symmetric", "full-cone")]["text"] == "direct host/host won ipv4"
    html = report.render(tmp_path, records)  # type: ignore[arg-type]
    assert "a gathered ipv4+ipv6 · b gathered ipv4 · won ipv4 · an IPv6 pair selected: no" in html
    assert html.count('<dd class="families">') == len(records)
    stack_row = re.search(r"<td>chromium x chromium</td>(.*?)</tr>", html, re.S)
    assert stack_row is not None and stack_row.group(1).endswith('<td class="num">2 of 4</td>')


def test_ipv4_labs_show_no_family(built: tuple[Path, list[dict[str, Any]], str, Page]) -> None:
    _, records, html, page = built
    assert not any("families" in r for r in records)  # the sample predates dual-stack labs
    assert "won ipv" not in html and 'class="families"' not in html
