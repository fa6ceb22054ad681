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

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "scenarios.yml"
ACTIONS = {"actions/checkout@v4", "actions/upload-artifact@v4", "actions/download-artifact@v4"}
SHELL_TOOLS = {"mkdir", "cp"}
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


def _check_netsim(args: list[str]) -> None:
    parser = _subparser(args[0])
    options = {o for action in parser._actions for o in action.option_strings}
    for arg in args[1:]:
        if arg.startswith("-"):
            assert arg in options, f"netsim {args[0]} has no option {arg}"
        elif "*" not in arg and not arg.startswith(("reports/", "shards/")):  # made by the workflow itself
            assert (ROOT / arg).exists(), f"netsim {args[0]}: {arg} is not in the repository"


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
    assert {".ci/setup", "pytest", "netsim merge"} <= seen


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
