"""`netsim pair`: one pairing in a fresh standard lab, printed (or as JSON), exit 1 if it did not do what
was expected (by default: connect)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from netsim.cli.common import InputError, exit_code, peer_name, positive_float, print_json, retries_arg
from netsim.cli.labargs import add_site_options, nat_label, site_options
from netsim.records import ResultRecord
from netsim.vocab import (
    AIORTC,
    FAMILIES,
    INCONCLUSIVE,
    PEER_STACKS,
    POLICIES,
    SIDES,
    TURN_CHOICES,
    UDP,
    VIOLATED,
)

IPV6 = FAMILIES[1]


def add_parsers(sub: Any) -> None:
    _pair_parser(sub)


def _pair_parser(sub: Any) -> None:
    p = sub.add_parser("pair", help="run one WebRTC session between two NATed hosts in a fresh lab")
    # The same defaults as `netsim up`: the port-restricted cone of most home routers, IPv4 only.
    add_site_options(p)
    for side in SIDES:
        p.add_argument(
            f"--peer-{side}",
            type=peer_name,
            default=AIORTC,
            metavar="STACK",
            help=f"WebRTC stack of {side}: {', '.join(PEER_STACKS)} or exec:COMMAND, a program speaking the "
            "peer protocol of docs/peers.md (default aiortc)",
        )
    p.add_argument("--turn", choices=TURN_CHOICES, default=UDP, help="TURN transport (default udp)")
    p.add_argument("--policy", choices=POLICIES, default="all", help="ICE transport policy (default all)")
    p.add_argument("--glare", action="store_true", help="both peers offer at once (perfect negotiation)")
    p.add_argument("--glare-first", choices=SIDES, default="a", help="whose offer is sent first")
    p.add_argument(
        "--deadline",
        type=positive_float,
        default=None,
        help="connect deadline in seconds (default: the suite's rule, 3 s; behind the UDP firewall 4 s plus "
        "5 s per blocked side, whose gathering waits out the STUN timeout)",
    )
    p.add_argument("--media", action="store_true", help="also send a synthetic audio and video track")
    for side in SIDES:
        p.add_argument(
            f"--ipv4-only-{side}",
            action="store_true",
            help=f"{side}'s Chromium is its IPv4-only twin: no IPv6 gathering (WebRTC-IPv6Default/Disabled/)",
        )
    p.add_argument("--no-needs-relay", action="store_true", help="skip the relay-less second run")
    p.add_argument("--hold", type=float, default=0.0, metavar="S", help="keep the call up S s after connect")
    p.add_argument(
        "--interval",
        type=float,
        default=1.0,
        metavar="S",
        help="echo every S s while held (0: none; default 1)",
    )
    p.add_argument(
        "--event",
        action="append",
        default=[],
        metavar="AT:ACTION[:ARGS]",
        help="a network event AT s after connect: flush:NODE, down:NODE:SECONDS, nat:NODE:KIND, "
        "move:HOST:SITE, turn-restart (repeatable; needs --hold beyond it)",
    )
    for side in SIDES:
        p.add_argument(f"--loss-{side}", type=float, default=0.0, help=f"random loss at nat-{side}, percent")
        p.add_argument(f"--rate-{side}", type=int, default=None, help=f"rate limit at nat-{side}, kbit/s")
        p.add_argument(f"--delay-{side}", type=float, default=0.0, help=f"one-way delay at nat-{side}, ms")
        p.add_argument(
            f"--jitter-{side}", type=float, default=0.0, help=f"jitter at nat-{side}, ms (<= delay)"
        )
    expect = p.add_mutually_exclusive_group()
    expect.add_argument("--expect-fail", action="store_true", help="the pairing must not connect")
    expect.add_argument(
        "--expect-relay", action="store_true", help="the pairing must need a relay (the relay-less run fails)"
    )
    expect.add_argument(
        "--expect-direct", action="store_true", help="the pairing must not need a relay (a direct path works)"
    )
    p.add_argument(
        "--expect-call",
        default=None,
        metavar="OUTCOME",
        help="with --hold: the call must end held, recovered or dropped (or e.g. held|recovered)",
    )
    p.add_argument(
        "--retries",
        type=retries_arg,
        default=2,
        help="runs of a session that load made inconclusive, beyond the first (default 2; docs/load.md)",
    )
    p.add_argument("--json", action="store_true", help="print the result record as JSON")
    p.set_defaults(func=cmd_pair)


def cmd_pair(args: argparse.Namespace) -> int:
    """Exit 0 when the session did what was expected (by default: connect), 1 when it did not."""
    from netsim.lab import events
    from netsim.lab.impair import Impairment
    from netsim.lab.topology import standard_topology
    from netsim.peers.launcher import Launcher
    from netsim.suite.runner import run_one
    from netsim.suite.scenario import Scenario, default_options

    impairs = {
        s: Impairment(
            getattr(args, f"loss_{s}"),
            getattr(args, f"rate_{s}"),
            delay_ms=getattr(args, f"delay_{s}"),
            jitter_ms=getattr(args, f"jitter_{s}"),
        )
        for s in SIDES
    }
    sites = site_options(args)
    topo = standard_topology(impair_a=impairs["a"], impair_b=impairs["b"], **sites)
    label_a, label_b = nat_label(sites["nat_a"]), nat_label(sites["nat_b"])
    options: dict[str, Any] = dict(
        peer_a=args.peer_a,
        peer_b=args.peer_b,
        turn=args.turn,
        policy=args.policy,
        glare=args.glare,
        glare_first=args.glare_first,
        media=args.media,
        ipv4_only_a=args.ipv4_only_a,
        ipv4_only_b=args.ipv4_only_b,
        needs_relay=not args.no_needs_relay,
        hold_s=args.hold,
        interval_s=args.interval,
        events=[events.parse_spec(text) for text in args.event],
    )
    if args.deadline is not None:
        options["deadline_s"] = args.deadline
    opts = default_options(topo, **options)  # validated before anything is built
    events.check(opts.events, topo)
    if args.expect_call is not None and args.hold <= 0:
        raise InputError("--expect-call: needs --hold (a call that lasts)")
    scn = Scenario(
        f"pair/{label_a}__{label_b}",
        "pair",
        topo,
        label_a,
        label_b,
        opts,
        _pair_expectation(args),
    )
    with Launcher() as launcher:  # the launcher imports while the lab builds
        record, _ = run_one(scn, launcher, {}, None, retries=args.retries)
    if args.json:
        print_json(record)
    else:
        print(format_record(record))
    for line in broken_peers(record):
        print(f"netsim: {line}", file=sys.stderr)
    outcome = record.get("outcome")
    return exit_code(outcome == VIOLATED, outcome == INCONCLUSIVE)


def broken_peers(rec: ResultRecord) -> list[str]:
    """The sides whose peer broke the peer protocol, each as its reason (`peer a (exec:CMD): what`)."""
    from netsim.peers.protocol import broke_protocol

    return [str(rec[side]["reason"]) for side in SIDES if broke_protocol(side, rec[side]["reason"])]


def _pair_expectation(args: argparse.Namespace) -> Any:
    """What one pairing must do: connect, unless --expect-fail/--expect-relay/--expect-direct say more;
    --expect-call adds the held call's outcome."""
    import dataclasses

    from netsim.suite.expectations import Expectation, from_entry

    if args.expect_fail:
        exp = Expectation(needs_relay=None, connect=False, source="--expect-fail")
    elif args.expect_relay:
        exp = Expectation(needs_relay=True, connect=True, source="--expect-relay")
    elif args.expect_direct:
        exp = Expectation(needs_relay=False, connect=True, source="--expect-direct")
    else:
        exp = Expectation(needs_relay=None, connect=True, source="netsim pair (connects)")
    if args.expect_call is not None:
        call = from_entry({"call": args.expect_call.split("|")}, "--expect-call").call
        exp = dataclasses.replace(exp, call=call, source=f"{exp.source}, --expect-call {args.expect_call}")
    return exp


