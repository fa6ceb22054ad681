"""Rules and probing commands: rules show/check (NAT rulesets without a lab), stun (a STUN probe in a lab)."""

from __future__ import annotations

import argparse
import ipaddress
import sys
from pathlib import Path
from typing import Any

from netsim.cli.common import EXIT_INPUT, EXIT_OK, InputError, positive_float, print_json
from netsim.vocab import FW6_PRESETS, NAT_PRESETS, STUN_PORT

# IPv6 firewall presets are shown as fw6-NAME (their files' names): "open" is also a NAT preset.
_SHOWN = (*NAT_PRESETS, *(f"fw6-{name}" for name in FW6_PRESETS))
SERVER_NODE = "server"  # the node `netsim stun` asks by default (the standard lab's coturn host)
STUN_TIMEOUT_S = 2.0


def add_parsers(sub: Any) -> None:
    rules = sub.add_parser(
        "rules", help="NAT and IPv6 firewall rules files: print a preset's, check your own (no lab needed)"
    )
    rules_sub = rules.add_subparsers(dest="rules_command", required=True, metavar="SUBCOMMAND")
    show = rules_sub.add_parser("show", help="print a preset's complete rules file, ready to copy")
    show.add_argument("preset", choices=_SHOWN, metavar="PRESET", help=", ".join(_SHOWN))
    show.set_defaults(func=cmd_rules_show)
    check = rules_sub.add_parser("check", help="validate a rules file with nft (exit 2 on errors)")
    check.add_argument("file")
    check.set_defaults(func=cmd_rules_check)
    stun = sub.add_parser("stun", help="ask STUN servers in a lab which address a node is mapped to")
    stun.add_argument("lab")
    stun.add_argument("node")
    stun.add_argument(
        "--server",
        action="append",
        metavar="ADDR",
        help=f"IP[:PORT] of a STUN server in the lab, repeatable (default: the {SERVER_NODE} node's "
        f"first two addresses, port {STUN_PORT})",
    )
    stun.add_argument("--timeout", type=positive_float, default=STUN_TIMEOUT_S, help="seconds per server")
    stun.add_argument("--json", action="store_true")
    stun.set_defaults(func=cmd_stun)


def cmd_rules_show(args: argparse.Namespace) -> int:
    from netsim.lab import fw6
    from netsim.lab.nat import preset_text

    name = args.preset
    sys.stdout.write(fw6.preset_text(name) if name.startswith(fw6.PREFIX) else preset_text(name))
    return EXIT_OK


def cmd_rules_check(args: argparse.Namespace) -> int:
    from netsim.lab import fw6
    from netsim.lab.nat import NatError, check

    path = Path(args.file)
    if not path.is_file():
        raise InputError(f"rules check: no such file: {path}")
    try:
        # An IPv6 firewall (table ip6 ...) is checked as a dual-stack site loads it, a NAT ruleset as a NAT
        fw6.check(path) if fw6.is_fw6_file(path) else check(path)
    except (NatError, fw6.Fw6Error) as e:
        print(e, file=sys.stderr)  # PATH:LINE:COL: message, then the offending line: several lines
        return EXIT_INPUT
    print(f"{path}: ok")
    return EXIT_OK


# ---- stun --------------------------------------------------------------------------------------------------


def parse_server(text: str) -> tuple[str, int]:
    """`IP` or `IP:PORT` (port 3478 when none is given)."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = text, str(STUN_PORT)
    try:
        ip = str(ipaddress.IPv4Address(host))
        port = int(port_text)
    except ValueError:
        raise InputError(f"--server: expected IP or IP:PORT, got {text!r}") from None
    if not 1 <= port <= 65535:
        raise InputError(f"--server: port must be 1-65535, got {text!r}")
    return ip, port


def stun_servers(entry: dict[str, Any], given: list[str] | None) -> list[tuple[str, int]]:
    """The servers to ask: those given (each must be an address of the lab: probes never leave it), else
    the server node's addresses."""
    nodes: dict[str, Any] = entry["nodes"]
    lab_ips = {a.split("/")[0] for node in nodes.values() for a in node["addresses"]}
    if given:
        servers = [parse_server(text) for text in given]
        for ip, port in servers:
            if ip not in lab_ips:
                raise InputError(f"--server: {ip}:{port} is not an address of lab {entry['lab']}")
        return servers
    if SERVER_NODE not in nodes:
        raise InputError(f"lab {entry['lab']} has no {SERVER_NODE!r} node: name STUN servers with --server")
    # coturn listens on the first two (RFC 5780); a later address serves signaling only.
    return [(a.split("/")[0], STUN_PORT) for a in nodes[SERVER_NODE]["addresses"][:2]]


def cmd_stun(args: argparse.Namespace) -> int:
    from netsim.lab import netns, registry
    from netsim.services import stun

    entry = registry.lookup(args.lab)
    node = entry["nodes"].get(args.node)
    if node is None:
        raise InputError(f"no node {args.node!r} in lab {args.lab} (nodes: {', '.join(entry['nodes'])})")
    servers = stun_servers(entry, args.server)
    # One socket for every server: the same internal endpoint, so the answers show how the NAT maps it.
    with netns.socket_in(node["netns"]) as sock:
        sock.bind(("0.0.0.0", 0))
        local = sock.getsockname()[1]
        answers = [(server, stun.binding(sock, server, args.timeout)) for server in servers]
    return _print_stun(args, local, answers)


def _print_stun(
    args: argparse.Namespace, local: int, answers: list[tuple[tuple[str, int], tuple[str, int] | None]]
) -> int:
    answered = [m for _, m in answers if m is not None]
    # Whether the mapping changed is known only when every one of two or more servers answered.
    changed = len(set(answered)) > 1 if len(answers) > 1 and len(answered) == len(answers) else None
    silent = [f"{ip}:{port}" for (ip, port), m in answers if m is None]
    if args.json:
        print_json(
            {
                "lab": args.lab,
                "node": args.node,
                "local_port": local,
                "answers": [{"server": f"{s[0]}:{s[1]}", "mapped": _addr(m)} for s, m in answers],
                "mapping_changed": changed,
            }
        )
    else:
        print(f"{args.node} (lab {args.lab}), local port {local}:")
        for (ip, port), m in answers:
            print(f"  {ip}:{port:<6} mapped {_addr(m) or 'no answer'}")
        if changed is not None:
            print(f"mapping {'changed' if changed else 'unchanged'} between servers")
    if silent:
        raise InputError(f"no STUN answer from {', '.join(silent)} within {args.timeout:g} s")
    return EXIT_OK


def _addr(mapped: tuple[str, int] | None) -> str | None:
    return None if mapped is None else f"{mapped[0]}:{mapped[1]}"
