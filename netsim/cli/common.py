"""What every command shares: exit codes, the errors that count as bad input, small argument helpers.

`InputError` is re-exported from netsim.errors for the commands that raise it."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, NoReturn

from netsim.errors import InputError
from netsim.vocab import PEER_STACKS

EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_INPUT = 2
EXIT_BROKEN = 3
EXIT_INTERRUPTED = 130


def input_errors() -> tuple[type[BaseException], ...]:
    """What counts as bad input: every stage's InputError; a missing file or directory named by the user
    (one line, exit 2, never a traceback). LabError also covers a lab that cannot be built or used on
    this machine: one line naming what is missing, as before."""
    from netsim.lab.registry import LabError

    return (InputError, LabError, FileNotFoundError, NotADirectoryError)


class UsageParser(argparse.ArgumentParser):
    """argparse with usage errors as one line, `netsim: error: --OPTION: ...`, exit 2 (no usage block)."""

    def error(self, message: str) -> NoReturn:
        text = message.replace("argument ", "", 1) if message.startswith("argument ") else message
        print(f"netsim: error: {' '.join(text.split())}", file=sys.stderr)
        raise SystemExit(EXIT_INPUT)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0-65535, got {value}")
    return value


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, default=str)
    print()


def stacks(text: str) -> tuple[str, str]:
    """`a,b` stacks, e.g. chromium,aiortc."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or any(p not in PEER_STACKS for p in parts):
        raise argparse.ArgumentTypeError(
            f"expected two of {', '.join(PEER_STACKS)} like chromium,aiortc, got {text!r}"
        )
    return parts[0], parts[1]
