"""Mixes by name and blends of mixes: `--mix residential`, `--mix mobile=0.5,residential=0.5`.

A mix is named by a file path or by the name of a shipped mix (a file in the repository's mixes/
directory, which netsim runs from: .ci/setup installs the checkout). A blend is a population made of other
mixes in given proportions, e.g. half mobile and half residential callers; its shares are the weighted
sums of its parts' shares, and it keeps every part (`Mix.parts`), so its sources, notes and each weight's
provenance stay readable and the estimate can still move each part's uncertain weights.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Final

from netsim.suite.mixes import (
    ASSUMPTION,
    FROM,
    MIX_MODES,
    IpShares,
    KindWeight,
    Mix,
    MixFileError,
    kind_sort_key,
    load_mix,
)
from netsim.vocab import NAT_KINDS, UDP_BLOCKED

SHIPPED_DIR: Final = Path(__file__).resolve().parents[2] / "mixes"
INVENTED: Final = "illustrative"  # the one shipped mix whose weights are invented


def shipped() -> list[str]:
    """Names of the shipped mixes (empty when netsim runs without its repository)."""
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.toml")) if SHIPPED_DIR.is_dir() else []


def _one(text: str, option: str) -> Mix:
    path = Path(text)
    if path.is_file() or text.endswith(".toml") or "/" in text:
        return load_mix(path)
    if text in shipped():
        return load_mix(SHIPPED_DIR / f"{text}.toml")
    names = ", ".join(shipped()) or "none: netsim runs without its mixes/ directory"
    raise MixFileError(f"{option}: no mix file or shipped mix named {text!r} (shipped: {names})")


def spec(mix: Mix) -> str:
    """How to name the mix on the command line: a shipped mix by its name, a blend by its parts, else the
    file."""
    if mix.parts:
        return mix.path
    path = Path(mix.path)
    return path.stem if path.parent.resolve() == SHIPPED_DIR and path.stem in shipped() else mix.path


def is_blend(text: str) -> bool:
    """Whether `text` is a blend (NAME=SHARE,...) rather than one mix."""
    return "=" in text and not Path(text).is_file()


def resolve(text: str, option: str = "--mix") -> Mix:
    """A mix file, a shipped mix's name, or a blend NAME=SHARE,... of those; MixFileError names the
    option."""
    if not is_blend(text):
        return _one(text.strip(), option)
    parts: list[tuple[Mix, float]] = []
    for item in text.split(","):
        name, _, share_text = item.partition("=")
        name = name.strip()
        if name in (*NAT_KINDS, UDP_BLOCKED) or "+cgn-" in name:
            raise MixFileError(
                f"{option}: {name!r} is a NAT kind; a blend names mixes (e.g. mobile=0.5,residential=0.5)"
            )
        try:
            share = float(share_text)
        except ValueError:
            raise MixFileError(f"{option}: bad share in {item.strip()!r} (use NAME=SHARE,...)") from None
        if not math.isfinite(share) or share < 0:
            raise MixFileError(f"{option}: share of {name!r} must be a number >= 0, got {share_text.strip()}")
        parts.append((_one(name, option), share))
    return blend(parts, option)


def blend(parts: list[tuple[Mix, float]], option: str = "--mix") -> Mix:
    """The population made of `parts` (mix, relative share); zero shares are left out."""
    total = math.fsum(share for _, share in parts)
    if not total > 0:
        raise MixFileError(f"{option}: the blend's shares must add up to a positive number")
    kept = tuple((mix, share / total) for mix, share in parts if share > 0)
    if any(mix.parts for mix, _ in kept):
        raise MixFileError(f"{option}: a blend of blends; name the mix files themselves")
    return Mix(
        name=" + ".join(f"{share:.2g} {mix.name}" for mix, share in kept),
        path=",".join(f"{spec(mix)}={share:.4g}" for mix, share in kept),  # a spec `resolve` reads back
        source=[f"{mix.name}: {s}" for mix, _ in kept for s in _sources(mix)],
        note="; ".join(f"{mix.name}: {mix.note}" for mix, _ in kept if mix.note) or None,
        kinds=_kinds(kept),
        parts=kept,
    )


def _sources(mix: Mix) -> list[str]:
    return [mix.source] if isinstance(mix.source, str) else list(mix.source)


def _kinds(parts: tuple[tuple[Mix, float], ...]) -> tuple[KindWeight, ...]:
    """Each kind's blended share; an assumption where any part assumed it, else read from the sources."""
    names = sorted({k.kind for mix, _ in parts for k in mix.kinds if k.share > 0}, key=kind_sort_key)
    out = []
    for kind in names:
        mine = [(mix, share, k) for mix, share in parts for k in mix.kinds if k.kind == kind and k.share > 0]
        value = math.fsum(share * k.share for _, share, k in mine)
        assumed = any(k.basis == ASSUMPTION for _, _, k in mine)
        checks = {k.checked for _, _, k in mine}
        checked = (
            None if assumed else next((c for c in ("secondary", None, "abstract") if c in checks), "primary")
        )
        text = "; ".join(f"{mix.name} ({k.mark}): {k.text}" for mix, _, k in mine)
        basis = ASSUMPTION if assumed else FROM
        out.append(KindWeight(kind, value, value, basis, text, checked, ip=_ip(mine, value)))
    return tuple(out)


def _ip(mine: list[tuple[Mix, float, KindWeight]], value: float) -> IpShares:
    """A kind's blended IP-mode split: each part's split weighted by how many of the kind's endpoints it
    brings; an assumption where any part's split is one."""
    modes = {
        m: math.fsum(share * k.share * dict(k.ip.shares).get(m, 0.0) for _, share, k in mine)
        for m in MIX_MODES
    }
    assumed = any(k.ip.basis == ASSUMPTION for _, _, k in mine)
    text = "; ".join(f"{mix.name} ({k.ip.mark}): {k.ip.text}" for mix, _, k in mine)
    shares = tuple((m, v / value) for m, v in modes.items() if v > 0)
    return IpShares(shares, ASSUMPTION if assumed else FROM, text, None if assumed else "secondary")
