"""The command line's contract without a lab: every command listed, one-line errors, exit codes (no root)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from netsim.cli import build_parser, main

COMMANDS = [
    "up",
    "exec",
    "down",
    "cleanup",
    "list",
    "classify",
    "pair",
    "matrix",
    "run",
    "population",
    "rerun",
    "report",
    "compare",
    "export",
    "signaling",
    "token",
    "rules",
    "stun",
    "estimate",
    "merge",
    "doctor",
]


def test_help_lists_every_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "netsim", "--help"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0
    for command in COMMANDS:
        assert f"    {command}" in out.stdout, command
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert sorted(sub.choices) == sorted(COMMANDS)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["pair", "--nat-a", "open", "--nat-b", "open", "--deadline", "-1"],
            "must be greater than 0, got -1",
        ),
        (["pair", "--nat-a", "open", "--nat-b", "open", "--deadline", "0"], "must be greater than 0, got 0"),
        (["matrix", "--repeats", "0"], "must be at least 1, got 0"),
        (["signaling", "--port", "70000"], "must be 0-65535, got 70000"),
        (
            ["pair", "--peer-a", "safari"],
            "choose from aiortc, chromium, firefox, pion or exec:COMMAND, got 'safari'",
        ),
        (["pair", "--peer-b", "exec: "], "'exec: ' names no command (exec:COMMAND)"),
        (
            ["population", "--peers", "pion"],
            "expected two of aiortc, chromium, firefox, pion (or exec:COMMAND)",
        ),
    ],
)
def test_usage_errors_exit_2_naming_the_value(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["matrix", "--kinds", ""], "netsim: error: --kinds: give at least one NAT kind\n"),
        (["matrix", "--kinds", "open,warp"], "netsim: error: --kinds: unknown NAT kind 'warp'"),
        (["pair", "--nat-a", "warp", "--nat-b", "open"], "netsim: error: --nat-a: unknown NAT type 'warp'"),
        (["matrix", "--ipv6", "none,triple"], "netsim: error: --ipv6: unknown IP mode 'triple'"),
        (["matrix", "--ipv6", "only"], "netsim: error: --ipv6: 'only' needs lab names with DNS64"),
        (["matrix", "--kinds", "symmetric,nope.nft"], "netsim: error: --kinds: unknown NAT kind 'nope.nft'"),
        (["population", "--mix", "open=x"], "netsim: error: --mix: bad weight in 'open=x'"),
        (
            ["matrix", "--mix", "enterprise", "--ipv6", "dual"],
            "netsim: error: --ipv6: the mix has no IP-mode shares",
        ),
        (["run", "nope.toml"], "netsim: error: nope.toml: no such file\n"),
        (["token", "dave", "--secret", ""], "netsim: error: a secret is required"),
        (["token", "--secret", "s", "bad user"], "netsim: error: invalid user id 'bad user'\n"),
        (["down", "ns0nosuchlab"], "netsim: error: "),
    ],
)
def test_bad_input_is_one_line_exit_2(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NETSIM_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.delenv("NETSIM_SIGNALING_SECRET", raising=False)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err
    assert not (tmp_path / "reports").exists()  # nothing was started, nothing left behind


def test_report_of_a_directory_without_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"netsim: error: {tmp_path}: not a run directory (no results.jsonl)\n"


def test_an_internal_error_exits_3_with_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import netsim.cli.services as services

    def broken(*args: object, **kwargs: object) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(services, "make_token", broken)
    assert main(["token", "--secret", "s", "dave"]) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: boom" in err and "netsim: internal error" in err


def test_report_of_an_old_run_leaves_latest_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "results"))
    from report_fixtures import sample_records, write_results

    old, new = tmp_path / "20261101-000000-aaaa", tmp_path / "20261102-000000-bbbb"
    write_results(old, sample_records())
    write_results(new, sample_records())
    (tmp_path / "latest").symlink_to(new.name)
    assert main(["report", str(old)]) == 0
    assert capsys.readouterr().out.strip() == str(old / "index.html")
    assert (old / "index.html").is_file() and (tmp_path / "latest").resolve() == new


def test_run_commands_default_to_reports_of_the_working_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    from netsim.cli.run import reports_root

    args = build_parser().parse_args(["matrix"])
    monkeypatch.delenv("NETSIM_REPORTS", raising=False)
    assert reports_root(args) == Path("reports")
    monkeypatch.setenv("NETSIM_REPORTS", "/data/runs")
    assert reports_root(args) == Path("/data/runs")
    assert reports_root(build_parser().parse_args(["matrix", "--reports", "x"])) == Path("x")


def test_pair_defaults_to_the_home_router_nat_as_up_does() -> None:
    # The issue's acceptance line names no NAT: both sides get `netsim up`'s default.
    args = build_parser().parse_args(["pair", "--hold", "10", "--event", "3:down:nat-a:3", "--json"])
    assert (args.nat_a, args.nat_b) == ("port-restricted-cone",) * 2
    assert build_parser().parse_args(["up"]).nat_a == args.nat_a
    assert build_parser().parse_args(["pair", "--nat-b", "symmetric"]).nat_b == "symmetric"


def test_population_with_browser_peers_refuses_concurrent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Hundreds of browsers in one lab would take the machine's memory: one line, nothing built."""
    argv = ["population", "--peers", "firefox,aiortc", "--concurrent", "10", "--reports", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("netsim: error: --concurrent: firefox peers start a browser each")
    assert err.count("\n") == 1
    assert not any(tmp_path.iterdir())


def test_population_takes_the_stacks_of_a_and_b() -> None:
    from netsim.suite.catalog import population

    scenarios = population(
        4, {"full-cone": 1.0, "symmetric": 1.0}, seed=2, peer_a="firefox", peer_b="chromium"
    )
    assert {(s.options.peer_a, s.options.peer_b) for s in scenarios} == {("firefox", "chromium")}
    args = build_parser().parse_args(["population", "--peers", "firefox,aiortc"])
    assert args.peers == ("firefox", "aiortc")
