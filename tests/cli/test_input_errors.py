"""Every stage's bad-input error reaches the user as one line and exit 2, through the CLI's one handler:
each class is raised from inside a command (no root)."""

from __future__ import annotations

import argparse
import importlib
import pkgutil

import pytest

import netsim
from netsim import cli
from netsim.cli import lab as lab_commands
from netsim.errors import InputError


def _input_error_classes() -> list[type[InputError]]:
    """Every subclass of InputError that netsim defines (importing every module finds them all)."""
    for mod in pkgutil.walk_packages(netsim.__path__, "netsim."):
        if not mod.name.endswith("__main__") and "launcher" not in mod.name:
            importlib.import_module(mod.name)
    found: list[type[InputError]] = []
    todo: list[type[InputError]] = [InputError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted(set(found), key=lambda c: f"{c.__module__}.{c.__qualname__}")


CLASSES = _input_error_classes()
STAGE_ERRORS = {
    "TopologyError", "NatError", "ImpairError", "LabInputError", "OptionsError", "ExpectationError",
    "MixError", "SchemaError", "EstimateError", "MergeError", "RerunError", "ShardError", "ScenarioError",
}  # fmt: skip


def test_every_stage_error_derives_from_input_error() -> None:
    assert STAGE_ERRORS <= {c.__name__ for c in CLASSES}


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_each_input_error_exits_2_with_one_line(
    cls: type[InputError], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def raise_it(args: argparse.Namespace) -> int:
        exc = cls.__new__(cls)
        Exception.__init__(exc, f"somefile.toml: turn: unknown value 'x'\n  ({cls.__name__})")
        raise exc

    monkeypatch.setattr(lab_commands, "cmd_list", raise_it)  # `netsim list` now raises it, from inside
    assert cli.main(["list"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("netsim: error: somefile.toml: turn:"), err
    assert "Traceback" not in err
