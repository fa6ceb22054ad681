"""NAT behaviour model (RFC 4787 mapping x filtering) and rendering of the rulesets in netsim/lab/rules/.

A preset names a classic NAT type; `custom` picks mapping and filtering independently. Rendering follows
docs/nat.md's "Rendering scheme": `define` lines for interfaces and addresses are prepended, `@LIFETIME@` and
`@SNAT@` are replaced, and `#@hairpin` lines are enabled only with hairpin on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from netsim.lab import netns, nftables
from netsim.vocab import ADM, APDM, BEHAVIOURS, CUSTOM_NAT, EIM, NAT_PRESETS, UDP_BLOCKED

RULES_DIR = Path(__file__).with_name("rules")
MAX_LIFETIME_S = 86400
HAIRPIN_MARK = "#@hairpin"
# Non-preserving deterministic ports: a hash of the internal endpoint (and remote IP for ADM) in this range.
HASH_PORTS = "mod 16384 offset 49152"
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
_FILE_BY_FILTERING = {EIM: "full-cone", ADM: "restricted-cone", APDM: "port-restricted-cone"}
_TYPES = ", ".join((*NAT_PRESETS, CUSTOM_NAT))
TOML_KEYS = ("type", "mapping", "filtering", "hairpin", "lifetime_s", "port_preservation", "rules_file")


class NatError(ValueError):
    """A bad NAT description; the message names the field and the bad value."""


@dataclass(frozen=True)
class NatSpec:
    kind: str
    mapping: str = EIM
    filtering: str = APDM
    hairpin: bool = False
    lifetime_s: int = 30
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


def _enable_hairpin(text: str, on: bool) -> str:
    lines = []
    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(HAIRPIN_MARK) and on:
            line = line[: len(line) - len(stripped)] + stripped[len(HAIRPIN_MARK) :]
        lines.append(line)
    return "\n".join(lines) + "\n"


def render_ruleset(spec: NatSpec, *, wan_if: str, lan_if: str, wan_ip: str, lan_cidr: str) -> str:
    """The ruleset text to load with `nft -f -` in the router's namespace."""
    path = rules_path(spec)
    try:
        text = path.read_text()
    except OSError as exc:
        raise NatError(f"nat.rules_file: cannot read {str(path)!r}: {exc.strerror}") from None
    text = text.replace("@LIFETIME@", str(spec.lifetime_s)).replace("@SNAT@", snat_statement(spec))
    defines = (
        f'define WAN_IF = "{wan_if}"\n'
        f'define LAN_IF = "{lan_if}"\n'
        f"define WAN_IP = {wan_ip}\n"
        f"define LAN_NET = {lan_cidr}\n"
    )
    return defines + _enable_hairpin(text, spec.hairpin)


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
    ruleset = render_ruleset(spec, wan_if=wan_if, lan_if=lan_if, wan_ip=wan_ip, lan_cidr=lan_cidr)
    for key, value in sysctls(spec).items():
        netns.write_sysctl(netns_name, key, value)
    # A hairpinned packet leaves on the interface it came in by: an ICMP redirect would send the host around
    # the NAT, so the router must not send any (the per-interface flag ORs with "all").
    for scope in ("all", lan_if):
        netns.write_sysctl(netns_name, f"net.ipv4.conf.{scope}.send_redirects", "0")
    try:
        nftables.load(netns_name, ruleset)
    except nftables.NftError as e:
        source = str(rules_path(spec))
        raise NatError(f"nat.rules_file: nft rejected the ruleset from {source!r}: {e}") from None
