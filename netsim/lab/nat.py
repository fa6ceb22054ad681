"""NAT behaviour model (RFC 4787 mapping x filtering) and rendering of the rulesets in netsim/lab/rules/.

A preset names a classic NAT type; `custom` picks mapping and filtering independently. A rules file is a
complete ruleset used as written (docs/nat.md, "Rules files"): rendering prepends `define`s of the router's
interfaces and addresses (only those the file does not define itself), fills the optional `@LIFETIME@` and
`@SNAT@` placeholders and enables `#@hairpin` lines with hairpin on. A shipped preset file also takes the
spec's knobs in place of its own defaults (its `timeout 30s` and its mapping statement). nft's errors are
mapped back to the file's own line and column.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

from netsim.errors import InputError
from netsim.lab import netns, nftables
from netsim.vocab import (
    ADM,
    APDM,
    BEHAVIOURS,
    CUSTOM_NAT,
    EIM,
    FULL_CONE,
    NAT_PRESETS,
    OPEN,
    PORT_RESTRICTED_CONE,
    RESTRICTED_CONE,
    UDP_BLOCKED,
)

RULES_DIR = Path(__file__).with_name("rules")
MAX_LIFETIME_S = 86400
HAIRPIN_MARK = "#@hairpin"
DEFAULT_LIFETIME_S = 30
# Non-preserving deterministic ports: a hash of the internal endpoint (and remote IP for ADM). nft hands the
# nat statement the hash's host-order register as the (big-endian) port, so "mod 16384 offset 49152" came out
# byte-swapped (42985 for 59815). Setting the top two bits of both bytes keeps every port in 49344-65535 in
# either byte order (4096 ports).
HASH_PORTS = "mod 65536 | 0xc0c0"
HASH_PORT_RANGE = range(0xC0C0, 0x10000)
DEFINES = ("WAN_IF", "LAN_IF", "WAN_IP", "LAN_NET")
# The router `rules check` renders for: site 1 of the standard lab.
CHECK_ROUTER = {"wan_if": "wan", "lan_if": "lan", "wan_ip": "198.18.1.1", "lan_cidr": "10.1.0.0/24"}
_HASHED = "meta l4proto { tcp, udp }"  # nft needs a transport match before a port from a hash

# What each preset fixes; the knobs (hairpin, lifetime_s, port_preservation where it can hold) stay free.
_PRESET_FIELDS: dict[str, dict[str, object]] = {
    "open": {"mapping": EIM, "filtering": EIM, "nat": False, "udp_blocked": False},
    "full-cone": {"mapping": EIM, "filtering": EIM, "nat": True, "udp_blocked": False},
    "restricted-cone": {"mapping": EIM, "filtering": ADM, "nat": True, "udp_blocked": False},
    "port-restricted-cone": {"mapping": EIM, "filtering": APDM, "nat": True, "udp_blocked": False},
    "symmetric": {
        "mapping": APDM,
        "filtering": APDM,
        "nat": True,
        "udp_blocked": False,
        "port_preservation": False,
    },
    UDP_BLOCKED: {"mapping": EIM, "filtering": APDM, "nat": True, "udp_blocked": True},
}
# Rules file a custom spec renders from, by filtering behaviour.
_FILE_BY_FILTERING = {EIM: FULL_CONE, ADM: RESTRICTED_CONE, APDM: PORT_RESTRICTED_CONE}
_TYPES = ", ".join((*NAT_PRESETS, CUSTOM_NAT))
TOML_KEYS = ("type", "mapping", "filtering", "hairpin", "lifetime_s", "port_preservation", "rules_file")


class NatError(InputError):
    """A bad NAT description; the message names the field and the bad value."""


@dataclass(frozen=True)
class NatSpec:
    kind: str
    mapping: str = EIM
    filtering: str = APDM
    hairpin: bool = False
    lifetime_s: int = DEFAULT_LIFETIME_S
    port_preservation: bool = True
    udp_blocked: bool = False
    nat: bool = True
    rules_file: str | None = None

    def __post_init__(self) -> None:
        validate(self, "nat")


def _check_field(name: str, value: object, where: str) -> None:
    key = f"{where}.{name}"
    if name in ("mapping", "filtering"):
        if value not in BEHAVIOURS:
            raise NatError(f"{key}: unknown behaviour {value!r} (choose from {', '.join(BEHAVIOURS)})")
    elif name in ("hairpin", "port_preservation", "udp_blocked", "nat"):
        if not isinstance(value, bool):
            raise NatError(f"{key}: expected true or false, got {value!r}")
    elif name == "lifetime_s":
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIFETIME_S:
            raise NatError(f"{key}: expected whole seconds from 1 to {MAX_LIFETIME_S}, got {value!r}")
    elif name == "rules_file":
        if value is not None and (not isinstance(value, str) or not value):
            raise NatError(f"{key}: expected a file path, got {value!r}")
    elif name == "kind":
        if value not in (*NAT_PRESETS, CUSTOM_NAT):
            raise NatError(f"{where}.type: unknown NAT type {value!r} (choose from {_TYPES})")
    else:
        raise NatError(f"{key}: unknown key (choose from {', '.join(TOML_KEYS)})")


def validate(spec: NatSpec, where: str = "nat") -> None:
    """Reject values and combinations the rulesets cannot make true, naming the field and value."""
    for field in dataclasses.fields(spec):
        _check_field(field.name, getattr(spec, field.name), where)
    fixed = _PRESET_FIELDS.get(spec.kind, {})
    for name, value in fixed.items():
        if name != "port_preservation" and getattr(spec, name) != value:
            raise NatError(
                f"{where}.{name}: {getattr(spec, name)!r} contradicts type {spec.kind!r} "
                f'(which means {value!r}; use type = "custom")'
            )
    if not spec.nat:
        if spec.mapping != EIM or spec.filtering != EIM:
            raise NatError(
                f"{where}.mapping: {spec.mapping!r}/{spec.filtering!r} needs a NAT (this site has none)"
            )
        if spec.udp_blocked:
            raise NatError(f"{where}.udp_blocked: True needs a NAT router (this site has none)")
    if spec.hairpin and (not spec.nat or spec.udp_blocked):
        raise NatError(f"{where}.hairpin: True is not offered for type {spec.kind!r}")
    if spec.port_preservation and spec.mapping != EIM and spec.nat:
        raise NatError(
            f"{where}.port_preservation: True cannot hold with mapping {spec.mapping!r} "
            "(a port-dependent mapping picks new ports; set port_preservation = false)"
        )


def preset(name: str, **overrides: object) -> NatSpec:
    """The spec of a named NAT type, with knobs overridden; 'custom' starts from port-restricted-cone."""
    if name not in (*NAT_PRESETS, CUSTOM_NAT):
        raise NatError(f"nat.type: unknown NAT type {name!r} (choose from {_TYPES})")
    return _build(name, overrides, "nat")


def _build(kind: str, overrides: dict[str, object], where: str) -> NatSpec:
    names = {f.name for f in dataclasses.fields(NatSpec)} - {"kind"}
    for key, value in overrides.items():
        if key not in names:
            raise NatError(f"{where}.{key}: unknown key (choose from {', '.join(sorted(names))})")
        _check_field(key, value, where)
    base = dict(_PRESET_FIELDS.get(kind, {}))
    if kind == CUSTOM_NAT and overrides.get("mapping", EIM) != EIM:
        base["port_preservation"] = False  # a port-dependent mapping never preserves ports
    base.update(overrides)
    try:
        return NatSpec(kind=kind, **base)  # type: ignore[arg-type]
    except NatError as exc:
        raise NatError(str(exc).replace("nat.", f"{where}.", 1)) from None


def nat_from_dict(data: dict[str, object], where: str) -> NatSpec:
    """A spec from a scenario's TOML table, e.g. {type = "full-cone", hairpin = true}."""
    for key in data:
        if key not in TOML_KEYS:
            raise NatError(f"{where}.{key}: unknown key (choose from {', '.join(TOML_KEYS)})")
    kind = data.get("type")
    if kind is None:
        raise NatError(f"{where}.type: missing (choose from {_TYPES})")
    if not isinstance(kind, str) or kind not in (*NAT_PRESETS, CUSTOM_NAT):
        raise NatError(f"{where}.type: unknown NAT type {kind!r} (choose from {_TYPES})")
    return _build(kind, {k: v for k, v in data.items() if k != "type"}, where)


