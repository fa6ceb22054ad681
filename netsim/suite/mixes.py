"""NAT mix files (mixes/*.toml): which share of a population's endpoints sits behind which kind of NAT.

A mix file names its source and gives, per NAT kind, a weight and where that weight comes from:

    name = "residential"                      # optional; the file's stem otherwise
    source = ["Halkes & Pouwelse, IFIP Networking 2011, section 4"]   # a string or a list of strings
    note = "per-AS shares are not per-user shares"                    # optional

    [kinds."port-restricted-cone"]
    weight = 0.52
    from = "EIM+APDF 52 % of peers"           # the source's figure this weight is read from, or
    # assumption = "why this number"          # marks the weight as an assumption (exactly one of the two)
    checked = "secondary"                     # with `from`: how the figure was read: primary (the paper's
                                              # text or table), abstract, or secondary (a summary); unsaid
                                              # counts as secondary
    range = [0.30, 0.52]                      # optional: the share this kind may plausibly have (0..1 of
    range_note = "why these ends"             # the mix), for the estimate's sensitivity; with its reason

IP modes (optional): per kind, which share of its endpoints is IPv4-only (`none`), dual-stack (`dual`) or
IPv6-only with 464XLAT (`clat`), with where the split comes from, like a weight; a top-level `[ip]` table is
the split of every kind that gives none of its own. A mix without any is all `none` (an IPv4-only internet):

    [ip]                                      # or [kinds."symmetric".ip] for one kind
    none = 0.58
    dual = 0.42
    from = "APNIC Labs: 42 % IPv6-capable"    # or assumption = "..."; checked as for weights

`only` (IPv6-only reaching IPv4 through DNS64) is not accepted: netsim cannot build it yet. `clat` needs a
translating home kind (not open, udp-blocked or CGN-layered: the NAT64 carrier is the side's only NAT).

Kinds are the matrix's NAT kinds (`vocab.NAT_KINDS`), `udp-blocked`, and CGN-layered kinds
`HOME+cgn-CGN` (a home NAT of kind HOME behind a carrier-grade NAT of kind CGN, e.g.
`port-restricted-cone+cgn-symmetric`). Weights are relative: they are divided by their sum.

A cell's side is an endpoint: a kind, or `KIND@MODE` for an IP mode other than none (`endpoint`).
`cells_needed(mix_a, mix_b)` lists the (nat_a, nat_b) cells of the NAT matrix an estimate for the mix reads;
`netsim matrix --mix FILE` runs exactly those, and `netsim estimate` refuses a run that lacks one.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from netsim.suite.mixfields import (
    ASSUMPTION,
    CHECKED,
    FROM,
    IPV4_ALL,
    MIX_MODES,
    TRUSTED,
    IpShares,
    MixError,
    MixFileError,
    ip_shares,
    range_field,
)
from netsim.vocab import CLAT, IPV4_ONLY, NAT_KINDS, OPEN, UDP_BLOCKED

__all__ = ["ASSUMPTION", "FROM", "MIX_MODES", "IpShares", "MixError", "MixFileError"]  # their old home

CGN_MARK: Final = "+cgn-"  # HOME+cgn-CGN
# A CGN or a home NAT in front of a layered kind must translate: "open" is no NAT at all.
LAYER_KINDS: Final = tuple(k for k in NAT_KINDS if k != OPEN)
TOP_KEYS: Final = ("name", "source", "note", "ip", "kinds")
KIND_KEYS: Final = ("weight", "from", "assumption", "checked", "range", "range_note", "ip")
MODE_MARK: Final = "@"  # endpoint KIND@MODE


@dataclass(frozen=True)
class KindWeight:
    """One kind of a mix: its weight as written, its share (weight / sum), and where it comes from."""

    kind: str
    weight: float
    share: float
    basis: str  # FROM (read from the source) or ASSUMPTION
    text: str  # the figure it is read from, or why it was assumed
    checked: str | None = None  # with FROM: one of CHECKED (None: not said, counts as secondary)
    range: tuple[float, float] | None = None  # the plausible share (0..1), when the file states one
    range_note: str | None = None
    ip: IpShares = IPV4_ALL

    @property
    def uncertain(self) -> bool:
        """An assumption, or a figure not read in the source itself: the estimate varies it."""
        return self.basis == ASSUMPTION or self.checked not in TRUSTED

    @property
    def mark(self) -> str:
        """'assumed', or how the figure was checked ('secondary' when not said)."""
        return "assumed" if self.basis == ASSUMPTION else (self.checked or "secondary")


@dataclass(frozen=True)
class Mix:
    name: str
    path: str
    source: str | list[str]  # as the file gives it (the estimate's JSON repeats it)
    note: str | None
    kinds: tuple[KindWeight, ...]  # in display order; zero weights included
    parts: tuple[tuple[Mix, float], ...] = ()  # a blend (netsim.suite.blend): its mixes and their shares

    @property
    def shares(self) -> dict[str, float]:
        """kind -> share of endpoints (sums to 1), kinds with a positive weight only."""
        return {k.kind: k.share for k in self.kinds if k.share > 0}

    @property
    def endpoint_shares(self) -> dict[str, float]:
        """endpoint (kind, or KIND@MODE) -> share of endpoints (sums to 1), positive shares only."""
        return {
            endpoint(k.kind, mode): k.share * s
            for k in self.kinds
            if k.share > 0
            for mode, s in k.ip.shares
            if s > 0
        }

    @property
    def has_ip(self) -> bool:
        """Whether any endpoint of the mix has IPv6 (an IP mode other than none)."""
        return any(split_endpoint(e)[1] != IPV4_ONLY for e in self.endpoint_shares)

    @property
    def ipv6_share(self) -> float:
        """The share of endpoints with IPv6 (IP mode dual or clat)."""
        return math.fsum(v for e, v in self.endpoint_shares.items() if split_endpoint(e)[1] != IPV4_ONLY)

    def with_ipv6_share(self, share: float) -> Mix:
        """This mix with `share` of its endpoints having IPv6: every kind's IPv6 modes scaled alike (capped
        at the whole kind) and their split kept (what the estimate's sensitivity moves). Not for blends."""
        if self.parts:
            raise ValueError("with_ipv6_share: move one of the blend's parts")
        old = self.ipv6_share
        if old == 0 or not 0 <= share <= 1:
            raise ValueError(f"with_ipv6_share: {share} of a mix with {old} IPv6")
        return replace(self, kinds=tuple(replace(k, ip=k.ip.scaled(share / old)) for k in self.kinds))

    def ipv4_only(self) -> Mix:
        """The same mix on an IPv4-only internet: every kind's endpoints IP mode none."""
        kinds = tuple(replace(k, ip=IPV4_ALL) for k in self.kinds)
        parts = tuple((p.ipv4_only(), s) for p, s in self.parts)
        return replace(self, kinds=kinds, parts=parts)

    @property
    def assumptions(self) -> dict[str, str]:
        return {k.kind: k.text for k in self.kinds if k.basis == ASSUMPTION}

    def with_share(self, kind: str, share: float) -> Mix:
        """This mix with `kind` at `share` of it and the other kinds keeping their proportions (what the
        estimate's sensitivity moves). Not for blends: move a part's kind and blend again."""
        if self.parts:
            raise ValueError("with_share: move a kind of one of the blend's parts")
        old = self.shares.get(kind)
        if old is None or not 0 <= share <= 1:
            raise ValueError(f"with_share: {kind!r} at {share}")
        scale = (1 - share) / (1 - old) if old < 1 else 0.0
        kinds = tuple(
            replace(k, weight=s, share=s)
            for k in self.kinds
            for s in [share if k.kind == kind else k.share * scale]
        )
        return replace(self, kinds=kinds)


def layered(home: str, cgn: str) -> str:
    """The kind name of a home NAT `home` behind a carrier-grade NAT `cgn`."""
    return f"{home}{CGN_MARK}{cgn}"


def endpoint(kind: str, mode: str) -> str:
    """A cell side: the kind for an IPv4-only endpoint (as before IP modes), else KIND@MODE."""
    return kind if mode == IPV4_ONLY else f"{kind}{MODE_MARK}{mode}"


def split_endpoint(text: str) -> tuple[str, str]:
    """(kind, IP mode) of an endpoint."""
    kind, mark, mode = text.rpartition(MODE_MARK)
    return (kind, mode) if mark else (text, IPV4_ONLY)


def split_kind(kind: str) -> tuple[str, str | None]:
    """(home NAT kind, CGN kind or None) of a mix kind; raises ValueError for an unknown kind."""
    home, mark, cgn = kind.partition(CGN_MARK)
    if not mark:
        if kind in (*NAT_KINDS, UDP_BLOCKED):
            return kind, None
        raise ValueError(f"unknown NAT kind {kind!r}")
    if home not in LAYER_KINDS or cgn not in LAYER_KINDS:
        raise ValueError(
            f"unknown layered kind {kind!r} (HOME{CGN_MARK}CGN with both from {', '.join(LAYER_KINDS)})"
        )
    return home, cgn


def kind_sort_key(kind: str) -> tuple[int, int, str]:
    """Plain kinds in vocab order, udp-blocked, then layered kinds by CGN and home kind."""
    order = (*NAT_KINDS, UDP_BLOCKED)
    try:
        home, cgn = split_kind(kind)
    except ValueError:
        return (len(order) + 1, 0, kind)
    if cgn is None:
        return (order.index(home), 0, "")
    return (len(order), order.index(cgn) * len(order) + order.index(home), "")


def load_mix(path: Path | str) -> Mix:
    """Read and validate a mix file; MixFileError names the file and the field for anything wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MixFileError(f"{path}: mix file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise MixFileError(f"{path}: cannot read the mix file ({e})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise MixFileError(f"{path}: not valid TOML ({e})") from None
    return mix_from_dict(data, str(path), default_name=path.stem)


def mix_from_dict(data: dict[str, Any], where: str, default_name: str = "mix") -> Mix:
    """A Mix from a parsed mix file; `where` names the file in error messages."""
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise MixFileError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(TOP_KEYS)})")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        raise MixFileError(f"{where}: name: expected a non-empty string, got {name!r}")
    source = _source(data.get("source"), where)
    note = data.get("note")
    if note is not None and not isinstance(note, str):
        raise MixFileError(f"{where}: note: expected a string, got {note!r}")
    table = data.get("kinds")
    if not isinstance(table, dict) or not table:
        raise MixFileError(
            f'{where}: kinds: expected a table of NAT kinds ([kinds."symmetric"] weight = ...)'
        )
    default_ip = ip_shares(data["ip"], f"{where}: ip") if "ip" in data else IPV4_ALL
    raw = [_kind_entry(kind, entry, where, default_ip) for kind, entry in table.items()]
    total = math.fsum(k.weight for k in raw)
    if not total > 0:
        raise MixFileError(f"{where}: kinds: the weights must add up to a positive number, got {total:g}")
    kinds = tuple(
        sorted((replace(k, share=k.weight / total) for k in raw), key=lambda k: kind_sort_key(k.kind))
    )
    return Mix(name.strip(), where, source, note, kinds)


def _source(value: object, where: str) -> str | list[str]:
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value):
        return list(value)
    raise MixFileError(f"{where}: source: expected a non-empty string or list of strings naming the source")


def _kind_entry(kind: str, entry: object, where: str, default_ip: IpShares = IPV4_ALL) -> KindWeight:
    """One [kinds."KIND"] table (its share is set once the weights' sum is known)."""
    field = f"kinds.{kind!r}"
    try:
        split_kind(kind)
    except ValueError as e:
        raise MixFileError(f"{where}: {field}: {e}") from None
    if not isinstance(entry, dict):
        raise MixFileError(f"{where}: {field}: expected a table with weight and from or assumption")
    unknown = sorted(set(entry) - set(KIND_KEYS))
    if unknown:
        raise MixFileError(f"{where}: {field}: unknown key {unknown[0]!r} (known: {', '.join(KIND_KEYS)})")
    weight = entry.get("weight")
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight):
        raise MixFileError(f"{where}: {field}.weight: expected a number, got {weight!r}")
    if weight < 0:
        raise MixFileError(f"{where}: {field}.weight: must not be negative, got {weight}")
    given = [key for key in (FROM, ASSUMPTION) if key in entry]
    if len(given) != 1:
        raise MixFileError(
            f"{where}: {field}: give exactly one of 'from' (the source's figure) or 'assumption' (why)"
        )
    text = entry[given[0]]
    if not isinstance(text, str) or not text.strip():
        raise MixFileError(f"{where}: {field}.{given[0]}: expected a non-empty string")
    checked = entry.get("checked")
    if checked is not None and (given[0] != FROM or checked not in CHECKED):
        raise MixFileError(
            f"{where}: {field}.checked: goes with 'from' and is one of {', '.join(CHECKED)}, got {checked!r}"
        )
    low_high, note = range_field(entry, f"{where}: {field}")
    ip = ip_shares(entry["ip"], f"{where}: {field}.ip") if "ip" in entry else default_ip
    _check_buildable(kind, ip, f"{where}: {field}" + (".ip" if "ip" in entry else " (with the mix's [ip])"))
    return KindWeight(kind, float(weight), 0.0, given[0], text.strip(), checked, low_high, note, ip)


def _check_buildable(kind: str, ip: IpShares, field: str) -> None:
    """clat puts the side behind a NAT64 carrier whose NAT44 is the kind's NAT: a plain translating kind."""
    if any(m == CLAT for m, _ in ip.shares) and kind not in LAYER_KINDS:
        raise MixFileError(
            f"{field}.{CLAT}: a clat share needs a translating NAT kind for the NAT64 carrier "
            f"({', '.join(LAYER_KINDS)}), not {kind!r}"
        )


def cells_needed(mix_a: Mix, mix_b: Mix | None = None) -> list[tuple[str, str]]:
    """The (nat_a, nat_b) cells an estimate of calls from mix_a to mix_b reads (mix_b defaults to mix_a).

    Host a (the caller, the offerer in a matrix session) is drawn from mix_a, host b from mix_b; both
    orders of a pair of kinds are separate cells, since the offerer's side matters. Kinds with a zero
    weight need no cell. Sorted by kind order, rows (nat_a) first.
    """
    kinds_b = (mix_b or mix_a).endpoint_shares
    return [(a, b) for a in mix_a.endpoint_shares for b in kinds_b]


def cells_to_run(mix_a: Mix, mix_b: Mix | None = None) -> list[tuple[str, str]]:
    """cells_needed, and the IPv4-only twin's cells too, so that the estimate can print both."""
    v4 = cells_needed(mix_a.ipv4_only(), mix_b.ipv4_only() if mix_b else None)
    return list(dict.fromkeys([*cells_needed(mix_a, mix_b), *v4]))


def cell_weights(mix_a: Mix, mix_b: Mix | None = None) -> dict[tuple[str, str], float]:
    """cell -> probability that a call falls in it (the two sides drawn independently; sums to 1)."""
    shares_b = (mix_b or mix_a).endpoint_shares
    return {(a, b): wa * wb for a, wa in mix_a.endpoint_shares.items() for b, wb in shares_b.items()}
