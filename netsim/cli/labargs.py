"""Options that shape a side's site on `pair` and `up`: its NAT (a preset or a rules file), IP mode and IPv6
firewall. Checked before anything is built; bad input is one line naming the option."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from netsim.cli.common import InputError
from netsim.vocab import (
    CLAT,
    CUSTOM_NAT,
    IP_MODES,
    IPV4_ONLY,
    IPV6_ONLY,
    NAT_KINDS,
    NAT_PRESETS,
    PORT_RESTRICTED_CONE,
    SIDES,
)


def add_site_options(p: argparse.ArgumentParser) -> None:
    """--nat-a/--nat-b, --ipv6-a/--ipv6-b, --fw6-a/--fw6-b."""
    for side in SIDES:
        p.add_argument(
            f"--nat-{side}",
            default=PORT_RESTRICTED_CONE,
            metavar="KIND|FILE",
            help=f"NAT in front of {side}: {', '.join(NAT_PRESETS)} or a rules file (default "
            "port-restricted-cone)",
        )
    for side in SIDES:
        p.add_argument(
            f"--ipv6-{side}",
            default=IPV4_ONLY,
            metavar="MODE",
            help=f"IP mode of {side}'s site: {', '.join(IP_MODES)} (default none: IPv4 only)",
        )
        p.add_argument(
            f"--fw6-{side}",
            default=None,
            metavar="PRESET|FILE",
            help=f"IPv6 firewall of {side}'s site: open, eif, apdf, block-udp or a rules file (default apdf)",
        )


def nat_spec(value: str, option: str) -> Any:
    """A NAT preset's spec, or a custom spec loading a rules file (an existing file's absolute path)."""
    from netsim.lab.nat import preset

    if value in NAT_PRESETS:
        return preset(value)
    path = Path(value)
    if path.is_file():
        return preset(CUSTOM_NAT, rules_file=str(path.resolve()))
    raise InputError(
        f"{option}: unknown NAT type {value!r} and no such rules file (choose from {', '.join(NAT_PRESETS)})"
    )


def nat_label(spec: Any) -> str:
    """How a side's NAT is named in scenario names and records: its kind, or custom:FILE."""
    return str(spec.kind) if spec.rules_file is None else f"{CUSTOM_NAT}:{Path(spec.rules_file).name}"


def matrix_kinds(text: str) -> tuple[str, ...]:
    """`netsim matrix --kinds`: NAT kinds, or rules files' paths (a cell per pair of them)."""
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    if not kinds:
        raise InputError("--kinds: give at least one NAT kind")
    for k in kinds:
        if k not in NAT_KINDS and not Path(k).is_file():
            choices = ", ".join(NAT_KINDS)
            raise InputError(
                f"--kinds: unknown NAT kind {k!r} and no such rules file (choose from {choices})"
            )
    return kinds


def ip_modes(text: str) -> tuple[str, ...]:
    """`netsim matrix --ipv6 MODE[,MODE]`: the IP modes every cell runs in, on both sides."""
    modes = tuple(dict.fromkeys(m.strip() for m in text.split(",") if m.strip()))
    if not modes:
        raise InputError("--ipv6: give at least one IP mode")
    for mode in modes:
        _check_mode(mode, "--ipv6")
    return modes


def _check_mode(mode: str, option: str) -> None:
    if mode not in IP_MODES:
        raise InputError(f"{option}: unknown IP mode {mode!r} (choose from {', '.join(IP_MODES)})")
    if mode == IPV6_ONLY:
        raise InputError(
            f"{option}: 'only' needs lab names with DNS64, which netsim cannot build yet (use clat)"
        )


def site_options(args: argparse.Namespace) -> dict[str, Any]:
    """standard_topology's keyword arguments for both sides, validated: nat_a, ipv6_a, fw6_a, ..."""
    from netsim.lab.fw6 import Fw6Error, parse

    out: dict[str, Any] = {}
    for side in SIDES:
        mode = getattr(args, f"ipv6_{side}")
        _check_mode(mode, f"--ipv6-{side}")
        fw = getattr(args, f"fw6_{side}")
        if fw is not None and mode == IPV4_ONLY:
            raise InputError(f"--fw6-{side}: an IPv6 firewall on an IPv4-only site (add --ipv6-{side} dual)")
        try:
            out[f"fw6_{side}"] = None if fw is None else parse(fw, f"--fw6-{side}")
        except Fw6Error as e:
            raise InputError(str(e)) from None
        out[f"ipv6_{side}"] = mode
        out[f"nat_{side}"] = nat_spec(getattr(args, f"nat_{side}"), f"--nat-{side}")
        if mode == CLAT and not out[f"nat_{side}"].nat:
            raise InputError(f"--nat-{side}: a clat side's NAT64 carrier needs a NAT44 (not 'open')")
    return out
