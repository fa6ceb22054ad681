"""Population commands: estimate (relay shares from a matrix run and a NAT mix), merge (runs into one)."""

from __future__ import annotations

from typing import Any


def add_parsers(sub: Any) -> None:
    """Registers the estimate and merge commands (none yet)."""
