"""The `netsim` command line: labs (up, exec, down, cleanup), classify, and other modules' subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from netsim.lab import lab as labmod
from netsim.lab import netns
from netsim.lab.nat import NatError, preset
from netsim.lab.topology import Site, Topology, TopologyError, load_scenario, standard_topology


def _topology(args: argparse.Namespace) -> Topology:
    if args.scenario:
        return load_scenario(args.scenario)
    return standard_topology(args.nat_a, args.nat_b)


def cmd_up(args: argparse.Namespace) -> int:
    lab = labmod.Lab(_topology(args), keep=True)
    with lab:
        if args.signaling:
            lab.start_signaling(in_process=False)
    info = lab.describe()
    if lab.signaling_url:
        info["signaling"] = {"url": lab.signaling_url, "secret": lab.signaling_secret}
    if lab.coturn is not None:
        info["coturn"] = {
            "ips": list(lab.coturn.ips),
            "secret": lab.coturn.secret,
            "log": str(lab.coturn.log_path),
        }
    if args.json:
        print(json.dumps(info))
        return 0
    print(f"lab {lab.id} is up ({lab.topology.name}); remove it with: netsim down {lab.id}")
    for name, node in info["nodes"].items():
        print(f"  {name:<10} {node['netns']:<24} {' '.join(node['addresses'])}")
    return 0


def cmd_exec(args: argparse.Namespace) -> int:
    entry = labmod.lookup(args.lab)
    node = entry["nodes"].get(args.node)
    if node is None:
        raise labmod.LabError(f"no node {args.node!r} in lab {args.lab} (nodes: {', '.join(entry['nodes'])})")
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise labmod.LabError("exec: no command given (netsim exec LAB NODE -- CMD ...)")
    return netns.run(node["netns"], cmd).returncode


def cmd_down(args: argparse.Namespace) -> int:
    labmod.remove(labmod.lookup(args.lab))
    print(f"lab {args.lab} removed")
    return 0


def cmd_cleanup(args: argparse.Namespace) -> int:
    removed = labmod.cleanup(all_labs=args.all)
    print(f"removed {len(removed)} lab(s){': ' + ' '.join(removed) if removed else ''}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    for entry in labmod.registered():
        state = "kept" if entry.get("keep") else ("running" if labmod.owner_alive(entry) else "orphaned")
        print(f"{entry['lab']}  {entry.get('topology', '?'):<16} {state:<9} pid {entry['owner_pid']}")
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    from netsim.lab import probe

    if args.rules:
        spec = preset("custom", rules_file=str(Path(args.rules).resolve()))
    elif args.type:
        spec = preset(args.type)
    else:
        raise NatError("classify: give a NAT type or --rules FILE")
    # Two hosts behind the NAT under test: hairpinning is judged between them (Linux never routes a
    # packet back to the host that sent it).
    sites = (Site("nat-a", spec, ("a", "a2")), Site("nat-b", preset("open"), ("b",)))
    topo = Topology("classify", sites=sites)
    with labmod.Lab(topo) as lab:
        result = probe.classify(lab, "a", measure_lifetime=args.lifetime)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:<10} {value}")
    return 0


def _lab_parsers(sub: argparse._SubParsersAction) -> None:
    up = sub.add_parser("up", help="build a lab and leave it up")
    up.add_argument("scenario", nargs="?", help="scenario TOML file (default: the standard two-site lab)")
    up.add_argument("--nat-a", default="port-restricted-cone")
    up.add_argument("--nat-b", default="port-restricted-cone")
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
    cl.add_argument("type", nargs="?", help="NAT preset")
    cl.add_argument("--rules", help="a ruleset file instead of a preset")
    cl.add_argument("--lifetime", action="store_true", help="also measure the mapping lifetime (slow)")
    cl.add_argument("--json", action="store_true")
    cl.set_defaults(func=cmd_classify)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="netsim", description="NAT traversal lab for WebRTC")
    sub = parser.add_subparsers(dest="command", required=True)
    _lab_parsers(sub)
    for module in ("services.signaling", "session.run", "results.report", "suite.catalog"):
        try:
            mod = __import__(f"netsim.{module}", fromlist=["add_cli"])
        except ImportError as e:
            if e.name != f"netsim.{module}":
                raise
            continue
        mod.add_cli(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (TopologyError, NatError, labmod.LabError, ValueError, FileNotFoundError) as e:
        print(f"netsim: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