def snat_statement(spec: NatSpec) -> str:
    """The nft source-NAT statement that makes the spec's mapping behaviour (the @SNAT@ placeholder)."""
    if spec.mapping == APDM:
        return "snat ip to $WAN_IP fully-random"
    if spec.mapping == ADM:
        return f"{_HASHED} snat ip to $WAN_IP : jhash ip saddr . th sport . ip daddr {HASH_PORTS}"
    if spec.port_preservation:
        return "snat ip to $WAN_IP"  # Linux keeps the source port when free: EIM
    return f"{_HASHED} snat ip to $WAN_IP : jhash ip saddr . th sport {HASH_PORTS}"


def rules_path(spec: NatSpec) -> Path:
    """The ruleset file the spec renders from: its own file, its preset's, or the one for its filtering."""
    if spec.rules_file is not None:
        return Path(spec.rules_file)
    if not spec.nat:
        return RULES_DIR / "open.nft"
    if spec.udp_blocked:
        return RULES_DIR / f"{UDP_BLOCKED}.nft"
    name = spec.kind if spec.kind in NAT_PRESETS else _FILE_BY_FILTERING[spec.filtering]
    return RULES_DIR / f"{name}.nft"


def preset_text(name: str) -> str:
    """A preset's complete rules file, as a researcher copies it (`netsim rules show NAME`)."""
    if name not in NAT_PRESETS:
        raise NatError(f"unknown preset {name!r} (choose from {', '.join(NAT_PRESETS)})")
    return (RULES_DIR / f"{name}.nft").read_text()


