"""Run directories from someone else are data, never instructions (issue 18): crafted runs replay each
finding of the audit against `report`, `merge`, `compare`, `export`, `estimate` and `rerun`.

The base record (data/full_record.json) is a real session's record (a held call, a rules file, a capture),
with its paths made relative, so every field a netsim writes is fuzzed.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import csv
import html
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netsim.cli import main
from netsim.results import reader

BASE = Path(__file__).parent / "data" / "full_record.json"
WRONG: tuple[Any, ...] = (None, True, 7, 2.5, "x", [], {})
MIX = 'name = "one"\nsource = ["a test"]\n[kinds."full-cone"]\nweight = 1.0\nassumption = "all"\n'


def record(**changes: Any) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(BASE.read_text())
    out.update(changes)
    return out


def write_run(path: Path, records: list[Any], raw: tuple[bytes, ...] = ()) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r).encode() for r in records] + list(raw)
    (path / "results.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def netsim(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_clean(code: int, err: str, allowed: tuple[int, ...] = (0, 1, 2, 4)) -> None:
    """Never a traceback (exit 3): bad input is skipped or refused in one line."""
    assert code in allowed and "Traceback" not in err, err[-3000:]


def hrefs(page: str) -> list[str]:
    return [html.unescape(h) for h in re.findall(r'href="([^"]*)"', page)]


def as_a_browser_reads(href: str) -> str:
    """What a browser makes of an href: leading/trailing C0 controls and spaces stripped, tabs and
    newlines removed anywhere (WHATWG URL parsing)."""
    return re.sub(r"[\t\n\r]", "", href.strip("".join(map(chr, range(0x21)))))


def assert_links_stay_inside(run: Path) -> list[str]:
    """Every link of run/index.html is an anchor or a relative file inside the run; returns the files."""
    files = []
    for href in hrefs((run / "index.html").read_text()):
        seen = as_a_browser_reads(href)
        if seen.startswith("#"):
            continue
        assert not re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", seen), href
        assert not seen.startswith(("/", "\\")) and "\\" not in seen, href
        assert (run / seen).resolve().is_relative_to(run.resolve()), href
        files.append(seen)
    return files


# --- report and merge write only inside their run ---------------------------------------------------------


def test_report_never_writes_through_a_planted_temporary_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A symlink named like the report's temporary file used to receive the page (and index.html became a
    link to its target, an authorized_keys-shaped file holding a record's text)."""
    target = tmp_path / "home" / ".ssh" / "authorized_keys"
    target.parent.mkdir(parents=True)
    run = write_run(tmp_path / "run", [record(coturn_log="\nssh-ed25519 AAAAC3Nza attacker@evil\n")])
    for pid in {os.getpid(), os.getppid(), *range(os.getpid() - 5, os.getpid() + 5)}:
        (run / f".index.html.{pid}.tmp").symlink_to(target)
    code, _out, err = netsim(capsys, "report", run)
    assert_clean(code, err, (0,))
    assert not target.exists()
    assert (run / "index.html").is_file() and not (run / "index.html").is_symlink()


def test_an_output_that_is_a_symlink_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "elsewhere.html"
    run = write_run(tmp_path / "run", [record()])
    (run / "index.html").symlink_to(target)
    code, _out, err = netsim(capsys, "report", run)
    assert code == 2 and len(err.splitlines()) == 1 and "symlink" in err, err
    assert not target.exists()
    csv = tmp_path / "out.csv"
    csv.symlink_to(target)
    code, _out, err = netsim(capsys, "export", run, "--csv", "-o", csv)
    assert code == 2 and "symlink" in err and not target.exists(), err
    code, _out, err = netsim(capsys, "compare", run, run, "--html", csv)
    assert code == 2 and "symlink" in err and not target.exists(), err


