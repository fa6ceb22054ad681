"""Rules and probing commands: rules show/check (NAT rulesets without a lab), stun (a STUN probe in a lab)."""

from __future__ import annotations

from typing import Any


def add_parsers(sub: Any) -> None:
    """Registers the rules and stun commands (none yet)."""
