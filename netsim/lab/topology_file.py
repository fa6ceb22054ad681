"""Reading a topology from its TOML table (the topology part of a scenario file): every key checked, errors
naming the field and the value; the model and its validation are netsim.lab.topology's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from netsim.lab.fw6 import Fw6Error
from netsim.lab.fw6 import parse as parse_fw6
from netsim.lab.impair import ImpairError, impair_from_dict
from netsim.lab.nat import NatError, NatSpec, nat_from_dict, preset
from netsim.lab.topology import Carrier, Site, Topology, TopologyError, validate
from netsim.vocab import IPV4_ONLY, PORT_RESTRICTED_CONE, SYMMETRIC

_TOP_KEYS = {"name", "ipv6", "site", "carrier", "server"}
_SITE_KEYS = {"name", "nat", "hosts", "behind", "lan", "impair", "ipv6", "fw6", "ipv4_hosts"}
_CARRIER_KEYS = {"name", "nat", "nat64"}
_SERVER_KEYS = {"name"}


def from_dict(
    data: dict[str, Any], *, default_name: str = "scenario", base_dir: Path | None = None
) -> Topology:
    """A validated topology from a TOML table (`name`, `ipv6`, `[[site]]`, `[[carrier]]`, `[[server]]`).

    `default_name` names it when the table does not; a site's relative `nat.rules_file` is resolved against
    `base_dir` (the scenario file's directory).
    """
    _unknown(data, _TOP_KEYS, "")
    carriers = tuple(_carrier(c, i, base_dir) for i, c in enumerate(_table_list(data, "carrier")))
    sites = tuple(_site(s, i, base_dir) for i, s in enumerate(_table_list(data, "site")))
    servers = tuple(_server(s, i) for i, s in enumerate(_table_list(data, "server"))) or ("server",)
    ipv6 = data.get("ipv6", False)
    if not isinstance(ipv6, bool):
        raise TopologyError(f"ipv6: expected true or false, got {ipv6!r}")
    topo = Topology(
        name=_str(data.get("name", default_name), "name"),
        sites=sites,
        carriers=carriers,
        servers=servers,
        ipv6=ipv6,
    )
    validate(topo)
    return topo


def _table_list(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise TopologyError(f"{key}: expected an array of tables ([[{key}]]), got {value!r}")
    return value


def _unknown(data: dict[str, Any], allowed: set[str], where: str) -> None:
    for key in data:
        if key not in allowed:
            raise TopologyError(f"{where}{key}: unknown key (allowed: {', '.join(sorted(allowed))})")


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise TopologyError(f"{where}: expected a string, got {value!r}")
    return value


def _nat(value: Any, where: str, base_dir: Path | None) -> NatSpec:
    try:
        if isinstance(value, str):
            return preset(value)
        if isinstance(value, dict):
            if isinstance(value.get("rules_file"), str) and base_dir is not None:
                value = {**value, "rules_file": str((base_dir / value["rules_file"]).resolve())}
            return nat_from_dict(value, where)
    except NatError as e:
        msg = str(e)  # preset() names the field "nat.<key>", nat_from_dict() names it from `where`
        raise TopologyError(msg.replace("nat.", f"{where}.", 1) if msg.startswith("nat.") else msg) from None
    raise TopologyError(f"{where}: expected a NAT type name or a table, got {value!r}")


def _site(data: dict[str, Any], i: int, base_dir: Path | None) -> Site:
    where = f"site[{i}]"
    _unknown(data, _SITE_KEYS, f"{where}.")
    if "name" not in data:
        raise TopologyError(f"{where}.name: missing")
    hosts = data.get("hosts", [])
    if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
        raise TopologyError(f"{where}.hosts: expected a list of host names, got {hosts!r}")
    behind = data.get("behind")
    lan = data.get("lan")
    impair = data.get("impair")
    if impair is not None and not isinstance(impair, dict):
        raise TopologyError(
            f"{where}.impair: expected a table like {{loss_pct = 2, rate_kbit = 1000}}, got {impair!r}"
        )
    try:
        impairment = None if impair is None else impair_from_dict(impair, f"{where}.impair")
    except ImpairError as e:
        raise TopologyError(str(e)) from None
    try:
        fw6 = None if data.get("fw6") is None else parse_fw6(data["fw6"], f"{where}.fw6", base_dir)
    except Fw6Error as e:
        raise TopologyError(str(e)) from None
    v4 = data.get("ipv4_hosts", [])
    if not isinstance(v4, list) or not all(isinstance(h, str) for h in v4):
        raise TopologyError(f"{where}.ipv4_hosts: expected a list of host names, got {v4!r}")
    return Site(
        ipv4_hosts=tuple(v4),
        name=_str(data["name"], f"{where}.name"),
        ipv6=_str(data.get("ipv6", IPV4_ONLY), f"{where}.ipv6"),
        fw6=fw6,
        nat=_nat(data.get("nat", PORT_RESTRICTED_CONE), f"{where}.nat", base_dir),
        hosts=tuple(hosts),
        behind=None if behind is None else _str(behind, f"{where}.behind"),
        lan=None if lan is None else _str(lan, f"{where}.lan"),
        impair=impairment,
    )


def _carrier(data: dict[str, Any], i: int, base_dir: Path | None) -> Carrier:
    where = f"carrier[{i}]"
    _unknown(data, _CARRIER_KEYS, f"{where}.")
    if "name" not in data:
        raise TopologyError(f"{where}.name: missing")
    nat = _nat(data.get("nat", SYMMETRIC), f"{where}.nat", base_dir)
    if not nat.nat:
        raise TopologyError(f"{where}.nat: a carrier-grade NAT cannot be 'open'")
    nat64 = data.get("nat64", False)
    if not isinstance(nat64, bool):
        raise TopologyError(f"{where}.nat64: expected true or false, got {nat64!r}")
    return Carrier(name=_str(data["name"], f"{where}.name"), nat=nat, nat64=nat64)


def _server(data: dict[str, Any], i: int) -> str:
    _unknown(data, _SERVER_KEYS, f"server[{i}].")
    return _str(data.get("name"), f"server[{i}].name")
