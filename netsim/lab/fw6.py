"""IPv6 firewalls of dual-stack sites: presets in RFC terms (rules/fw6-*.nft) or a researcher's own file.

An IPv6 site router translates nothing: its mapping is the identity, and only its filtering differs. The
rules-file contract is the NAT rulesets' (docs/nat.md): a complete ruleset used as written, netsim prepending
`define`s of the router's interfaces and LAN prefix ($WAN_IF, $LAN_IF, $LAN_NET6) that the file does not make
itself; nft's errors are mapped back to the file's own lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from netsim.errors import InputError
from netsim.lab import nftables
from netsim.lab.nat import RULES_DIR
from netsim.vocab import ADM, APDM, CUSTOM_NAT, EIM, FW6_APDF, FW6_BLOCK_UDP, FW6_EIF, FW6_OPEN, FW6_PRESETS

PREFIX = "fw6-"  # a preset's file is rules/fw6-NAME.nft; `netsim rules show fw6-NAME` prints it
DEFINES = ("WAN_IF", "LAN_IF", "LAN_NET6")
CHECK_ROUTER = {"wan_if": "wan", "lan_if": "lan", "lan_net6": "2001:db8:1::/64"}
# What each preset does, in RFC 4787 terms (mapping is the identity: endpoint-independent).
FILTERING = {FW6_OPEN: None, FW6_EIF: EIM, FW6_APDF: APDM, FW6_BLOCK_UDP: APDM}
FILTERING_NAMES = {None: "none (transparent)", EIM: EIM, ADM: ADM, APDM: APDM}


class Fw6Error(InputError):
    """A bad IPv6 firewall: the message names the field and the value."""


@dataclass(frozen=True)
class Fw6Spec:
    """A preset (`kind` one of FW6_PRESETS) or a rules file (`kind` custom, `rules_file` its path)."""

    kind: str
    rules_file: str | None = None

    @property
    def label(self) -> str:
        return self.kind if self.rules_file is None else f"{CUSTOM_NAT}:{Path(self.rules_file).name}"


def parse(value: object, where: str, base_dir: Path | None = None) -> Fw6Spec:
    """A preset name, or a rules file's path (it has a `/` or ends in .nft), relative to `base_dir`."""
    if not isinstance(value, str) or not value:
        raise Fw6Error(f"{where}: expected an IPv6 firewall preset or a rules file, got {value!r}")
    if value in FW6_PRESETS:
        return Fw6Spec(value)
    if "/" in value or value.endswith(".nft"):
        path = Path(value) if base_dir is None else (base_dir / value).resolve()
        if not path.is_file():
            raise Fw6Error(f"{where}: no such rules file: {value}")
        return Fw6Spec(CUSTOM_NAT, str(path))
    raise Fw6Error(
        f"{where}: unknown IPv6 firewall {value!r} (choose from {', '.join(FW6_PRESETS)} or a .nft file)"
    )


def rules_path(spec: Fw6Spec) -> Path:
    return Path(spec.rules_file) if spec.rules_file is not None else RULES_DIR / f"{PREFIX}{spec.kind}.nft"


def preset_text(name: str) -> str:
    """A preset's complete rules file (`netsim rules show fw6-NAME`); `name` with or without the prefix."""
    kind = name.removeprefix(PREFIX)
    if kind not in FW6_PRESETS:
        raise Fw6Error(f"unknown IPv6 firewall preset {name!r} (choose from {', '.join(FW6_PRESETS)})")
    return (RULES_DIR / f"{PREFIX}{kind}.nft").read_text()


def render(spec: Fw6Spec, *, wan_if: str, lan_if: str, lan_net6: str) -> tuple[str, int]:
    """The ruleset text to load and how many define lines precede the file's own first line."""
    text = _read(rules_path(spec))
    values = {"WAN_IF": f'"{wan_if}"', "LAN_IF": f'"{lan_if}"', "LAN_NET6": lan_net6}
    own = set(re.findall(r"^\s*(?:re)?define\s+(\w+)", text, flags=re.MULTILINE))
    defines = [f"define {name} = {values[name]}" for name in DEFINES if name not in own]
    return "\n".join([*defines, text]) + "\n", len(defines)


def describe_errors(path: Path, text: str, prefix: int, error: nftables.NftError) -> list[str]:
    """nft's complaints as `PATH:LINE:COL: message` and the offending line (the file's own numbering)."""
    if not error.messages:
        return [f"{path}: {' '.join(str(error).split())}"]
    lines = text.splitlines()[prefix:]
    out = []
    for msg in error.messages:
        line = msg.line - prefix
        if not msg.line or not 0 < line <= len(lines):
            out.append(f"{path}: {msg.text}")
        else:
            out.append(f"{path}:{line}:{msg.col}: {msg.text}\n    | {lines[line - 1]}")
    return out


def apply(netns_name: str, spec: Fw6Spec, *, wan_if: str, lan_if: str, lan_net6: str) -> None:
    """Load the firewall in the router's namespace (never the root namespace's)."""
    text, prefix = render(spec, wan_if=wan_if, lan_if=lan_if, lan_net6=lan_net6)
    try:
        nftables.load(netns_name, text)
    except nftables.NftError as e:
        raise Fw6Error("\n".join(describe_errors(rules_path(spec), text, prefix, e))) from None


def check(path: Path) -> None:
    """nft's dry run of a rules file as a dual-stack site would load it (no lab needed)."""
    text, prefix = render(Fw6Spec(CUSTOM_NAT, str(path)), **CHECK_ROUTER)
    try:
        nftables.check(text)
    except nftables.NftError as e:
        raise Fw6Error("\n".join(describe_errors(path, text, prefix, e))) from None


def is_fw6_file(path: Path) -> bool:
    """A rules file for IPv6 (it makes table ip6 ...), not a NAT ruleset."""
    return re.search(r"^\s*table\s+ip6\s", _read(path), flags=re.MULTILINE) is not None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise Fw6Error(f"fw6: cannot read {str(path)!r}: {exc.strerror}") from None