def test_merge_copies_nothing_from_outside_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A capture of `../...` or a symlinked capture used to be copied into OUT/pcap/ and linked."""
    secret = b"SECRET-OUTSIDE-THE-RUN"
    (tmp_path / "shards" / "secret.pcap").parent.mkdir(parents=True)
    (tmp_path / "shards" / "secret.pcap").write_bytes(secret)
    (tmp_path / "private.key").write_bytes(secret)
    one = write_run(tmp_path / "shards" / "one", [record(pcap="../secret.pcap"), record(pcap="pcap/ok.pcap")])
    (one / "pcap").mkdir()
    (one / "pcap" / "ok.pcap").write_bytes(b"a capture")
    two = write_run(tmp_path / "shards" / "two", [record(pcap="pcap/linked.pcap")])
    (two / "pcap").mkdir()
    (two / "pcap" / "linked.pcap").symlink_to(tmp_path / "private.key")
    out = tmp_path / "merged"
    code, out_text, err = netsim(capsys, "merge", one, two, "-o", out)
    assert_clean(code, err, (0,))
    copied = [p for p in out.rglob("*") if p.is_file() and p.read_bytes() == secret]
    assert copied == []
    assert (
        "../secret.pcap" in out_text + err and "pcap/linked.pcap" in out_text + err
    )  # each left out, warned
    assert assert_links_stay_inside(out) == ["pcap/one/ok.pcap"]
    # Written through private temporary names, readable like any run once in place.
    assert (out.stat().st_mode & 0o777, (out / "index.html").stat().st_mode & 0o777) == (0o755, 0o644)


def test_a_run_reads_no_file_of_this_machine_through_a_symlink(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """results.jsonl or run.json linked to a file outside the run is never read."""
    secret = tmp_path / "secret.json"
    secret.write_text('{"commit": "SECRET-COMMIT", "started": null, "finished": null, "wall_s": null}\n')
    run = write_run(tmp_path / "run", [record()])
    (run / "run.json").symlink_to(secret)
    code, _out, err = netsim(capsys, "report", run)
    assert_clean(code, err, (0,))
    assert "run.json" in err and "SECRET-COMMIT" not in (run / "index.html").read_text()
    (run / "results.jsonl").unlink()
    (run / "results.jsonl").symlink_to(secret)
    code, _out, err = netsim(capsys, "export", run, "--csv")
    assert code == 2 and len(err.splitlines()) == 1 and "symlink" in err and "SECRET" not in err, err


# --- rerun reads and writes nothing outside its run ---------------------------------------------------------


def test_rerun_writes_no_rules_file_outside_its_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rules entry whose site is `../../...` used to write the record's text outside the run, even when
    the record was then refused."""
    rec = record(scenario="evil")
    rec["experiment"]["rules"][0]["site"] = "../../../planted"
    run = write_run(tmp_path / "run", [rec])
    reports = tmp_path / "reports"
    code, _out, err = netsim(capsys, "rerun", run, "evil", "--reports", reports)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert not list(tmp_path.rglob("planted*"))
    assert not reports.exists() or not any(reports.iterdir())  # refused: nothing left behind


def test_rerun_never_reads_a_file_the_record_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A topology whose rules_file names a local file (with no kept text) used to make nft read it, and
    the error printed a line of it."""
    local = tmp_path / "local.nft"
    local.write_text("SECRET-LINE of a local file\n")
    rec = record(scenario="reads")
    rec["experiment"]["rules"] = []
    rec["experiment"]["topology"]["site"][0]["nat"]["rules_file"] = str(local)
    run = write_run(tmp_path / "run", [rec])
    code, out, err = netsim(capsys, "rerun", run, "reads", "--reports", tmp_path / "reports")
    assert code == 2 and len(err.splitlines()) == 1 and "rules_file" in err, err
    assert "SECRET-LINE" not in out + err


def test_rerun_never_runs_a_command_the_record_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An `exec:COMMAND` peer in a record would run that command on this machine."""
    planted = tmp_path / "ran"
    rec = record(scenario="exec")
    rec["experiment"]["options"]["peer_a"] = f"exec:touch {planted}"
    run = write_run(tmp_path / "run", [rec])
    code, _out, err = netsim(capsys, "rerun", run, "exec", "--reports", tmp_path / "reports")
    assert code == 2 and "exec:" in err, err
    assert not planted.exists()


# --- links stay links into the run -----------------------------------------------------------------------

DISGUISED = (
    " javascript:alert(1)",
    "\tjavascript:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "\x01javascript:alert(1)",
    "\\\\host\\x.pcap",
    "//host/x.pcap",
    "/etc/passwd",
    "data:text/html,<script>alert(1)</script>",
    "JaVaScRiPt:alert(1)",
)