# ---- rendering with a map back to the file -----------------------------------------------------------------


@dataclass(frozen=True)
class _Piece:
    """A stretch of one rendered line: copied from the file at `src` (literal) or put in for a placeholder."""

    start: int  # 0-based column in the rendered line
    length: int
    src: int  # 0-based column in the file's line
    literal: bool


@dataclass(frozen=True)
class Rendered:
    """A rendered ruleset and how to find a rendered position in the rules file it came from."""

    path: Path
    text: str
    source_lines: list[str]
    prefix_lines: int  # the prepended defines
    pieces: list[list[_Piece]] = dataclasses.field(repr=False)

    def locate(self, line: int, col: int) -> tuple[int, int] | None:
        """The file's 1-based (line, column) of rendered `line`:`col` (1-based); None inside the defines."""
        index = line - 1 - self.prefix_lines
        if not 0 <= index < len(self.source_lines):
            return None
        for piece in self.pieces[index]:
            if piece.start <= col - 1 < piece.start + max(piece.length, 1):
                offset = col - 1 - piece.start if piece.literal else 0
                return line - self.prefix_lines, piece.src + offset + 1
        return line - self.prefix_lines, min(col, len(self.source_lines[index]) + 1)


def _substitutions(spec: NatSpec, shipped: bool) -> dict[str, str]:
    """Regex -> replacement for one line: the placeholders, and for a shipped preset its knob defaults."""
    subs = {re.escape("@LIFETIME@"): str(spec.lifetime_s), re.escape("@SNAT@"): snat_statement(spec)}
    if shipped:
        own = snat_statement(preset(rules_path(spec).stem)) if rules_path(spec).stem != OPEN else None
        if own is not None and own != snat_statement(spec):
            subs[re.escape(own) + r"(?=\s*(?:;|#|$))"] = snat_statement(spec)
        if spec.lifetime_s != DEFAULT_LIFETIME_S:
            subs[rf"\btimeout {DEFAULT_LIFETIME_S}s\b"] = f"timeout {spec.lifetime_s}s"
    return subs


def _render_line(line: str, subs: dict[str, str], hairpin: bool) -> tuple[str, list[_Piece]]:
    src_shift = 0
    stripped = line.lstrip()
    if hairpin and stripped.startswith(HAIRPIN_MARK):
        indent = len(line) - len(stripped)
        line, src_shift = line[:indent] + stripped[len(HAIRPIN_MARK) :], len(HAIRPIN_MARK)
    else:
        indent = len(line)
    pattern = re.compile("|".join(f"(?:{p})" for p in subs)) if subs else None
    out, pieces, pos = "", [], 0

    def literal(upto: int) -> None:
        nonlocal out
        for a, b in ((pos, min(upto, indent)), (max(pos, indent), upto)):
            if a < b:
                shift = 0 if a < indent else src_shift
                pieces.append(_Piece(len(out), b - a, a + shift, True))
                out += line[a:b]

    for match in pattern.finditer(line) if pattern else ():
        literal(match.start())
        value = next(v for p, v in subs.items() if re.fullmatch(p, match.group(0)))
        shift = 0 if match.start() < indent else src_shift
        pieces.append(_Piece(len(out), len(value), match.start() + shift, False))
        out += value
        pos = match.end()
    literal(len(line))
    return out, pieces


