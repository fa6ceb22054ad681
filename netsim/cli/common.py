"""What every command shares: exit codes, the errors that count as bad input, small argument helpers.

`InputError` is re-exported from netsim.errors for the commands that raise it."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any, NoReturn

from netsim.errors import InputError, printable
from netsim.vocab import EXEC_PREFIX, PEER_STACKS

EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_INPUT = 2
EXIT_BROKEN = 3
EXIT_INCONCLUSIVE = 4  # sessions stayed inconclusive (load) and nothing was violated
EXIT_INTERRUPTED = 130


def input_errors() -> tuple[type[BaseException], ...]:
    """What counts as bad input: every stage's InputError; a missing file or directory named by the user
    (one line, exit 2, never a traceback). LabError also covers a lab that cannot be built or used on
    this machine: one line naming what is missing, as before; WriteStop a run directory that cannot be
    written (a full disk): one line naming the file."""
    from netsim.lab.registry import LabError
    from netsim.suite.parallel import WriteStop

    return (InputError, LabError, WriteStop, FileNotFoundError, NotADirectoryError)


class _Warnings(logging.Handler):
    """`netsim: warning: ...` on the standard error of the moment (pytest swaps it per test)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"netsim: warning: {printable(record.getMessage())}", file=sys.stderr)


def show_warnings() -> None:
    """Show the results stage's warnings (a line the reader skipped, a capture left out), once each."""
    logger = logging.getLogger("netsim.results")
    if not any(isinstance(h, _Warnings) for h in logger.handlers):
        logger.addHandler(_Warnings(logging.WARNING))


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


def retries_arg(text: str) -> int:
    """--retries: 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def jobs_arg(text: str) -> int:
    """-j N or -j auto (0: sized from the machine by netsim.suite.parallel.auto_jobs)."""
    return 0 if text == "auto" else positive_int(text)


def exit_code(violated: int, inconclusive: int) -> int:
    """1 when an expectation was violated (it wins), else 4 when sessions stayed inconclusive, else 0."""
    return EXIT_MISMATCH if violated else EXIT_INCONCLUSIVE if inconclusive else EXIT_OK


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


def peer_name(text: str) -> str:
    """A side's stack: one netsim knows, or exec:COMMAND (a program speaking the peer protocol)."""
    if text.startswith(EXEC_PREFIX):
        if not text.removeprefix(EXEC_PREFIX).strip():
            raise argparse.ArgumentTypeError(f"{text!r} names no command (exec:COMMAND)")
        return text
    if text not in PEER_STACKS:
        choices = ", ".join(PEER_STACKS)
        raise argparse.ArgumentTypeError(f"choose from {choices} or exec:COMMAND, got {text!r}")
    return text


def stacks(text: str) -> tuple[str, str]:
    """`a,b` stacks, e.g. chromium,aiortc (an exec:COMMAND side, whose command has no comma, too)."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or not all(p in PEER_STACKS or p.startswith(EXEC_PREFIX) for p in parts):
        raise argparse.ArgumentTypeError(
            f"expected two of {', '.join(PEER_STACKS)} (or exec:COMMAND) like chromium,aiortc, got {text!r}"
        )
    return parts[0], parts[1]