def test_report_links_only_files_inside_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Five disguised javascript: captures became live links, and \\\\host\\x.pcap kept an external host."""
    run = write_run(tmp_path / "run", [record(pcap=p, scenario=f"s{i}") for i, p in enumerate(DISGUISED)])
    code, _out, err = netsim(capsys, "report", run)
    assert_clean(code, err, (0,))
    assert assert_links_stay_inside(run) == []
    out = tmp_path / "merged"
    code, _out, err = netsim(capsys, "merge", run, "-o", out)
    assert_clean(code, err, (0,))
    assert assert_links_stay_inside(out) == []


# --- one bad line stops no reader ---------------------------------------------------------------------------


def _paths(obj: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every field of a record: each key, and the first element of each list."""
    items = obj.items() if isinstance(obj, dict) else [(0, obj[0])] if isinstance(obj, list) and obj else []
    for key, value in items:
        yield (*at, key)
        yield from _paths(value, (*at, key))


def mutations(base: dict[str, Any], under: str | None = None) -> Iterator[dict[str, Any]]:
    """The base record with one field (under a top-level key, or any) set to each JSON kind it does not
    hold."""
    for path in _paths(base):
        if under is not None and path[0] != under:
            continue
        for wrong in WRONG:
            rec = copy.deepcopy(base)
            if path[0] != "call":
                rec.pop("call")  # a held call's chart is costly: only where the call itself is mutated
            parent = rec
            for key in path[:-1]:
                parent = parent[key]
            if type(parent[path[-1]]) is type(wrong):
                continue
            parent[path[-1]] = copy.deepcopy(wrong)
            yield rec


def matrix_record(**changes: Any) -> dict[str, Any]:
    return record(group="matrix-turn", nat_a="full-cone", nat_b="full-cone", **changes)


NESTED = b'{"scenario": ' + b'{"a": [' * 230 + b"1" + b"]}" * 230 + b"}"


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A matrix run with every single-field mutation of the base record, a 2 KB deeply nested line, a
    NaN and a line too long, beside good records."""
    root = tmp_path_factory.mktemp("fuzz")
    good = [matrix_record(scenario=f"matrix-turn/good-{i}", repeat=i) for i in range(3)]
    raw = (NESTED, b'{"connect_s": NaN}', b"[1, 2]", b'{"x": "' + b"y" * (reader.MAX_LINE_BYTES + 10) + b'"}')
    write_run(root / "good", good)
    lines = [json.dumps(r).encode() for r in [*good, *mutations(matrix_record())]]
    (root / "bad" / "results.jsonl").parent.mkdir()
    (root / "bad" / "results.jsonl").write_bytes(
        b"".join(line + b"\n" for line in [*lines[:3], *raw, *lines[3:]])
    )
    (root / "mix.toml").write_text(MIX)
    return root


def test_the_fuzzed_lines_are_many(fuzzed: Path) -> None:
    assert len((fuzzed / "bad" / "results.jsonl").read_bytes().splitlines()) > 2000
    assert len(NESTED) > 2000


@pytest.mark.parametrize("command", ["report", "merge", "export", "estimate", "compare"])
def test_no_bad_line_stops_a_reader(fuzzed: Path, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """58 of 390 single-field mutations for report and merge, 24 for export, 8 for estimate, and a deeply
    nested 2 KB line gave exit 3 with a traceback."""
    bad, out = fuzzed / "bad", fuzzed / f"merged-{command}"
    argv: dict[str, list[Any]] = {
        "report": ["report", bad],
        "merge": ["merge", bad, fuzzed / "good", "-o", out, "--force", "--no-report"],
        "export": ["export", bad, "--csv", "-o", fuzzed / "bad.csv"],
        "estimate": ["estimate", "--matrix", bad, "--mix", fuzzed / "mix.toml"],
        "compare": ["compare", fuzzed / "good", bad],
    }
    code, _out, err = netsim(capsys, *argv[command])
    assert_clean(code, err)
    assert f"{bad / 'results.jsonl'}:4: skipped: nested deeper than" in err  # file, line, why
    assert re.search(r"results\.jsonl:\d+: skipped: a\.timings\.rtt_ms: expected number or null, got", err)
    assert code != 2 or command == "estimate", err[-2000:]


def test_the_report_lists_the_lines_it_skipped(fuzzed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = write_run(fuzzed / "few", [record(), record(connect_s="soon")], (NESTED,))
    code, _out, err = netsim(capsys, "report", run)
    assert_clean(code, err, (0,))
    page = (run / "index.html").read_text()
    assert "results.jsonl:2: skipped: connect_s: expected number or null, got string" in page
    assert "results.jsonl:3: skipped: nested deeper than" in page


def test_rerun_of_a_bad_record_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A malformed record made rerun exit 3; every mutation of its experiment is refused (exit 2) or
    makes a scenario, before any lab."""
    from netsim.results.rerun import scenario_to_rerun

    base = record(scenario="one")
    for i, rec in enumerate(mutations(base, "experiment")):
        run = write_run(tmp_path / f"run{i}", [rec])
        try:
            scenario_to_rerun(run, "one", None, tmp_path / f"rules{i}")
        except reader.InputError as e:
            assert "\n" not in str(e)
    capsys.readouterr()
    rec = record(scenario="one", experiment={"topology": 3})
    code, _out, err = netsim(capsys, "rerun", write_run(tmp_path / "bad", [rec]), "one")
    assert code == 2 and len(err.splitlines()) == 2, err  # the skipped line's warning, then the refusal


