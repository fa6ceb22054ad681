"""What every command shares: exit codes, the errors that count as bad input, small argument helpers."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from netsim.vocab import PEER_STACKS

EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_INPUT = 2
EXIT_BROKEN = 3
EXIT_INTERRUPTED = 130


class InputError(ValueError):
    """Bad input the CLI itself found (an argument out of range, a missing file)."""


def input_errors() -> tuple[type[BaseException], ...]:
    """Exceptions the stages raise for bad input: shown as one line, exit 2 (never a traceback)."""
    from netsim.lab.impair import ImpairError
    from netsim.lab.nat import NatError
    from netsim.lab.registry import LabError
    from netsim.lab.topology import TopologyError
    from netsim.results.estimate import EstimateError
    from netsim.results.merge import MergeError
    from netsim.results.store import SchemaError
    from netsim.session.options import OptionsError
    from netsim.suite.expectations import ExpectationError
    from netsim.suite.experiment import RerunError
    from netsim.suite.mixes import MixError

    return (
        InputError,
        TopologyError,
        NatError,
        ImpairError,
        LabError,
        OptionsError,
        ExpectationError,
        MixError,
        SchemaError,
        EstimateError,
        MergeError,
        RerunError,
        FileNotFoundError,
        NotADirectoryError,
    )


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
