"""The GitHub Actions workflow cannot run here: check that every command it runs exists in this repository
(scripts, netsim subcommands and their options, pytest options) and that the shards cover the suite."""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from netsim.cli import build_parser
from netsim.suite.blend import resolve

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "scenarios.yml"
ACTIONS = {"actions/checkout@v4", "actions/upload-artifact@v4", "actions/download-artifact@v4"}
SHELL_TOOLS = {"mkdir", "cp", "tee"}
SEPARATORS = {"&&", "||", ";", "|"}


def _workflow() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return data


def _shards() -> list[int]:
    return list(_workflow()["jobs"]["shard"]["strategy"]["matrix"]["shard"])


def _expand(text: str) -> str:
    """The shard job's expressions as the first shard sees them; any other expression must not be in a run."""
    text = text.replace("${{ matrix.shard }}", "1").replace("${{ strategy.job-total }}", str(len(_shards())))
    assert "${{" not in text, f"unexpected expression in: {text}"
    return text


def _commands() -> list[list[str]]:
    """Every command of every `run:` step, split at shell separators, without sudo."""
    out = []
    for job in _workflow()["jobs"].values():
        for step in job["steps"]:
            if "run" not in step:
                continue
            command: list[str] = []
            for token in shlex.split(_expand(step["run"])) + [";"]:
                if token in SEPARATORS:
                    if command:
                        out.append(command[1:] if command[0] == "sudo" else command)
                    command = []
                else:
                    command.append(token)
    return out


def _subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert name in sub.choices, f"netsim has no command {name!r}"
    return sub.choices[name]


def _made_by_the_workflow(value: object) -> bool:
    return "*" in str(value) or str(value).startswith(("reports/", "shards/"))


def _check_netsim(args: list[str]) -> argparse.Namespace:
    """The arguments parse (options exist, values have their types); files are in the repository, mixes
    resolve (a file or a shipped mix's name)."""
    parser = _subparser(args[0])
    try:
        parsed = parser.parse_args(args[1:])
    except SystemExit:
        raise AssertionError(f"netsim {' '.join(args)}: does not parse") from None
    for name, value in vars(parsed).items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, Path) and not _made_by_the_workflow(item):
                assert (ROOT / item).exists(), f"netsim {args[0]} --{name}: {item} is not in the repository"
    for option in ("mix", "mix_b"):
        if getattr(parsed, option, None):
            resolve(getattr(parsed, option))
    return parsed


def _check_pytest(args: list[str]) -> None:
    plugins = [args[i + 1] for i, a in enumerate(args) if a == "-p"]
    paths = [a for a in args if not a.startswith("-") and (ROOT / a).exists()]
    assert paths, f"pytest runs nothing of this repository: {args}"
    cmd = [sys.executable, "-m", "pytest", *sum((["-p", p] for p in plugins), []), *paths, "--help"]
    helptext = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, check=True).stdout
    for arg in args:
        if arg.startswith("--") or re.fullmatch(r"-[a-zA-Z]", arg):
            assert re.search(rf"(^|[\s,]){re.escape(arg)}([\s=,]|$)", helptext, re.M), (
                f"pytest has no option {arg}"
            )


def test_every_command_exists() -> None:
    seen = set()
    for cmd in _commands():
        if cmd[0] == "bash":
            assert (ROOT / cmd[1]).is_file(), f"no script {cmd[1]}"
            seen.add(cmd[1])
        elif cmd[:4] == [".venv/bin/python", "-m", "pytest", *cmd[3:4]] and cmd[2] == "pytest":
            _check_pytest(cmd[3:])
            seen.add("pytest")
        elif cmd[0] == ".venv/bin/netsim":
            _check_netsim(cmd[1:])
            seen.add(f"netsim {cmd[1]}")
        else:
            assert cmd[0] in SHELL_TOOLS and shutil.which(cmd[0]), f"unknown command {cmd}"
    assert {".ci/setup", ".ci/run", "pytest", "netsim merge", "netsim estimate"} <= seen


def test_actions_are_pinned_and_known() -> None:
    for job in _workflow()["jobs"].values():
        for step in job["steps"]:
            if "uses" in step:
                assert step["uses"] in ACTIONS, step["uses"]


def test_shards_cover_the_suite_and_the_merge_publishes_report_and_junit() -> None:
    jobs = _workflow()["jobs"]
    shards = _shards()
    assert shards == list(range(1, len(shards) + 1)) and len(shards) >= 2
    suite = next(c for c in _commands() if "pytest" in c)
    assert "--shard" in suite and suite[suite.index("--shard") + 1] == f"1/{len(shards)}"
    assert "--junit-xml" in suite and "scenarios/" in suite
    merge = jobs["merge"]
    assert merge["needs"] == "shard" and merge["if"] == "always()"
    published = next(s for s in merge["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    paths = published["with"]["path"]
    assert "reports/merged/index.html" in paths and "reports/merged/junit/" in paths


@pytest.mark.parametrize("job", ["shard", "merge"])
def test_jobs_set_up_with_the_ci_script(job: str) -> None:
    runs = [s.get("run", "") for s in _workflow()["jobs"][job]["steps"]]
    assert "sudo bash .ci/setup" in runs


def _netsim_commands(name: str) -> list[argparse.Namespace]:
    return [_check_netsim(c[1:]) for c in _commands() if c[:2] == [".venv/bin/netsim", name]]


def test_checks_run_in_a_job_of_their_own() -> None:
    runs = [s.get("run", "") for s in _workflow()["jobs"]["checks"]["steps"]]
    assert runs == ["", "sudo bash .ci/run"]
    ci_run = (ROOT / ".ci" / "run").read_text()
    assert "pytest" in ci_run and "ruff check" in ci_run and "mypy netsim" in ci_run


def test_the_merge_is_never_forced() -> None:
    (merge,) = _netsim_commands("merge")
    assert merge.force is False


def test_the_estimate_uses_a_cited_mix_from_cells_with_three_repeats() -> None:
    """Issue 17: an estimate from the invented mix with one repeat per cell is noise published as a figure."""
    estimates = _netsim_commands("estimate")
    assert estimates
    (matrix,) = _netsim_commands("matrix")
    assert matrix.repeats >= 3
    for est in estimates:
        mix = resolve(est.mix)
        assert mix.name == resolve(matrix.mix).name and mix.name != "illustrative"
        assert any(k.basis == "from" for k in mix.kinds), f"{mix.name}: no weight read from a source"
        assert est.min_repeats >= 3 and est.matrix.parts[:2] == ("reports", "mix")