def test_a_topology_of_thousands_of_hosts_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A record's topology of 99 sites x 252 hosts (24,948 hosts) used to be accepted."""
    rec = record(scenario="huge")
    site = rec["experiment"]["topology"]["site"][1]
    rec["experiment"]["topology"]["site"] = [
        {**site, "name": f"s{i}", "hosts": [f"h{i}-{j}" for j in range(252)]} for i in range(99)
    ]
    run = write_run(tmp_path / "run", [rec])
    code, _out, err = netsim(capsys, "rerun", run, "huge", "--reports", tmp_path / "reports")
    assert code == 2 and "99 sites and carriers (at most 16)" in err, err


# --- terminal and spreadsheet text -------------------------------------------------------------------------

ESCAPES = ("\x1b]0;pwned\x07", "\x1b[2J\x1b[H", "no cell changed\r", "\x9b31m", "\u202etxt.exe")


def test_escape_sequences_in_records_print_as_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """compare and rerun's errors printed records' escape sequences raw (a fake line, a window title)."""
    a = write_run(tmp_path / "a", [record(scenario=f"s{i}{e}") for i, e in enumerate(ESCAPES)])
    b = write_run(tmp_path / "b", [record(scenario="other")])
    code, out, err = netsim(capsys, "compare", a, b)
    assert_clean(code, err, (0,))
    code2, out2, err2 = netsim(capsys, "rerun", a, "missing", "--reports", tmp_path / "reports")
    assert code2 == 2, err2
    for text in (out, err, out2, err2):
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", text), repr(text)
    assert "\\x1b]0;pwned\\x07" in out and "\\x1b]0;pwned\\x07" in err2


def test_csv_cells_that_a_spreadsheet_would_run_are_inert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """export --csv wrote =HYPERLINK(...) and @SUM(...) cells unchanged."""
    formulas = {
        "reason": '=HYPERLINK("http://evil.example/","click")',
        "scenario": "@SUM(1+1)*cmd|' /C calc'!A0",
        "group": "+1+1",
        "nat_a": "-2+3",
        "nat_b": "\t=1+1",
        "started_at": "\r=1+1",
    }
    run = write_run(tmp_path / "run", [record(**formulas)])
    code, out, err = netsim(capsys, "export", run, "--csv")
    assert_clean(code, err, (0,))
    header, values = csv.reader(io.StringIO(out, newline=""))
    row = dict(zip(header, values, strict=True))
    for key, value in formulas.items():
        assert row[key] == "'" + value, (key, row[key])
    assert row["connect_s"][0].isdigit()  # numbers stay numbers


# --- the rule kept: every path taken from a record goes through the one resolver ---------------------------

NETSIM = Path(__file__).resolve().parents[2] / "netsim"
RECORD_PATH_FIELDS = {"pcap", "rules", "rules_file", "scenario_file", "path"}
FILE_CALLS = {
    *("open", "read_text", "read_bytes", "write_text", "write_bytes", "write_file", "copy", "copy2"),
    *("copyfile", "copytree", "symlink_to", "unlink", "os.replace", "os.rename", "rmtree", "mkdir"),
}


