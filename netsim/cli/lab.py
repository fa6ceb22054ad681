"""Lab commands: up, exec, down, list, cleanup, classify."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from netsim.cli.common import EXIT_OK, InputError, print_json
from netsim.cli.labargs import add_site_options, site_options
from netsim.vocab import CUSTOM_NAT, DUAL, IPV4_ONLY, NAT_PRESETS, OPEN, PORT_RESTRICTED_CONE


def add_parsers(sub: Any) -> None:
    up = sub.add_parser("up", help="build a lab and leave it up")
    up.add_argument("scenario", nargs="?", help="scenario TOML file (default: the standard two-site lab)")
    add_site_options(up)
    up.add_argument("--signaling", action="store_true", help="also start the signaling server")
    up.add_argument("--json", action="store_true")
    up.set_defaults(func=cmd_up)
    ex = sub.add_parser("exec", help="run a command in a node's namespace")
    ex.add_argument("lab")
    ex.add_argument("node")
    ex.add_argument("cmd", nargs=argparse.REMAINDER)
    ex.set_defaults(func=cmd_exec)
    down = sub.add_parser("down", help="tear a lab down")
    down.add_argument("lab")
    down.set_defaults(func=cmd_down)
    clean = sub.add_parser("cleanup", help="remove labs left behind by runs that died")
    clean.add_argument("--all", action="store_true", help="remove every netsim lab, kept ones included")
    clean.set_defaults(func=cmd_cleanup)
    ls = sub.add_parser("list", help="list netsim labs on this machine")
    ls.set_defaults(func=cmd_list)
    cl = sub.add_parser("classify", help="build a lab with one NAT and measure how it behaves")
    cl.add_argument("type", nargs="?", choices=NAT_PRESETS, metavar="KIND", help="NAT preset")
    cl.add_argument("--rules", help="a ruleset file instead of a preset")
    cl.add_argument(
        "--fw6",
        metavar="PRESET|FILE",
        help="make the site dual-stack behind this IPv6 firewall (open, eif, apdf, block-udp or a rules "
        "file) and classify it too (NAT: port-restricted-cone unless given)",
    )
    cl.add_argument("--lifetime", action="store_true", help="also measure the mapping lifetime (slow)")
    cl.add_argument("--json", action="store_true")
    cl.set_defaults(func=cmd_classify)


def cmd_up(args: argparse.Namespace) -> int:
    from netsim.lab.lab import Lab
    from netsim.lab.topology import standard_topology
    from netsim.suite.scenario import load_scenario_file

    topo = load_scenario_file(args.scenario).topology if args.scenario else None
    lab = Lab(topo or standard_topology(**site_options(args)), keep=True)
    with lab:
        if args.signaling:
            lab.start_signaling(in_process=False)
    info: dict[str, Any] = lab.describe()
    if lab.signaling_url:
        info["signaling"] = {"url": lab.signaling_url, "secret": lab.signaling_secret}
    if lab.coturn is not None:
        info["coturn"] = {
            "ips": list(lab.coturn.ips),
            "relay_ip": lab.coturn.relay_ip,
            "secret": lab.coturn.secret,
            "log": str(lab.coturn.log_path),
        }
    if args.json:
        print(json.dumps(info))
        return EXIT_OK
    print(f"lab {lab.id} is up ({lab.topology.name}); remove it with: netsim down {lab.id}")
    for name, node in info["nodes"].items():
        print(f"  {name:<10} {node['netns']:<24} {' '.join(node['addresses'] + node.get('addresses6', []))}")
    return EXIT_OK


def cmd_exec(args: argparse.Namespace) -> int:
    from netsim.lab import netns, registry

    entry = registry.lookup(args.lab)
    node = entry["nodes"].get(args.node)
    if node is None:
        raise InputError(f"no node {args.node!r} in lab {args.lab} (nodes: {', '.join(entry['nodes'])})")
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise InputError("exec: no command given (netsim exec LAB NODE -- CMD ...)")
    if not netns.exists(node["netns"]):
        raise registry.LabInputError(
            f"lab {args.lab}: namespace {node['netns']} is gone (netsim down {args.lab})"
        )
    return netns.run(node["netns"], cmd).returncode


def cmd_down(args: argparse.Namespace) -> int:
    from netsim.lab import registry

    registry.remove(registry.lookup(args.lab))
    print(f"lab {args.lab} removed")
    return EXIT_OK


def cmd_cleanup(args: argparse.Namespace) -> int:
    from netsim.lab import registry

    removed = registry.cleanup(all_labs=args.all)
    print(f"removed {len(removed)} lab(s){': ' + ' '.join(removed) if removed else ''}")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    from netsim.lab import registry

    for entry in registry.registered():
        state = "kept" if entry.get("keep") else ("running" if registry.owner_alive(entry) else "orphaned")
        print(f"{entry['lab']}  {entry.get('topology', '?'):<16} {state:<9} pid {entry['owner_pid']}")
    return EXIT_OK


def cmd_classify(args: argparse.Namespace) -> int:
    from netsim.lab import probe
    from netsim.lab.fw6 import Fw6Error, parse
    from netsim.lab.lab import Lab
    from netsim.lab.nat import preset
    from netsim.lab.topology import Site, Topology

    if args.rules and args.type:
        raise InputError(f"classify: give a NAT type or --rules FILE, not both (got {args.type!r})")
    if args.rules:
        spec = preset(CUSTOM_NAT, rules_file=str(_readable_rules(Path(args.rules))))
    elif args.type:
        spec = preset(args.type)
    elif args.fw6:
        spec = preset(PORT_RESTRICTED_CONE)
    else:
        raise InputError("classify: give a NAT type, --rules FILE or --fw6 PRESET|FILE")
    try:
        firewall = None if args.fw6 is None else parse(args.fw6, "--fw6")
    except Fw6Error as e:
        raise InputError(str(e)) from None
    mode = IPV4_ONLY if firewall is None else DUAL
    # Two hosts behind the NAT under test: hairpinning is judged between them (Linux never routes a
    # packet back to the host that sent it).
    site = Site("nat-a", spec, ("a", "a2"), ipv6=mode, fw6=firewall)
    sites = (site, Site("nat-b", preset(OPEN), ("b",)))
    with Lab(Topology("classify", sites=sites)) as lab:  # nft judges the rules themselves inside the lab
        result = probe.classify(lab, "a", measure_lifetime=args.lifetime)
    if args.json:
        print_json(result)
        return EXIT_OK
    bracket = result.pop("lifetime_bracket_s", None)
    if bracket is not None:  # the bracket measured, never a bare lower bound
        result["lifetime_s"] = probe.bracket_text(bracket[0], bracket[1])
    six = result.pop("ipv6", None)
    for key, value in result.items():
        print(f"{key:<10} {value}")
    for key, value in (six or {}).items():
        print(f"{'ipv6 ' + key:<10} {value}")
    return EXIT_OK


def _readable_rules(path: Path) -> Path:
    """A ruleset file that exists and reads as text, checked before a lab is built; its absolute path."""
    if not path.is_file():
        raise InputError(f"--rules: no such file: {path}")
    try:
        path.read_text()
    except OSError as e:
        raise InputError(f"--rules: cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"--rules: {path} is not a text file (not UTF-8)") from None
    return path.resolve()