def _defines(text: str, wan_if: str, lan_if: str, wan_ip: str, lan_cidr: str) -> list[str]:
    """The router's defines, minus those the file makes itself (a file may define every one)."""
    values = {"WAN_IF": f'"{wan_if}"', "LAN_IF": f'"{lan_if}"', "WAN_IP": wan_ip, "LAN_NET": lan_cidr}
    own = set(re.findall(r"^\s*(?:re)?define\s+(\w+)", text, flags=re.MULTILINE))
    return [f"define {name} = {values[name]}" for name in DEFINES if name not in own]


def render(spec: NatSpec, *, wan_if: str, lan_if: str, wan_ip: str, lan_cidr: str) -> Rendered:
    """The ruleset text to load in the router's namespace, with its map back to the rules file."""
    path = rules_path(spec)
    text = _read(path)
    subs = _substitutions(spec, shipped=spec.rules_file is None)
    source_lines = text.splitlines()
    rendered = [_render_line(line, subs, spec.hairpin) for line in source_lines]
    defines = _defines(text, wan_if, lan_if, wan_ip, lan_cidr)
    body = "\n".join([*defines, *(r[0] for r in rendered)]) + "\n"
    return Rendered(path, body, source_lines, len(defines), [r[1] for r in rendered])


def render_ruleset(spec: NatSpec, *, wan_if: str, lan_if: str, wan_ip: str, lan_cidr: str) -> str:
    """The ruleset text to load with `nft -f -` in the router's namespace."""
    return render(spec, wan_if=wan_if, lan_if=lan_if, wan_ip=wan_ip, lan_cidr=lan_cidr).text


def describe_errors(rendered: Rendered, error: nftables.NftError) -> list[str]:
    """nft's complaints, each `PATH:LINE:COL: message` then `    | the line`, in the rules file's own terms
    (a complaint about netsim's own defines names no line)."""
    if not error.messages:
        return [f"{rendered.path}: {' '.join(str(error).split())}"]
    out = []
    for msg in error.messages:
        where = rendered.locate(msg.line, msg.col) if msg.line else None
        if where is None:
            out.append(f"{rendered.path}: {msg.text}")
            continue
        line, col = where
        out.append(f"{rendered.path}:{line}:{col}: {msg.text}\n    | {rendered.source_lines[line - 1]}")
    return out


def sysctls(spec: NatSpec) -> dict[str, str]:
    """Per-namespace sysctls of the router: forwarding, and conntrack UDP timeouts as the mapping lifetime."""
    values = {"net.ipv4.ip_forward": "1"}
    if spec.nat:
        lifetime = str(spec.lifetime_s)
        values["net.netfilter.nf_conntrack_udp_timeout"] = lifetime
        values["net.netfilter.nf_conntrack_udp_timeout_stream"] = lifetime
    return values


def apply(netns_name: str, spec: NatSpec, *, wan_if: str, lan_if: str, wan_ip: str, lan_cidr: str) -> None:
    """Configure the router namespace `netns_name` as the spec says (never touches the root namespace)."""
    rendered = render(spec, wan_if=wan_if, lan_if=lan_if, wan_ip=wan_ip, lan_cidr=lan_cidr)
    for key, value in sysctls(spec).items():
        netns.write_sysctl(netns_name, key, value)
    # A hairpinned packet leaves on the interface it came in by: an ICMP redirect would send the host around
    # the NAT, so the router must not send any (the per-interface flag ORs with "all").
    for scope in ("all", lan_if):
        netns.write_sysctl(netns_name, f"net.ipv4.conf.{scope}.send_redirects", "0")
    try:
        nftables.load(netns_name, rendered.text)
    except nftables.NftError as e:
        raise NatError("\n".join(describe_errors(rendered, e))) from None


def check(path: Path) -> None:
    """Validate a rules file as a site would load it, without a lab: nft's dry run in a scratch namespace
    of this process (removed afterwards), with hairpin off and, if the file has #@hairpin lines, on.
    NatError in `PATH:LINE:COL: message` form, each complaint followed by the offending line."""
    found: list[str] = []
    for hairpin in (False, True) if HAIRPIN_MARK in _read(path) else (False,):
        rendered = render(preset(CUSTOM_NAT, rules_file=str(path), hairpin=hairpin), **CHECK_ROUTER)
        try:
            nftables.check(rendered.text)
        except nftables.NftError as e:
            found += [m for m in describe_errors(rendered, e) if m not in found]
    if found:
        raise NatError("\n".join(found))


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise NatError(f"nat.rules_file: cannot read {str(path)!r}: {exc.strerror}") from None