def _called(node: ast.AST) -> set[str]:
    names = set()
    for call in ast.walk(node):
        if isinstance(call, ast.Call):
            func = call.func
            names.add(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "os":
                names.add(f"os.{func.attr}")  # os.replace, not str.replace
    return names


def _record_fields(node: ast.FunctionDef) -> set[str]:
    """Path fields a function reads from a mapping (`x.get("pcap")`, `x["rules_file"]`) or takes as a
    parameter of that name (`rules`)."""
    params = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
    found = {a.arg for a in params if a.arg in RECORD_PATH_FIELDS - {"path"}}
    for sub in ast.walk(node):
        key = None
        if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr == "get":
            key = sub.args[0] if sub.args else None
        elif isinstance(sub, ast.Subscript) and isinstance(sub.ctx, ast.Load):
            key = sub.slice
        if isinstance(key, ast.Constant) and key.value in RECORD_PATH_FIELDS:
            found.add(key.value)
    return found


def bypasses(root: Path) -> list[str]:
    """Functions that read a path field from a mapping (a record) and touch files without calling the
    resolver, runfiles.inside."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.FunctionDef):
                continue
            fields, calls = _record_fields(node), _called(node)
            if fields and calls & FILE_CALLS and "inside" not in calls:
                found.append(f"{path.relative_to(root.parent)}:{node.lineno} {node.name}: {sorted(fields)}")
    return found


def test_no_path_from_a_record_bypasses_the_resolver() -> None:
    """What the audit found (merge's capture copy, rerun's rules files) can come back only through a
    function that reads a record's path field and opens, copies or writes files without the resolver."""
    assert bypasses(NETSIM) == []
    users = [f"{p.relative_to(NETSIM)}" for p in NETSIM.rglob("*.py") if "runfiles.inside(" in p.read_text()]
    assert set(users) >= {
        "results/merge.py",
        "results/sessions.py",
        "results/reader.py",
        "suite/experiment.py",
    }


def test_the_check_finds_a_bypass(tmp_path: Path) -> None:
    (tmp_path / "netsim").mkdir()
    (tmp_path / "netsim" / "bad.py").write_text(
        "import shutil\ndef copy_capture(record, out):\n    shutil.copy2(record.get('pcap'), out)\n"
    )
    assert bypasses(tmp_path / "netsim") == ["netsim/bad.py:2 copy_capture: ['pcap']"]


# --- a full disk -------------------------------------------------------------------------------------------


def _fill(directory: Path) -> None:
    """Take every free block of the file system (a private tmpfs): the next write fails."""
    for name, chunk in (("filler", 65536), ("filler2", 1)):  # then the last partial block
        with (directory / name).open("wb", buffering=0) as fh, contextlib.suppress(OSError):
            while True:
                fh.write(b"\0" * chunk)


@pytest.mark.root
def test_a_full_disk_stops_report_merge_and_export_in_one_line(tmp_path: Path) -> None:
    """A write error used to be exit 3 "a bug in netsim" with a temporary file left behind; now one line
    naming the path, exit 2, nothing half-written and no temporary file left."""
    from tests.test_faults import _small_tmpfs

    where = tmp_path / "full"
    with _small_tmpfs(where, 1024) as disk:
        holder = disk.parts[2]  # /proc/PID/root/...: the pid whose mount namespace holds the tmpfs
        write_run(disk / "run", [record(scenario=f"s{i}") for i in range(3)])
        _fill(disk)
        before = sorted(p.name for p in disk.iterdir())
        for argv, path in (
            (["report", "run"], where / "run" / "index.html"),
            (["merge", "run", "-o", "merged"], "merged"),
            (["export", "run", "--csv", "-o", "run.csv"], "run.csv"),
        ):
            cd = ["sh", "-c", 'cd "$0" && exec "$@"', str(where)]  # inside the namespace, on the tmpfs
            inside = ["nsenter", "-t", holder, "-m", *cd, sys.executable, "-m", "netsim"]
            done = subprocess.run([*inside, *argv], capture_output=True, text=True, timeout=120)
            assert done.returncode == 2, done.stderr
            assert done.stderr == f"netsim: error: {path}: No space left on device\n", done.stderr
        assert sorted(p.name for p in disk.iterdir()) == before
        assert sorted(p.name for p in (disk / "run").iterdir()) == ["results.jsonl"]
