"""Checks shared by a mix file's kind weights and IP-mode shares (netsim.suite.mixes): where a figure comes
from, its plausible range, and each kind's split over IP modes (`IpShares`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Final

from netsim.errors import InputError
from netsim.vocab import CLAT, DUAL, IPV4_ONLY, IPV6_ONLY

FROM: Final = "from"
ASSUMPTION: Final = "assumption"
CHECKED: Final = ("primary", "abstract", "secondary")  # how a `from` figure was read, best first
TRUSTED: Final = ("primary", "abstract")  # read in the source itself: not varied by the sensitivity
MIX_MODES: Final = (IPV4_ONLY, DUAL, CLAT)  # IPV6_ONLY is not buildable yet (no DNS64 for lab names)
IP_KEYS: Final = (*MIX_MODES, "from", "assumption", "checked", "range", "range_note")


class MixError(InputError):
    """A NAT mix or population size that cannot be drawn from; the message names the option or field."""


class MixFileError(MixError):
    """A mix file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class IpShares:
    """A kind's split over IP modes (shares sum to 1, positive ones only) and where it comes from."""

    shares: tuple[tuple[str, float], ...]
    basis: str  # FROM or ASSUMPTION
    text: str
    checked: str | None = None
    range: tuple[float, float] | None = None  # the plausible share with IPv6 (dual + clat), for sensitivity
    range_note: str | None = None

    @property
    def mark(self) -> str:
        return "assumed" if self.basis == ASSUMPTION else (self.checked or "secondary")

    @property
    def uncertain(self) -> bool:
        return self.basis == ASSUMPTION or self.checked not in TRUSTED

    @property
    def ipv6(self) -> float:
        return math.fsum(v for m, v in self.shares if m != IPV4_ONLY)

    def scaled(self, factor: float) -> IpShares:
        """The split with its IPv6 modes scaled by `factor` (capped at the whole kind), their ratio kept."""
        old = self.ipv6
        if old == 0:
            return self
        new = min(1.0, old * factor)
        out = {IPV4_ONLY: 1 - new, **{m: new * v / old for m, v in self.shares if m != IPV4_ONLY}}
        return replace(self, shares=tuple((m, v) for m, v in out.items() if v > 0))


IPV4_ALL: Final = IpShares(((IPV4_ONLY, 1.0),), ASSUMPTION, "no IP-mode shares in the mix: IPv4 only")


def ip_shares(table: object, field: str) -> IpShares:
    """An `ip` table: shares of none, dual and clat (relative, divided by their sum) and their source."""
    if not isinstance(table, dict):
        raise MixFileError(
            f"{field}: expected a table of IP-mode shares (none = ..., dual = ..., clat = ...)"
        )
    if IPV6_ONLY in table:
        raise MixFileError(
            f"{field}.{IPV6_ONLY}: IPv6-only without a CLAT needs lab names with DNS64, which netsim cannot "
            "build yet (use clat)"
        )
    unknown = sorted(set(table) - set(IP_KEYS))
    if unknown:
        raise MixFileError(f"{field}: unknown key {unknown[0]!r} (known: {', '.join(IP_KEYS)})")
    values = {m: table[m] for m in MIX_MODES if m in table}
    for mode, v in values.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
            raise MixFileError(f"{field}.{mode}: expected a share >= 0, got {v!r}")
    total = math.fsum(values.values())
    if not total > 0:
        raise MixFileError(f"{field}: the IP-mode shares must add up to a positive number")
    given = [key for key in (FROM, ASSUMPTION) if key in table]
    if len(given) != 1 or not isinstance(table[given[0]], str) or not table[given[0]].strip():
        raise MixFileError(f"{field}: give exactly one of 'from' or 'assumption' (a non-empty string)")
    checked = table.get("checked")
    if checked is not None and (given[0] != FROM or checked not in CHECKED):
        raise MixFileError(
            f"{field}.checked: goes with 'from' and is one of {', '.join(CHECKED)}, got {checked!r}"
        )
    shares = tuple((m, v / total) for m, v in values.items() if v > 0)
    low_high, note = range_field(table, field)
    return IpShares(shares, given[0], table[given[0]].strip(), checked, low_high, note)


def range_field(entry: dict[str, Any], field: str) -> tuple[tuple[float, float] | None, str | None]:
    """(range, its note) of a kind entry: two shares 0 <= low <= high <= 1, given with a reason."""
    value, note = entry.get("range"), entry.get("range_note")
    if value is None:
        if note is not None:
            raise MixFileError(f"{field}.range_note: goes with range")
        return None, None
    numbers = isinstance(value, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    )
    if not numbers or len(value) != 2 or not 0 <= value[0] <= value[1] <= 1:
        raise MixFileError(
            f"{field}.range: expected [low, high], two shares 0 <= low <= high <= 1, got {value!r}"
        )
    if not isinstance(note, str) or not note.strip():
        raise MixFileError(f"{field}.range_note: say where the range's ends come from (a non-empty string)")
    return (float(value[0]), float(value[1])), note.strip()