def format_record(rec: ResultRecord) -> str:
    """A session record in a few lines for the terminal."""
    lines = [
        f"{rec['nat_a']} x {rec['nat_b']}  turn={rec['turn']} policy={rec['policy']} glare={rec['glare']}",
        f"verdict: {rec['verdict']}"
        + (f" (relayed by {rec['relay_side']})" if rec["relay_side"] else "")
        + f"  needs_relay: {rec['needs_relay']}  connect_s: {rec['connect_s']}",
    ]
    for side in SIDES:
        p = rec[side]
        via = f" via TURN/{p['turn_transport']}" if p["turn_transport"] else ""
        lines.append(
            f"  {side}: {p['local_type']} {p['local']} -> {p['remote_type']} {p['remote']} ({p['role']}){via}"
        )
    fam = rec.get("families")
    if fam is not None and (IPV6 in fam["a"] or IPV6 in fam["b"]):  # an IPv4-only session prints as before
        gathered = "; ".join(f"{side} gathered {'+'.join(fam[side]) or 'nothing'}" for side in SIDES)
        ipv6 = "was" if fam["ipv6_pair"] else "never"
        lines.append(f"  family: {fam['won']} ({gathered}; an IPv6 pair {ipv6} selected)")
    lines.append("  timings: " + ", ".join(f"{k}={v}" for k, v in rec["timings"].items()))
    if rec["reason"]:
        lines.append(f"  reason: {rec['reason']}")
    if rec.get("infrastructure"):
        lines.append(f"  failed by the lab, not the NATs: {rec.get('infrastructure')}")
    call = rec.get("call")
    if call is not None:
        recovery = f" after {call['recovery_s']} s" if call.get("recovery_s") is not None else ""
        cause = f" ({call['cause']})" if call.get("cause") else ""
        lines.append(f"  call: {call.get('outcome')}{recovery}{cause}, held {call.get('hold_s')} s")
    wait = rec["timings"].get("cpu_wait_s")
    if wait is not None:
        lines.append(f"  cpu wait: {wait} s in {rec['timings'].get('wall_s')} s ({rec.get('cpu_wait')})")
    tried = rec.get("attempts") or []
    if len(tried) > 1:
        lines.append(f"  attempts: {len(tried)} (" + "; ".join(_attempt_text(a) for a in tried) + ")")
    outcome = rec.get("outcome")
    if outcome == VIOLATED:
        lines.append("  expectation violated:\n    " + str(rec.get("mismatch")).replace("\n", "\n    "))
    elif outcome == INCONCLUSIVE:
        judged = rec.get("load")
        why = rec.get("infrastructure") or (judged["reason"] if judged else None)
        lines.append(f"  outcome: inconclusive: {why}")
    else:
        lines.append(f"  outcome: {outcome}")
    return "\n".join(lines)


def _attempt_text(a: Any) -> str:
    return f"{a['verdict']}, cpu wait {a['cpu_wait_s']} s of a {a['deadline_s']:g} s deadline"
