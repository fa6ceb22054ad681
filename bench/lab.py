"""Benchmark: standard lab build and teardown (without coturn), and coturn start-to-ready. Needs root.

Prints the median of N runs beside the targets (build <= 100 ms, teardown <= 20 ms). For comparison it also
times the same lab built with ~35 `ip` commands, measured in the same run (ratios are what to compare on a
shared machine).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time

from netsim.lab.lab import Lab
from netsim.lab.topology import standard_topology

TARGET_BUILD_MS = 100.0
TARGET_TEARDOWN_MS = 20.0


def lab_once() -> tuple[float, float]:
    lab = Lab(standard_topology("port-restricted-cone", "symmetric"), coturn=False)
    lab.__enter__()
    build = lab.timings["build_s"]
    lab.__exit__(None, None, None)
    return build, lab.timings["teardown_s"]


def coturn_once() -> float:
    with Lab(standard_topology("open", "open")) as lab:
        return lab.timings["coturn_ready_s"]


def ip_script_once(prefix: str) -> tuple[float, float]:
    """The same shape of lab with plain `ip` commands (no NAT rules), as a reference point."""
    ns = [f"{prefix}-{n}" for n in ("inet", "server", "nat-a", "nat-b", "a", "b")]
    cmds = [["ip", "netns", "add", n] for n in ns]
    cmds += [
        ["ip", "-n", ns[0], "link", "add", "inet", "type", "bridge"],
        ["ip", "-n", ns[0], "link", "set", "inet", "up"],
    ]
    for i, node in enumerate(ns[1:4], start=1):
        cmds += [
            ["ip", "-n", node, "link", "add", "wan", "type", "veth", "peer", "name", f"p{i}", "netns", ns[0]],
            ["ip", "-n", ns[0], "link", "set", f"p{i}", "master", "inet", "up"],
            ["ip", "-n", node, "addr", "add", f"198.18.{i}.1/16", "dev", "wan"],
            ["ip", "-n", node, "link", "set", "wan", "up"],
        ]
    for i, (router, host) in enumerate(((ns[2], ns[4]), (ns[3], ns[5])), start=1):
        cmds += [
            ["ip", "-n", router, "link", "add", "lan", "type", "bridge"],
            ["ip", "-n", host, "link", "add", "eth0", "type", "veth", "peer", "name", "h1", "netns", router],
            ["ip", "-n", router, "link", "set", "h1", "master", "lan", "up"],
            ["ip", "-n", router, "addr", "add", f"10.{i}.0.1/24", "dev", "lan"],
            ["ip", "-n", router, "link", "set", "lan", "up"],
            ["ip", "-n", host, "addr", "add", f"10.{i}.0.2/24", "dev", "eth0"],
            ["ip", "-n", host, "link", "set", "eth0", "up"],
            ["ip", "-n", host, "route", "add", "default", "via", f"10.{i}.0.1"],
        ]
    t0 = time.perf_counter()
    for c in cmds:
        subprocess.run(c, check=True)
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    for n in ns:
        subprocess.run(["ip", "netns", "del", n], check=True)
    return build, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=20)
    args = parser.parse_args()
    builds, teardowns = zip(*(lab_once() for _ in range(args.n)), strict=True)
    ref_b, ref_t = zip(*(ip_script_once(f"nsbench{i}") for i in range(min(args.n, 5))), strict=True)
    coturn = [coturn_once() for _ in range(args.n)]
    b, t = statistics.median(builds) * 1e3, statistics.median(teardowns) * 1e3
    rb, rt = statistics.median(ref_b) * 1e3, statistics.median(ref_t) * 1e3
    rows = [
        ("standard lab build (netlink, with NAT rules)", b, TARGET_BUILD_MS),
        ("standard lab teardown", t, TARGET_TEARDOWN_MS),
    ]
    for label, value, target in rows:
        verdict = "OK" if value <= target else "MISSED"
        print(f"{label:<46} {value:7.1f} ms median of {args.n}  target <= {target:.0f} ms  {verdict}")
    print(f"{'reference: same lab with `ip` commands':<46} {rb:7.1f} ms build, {rt:.1f} ms teardown", end="")
    print(f"  (netsim/ip ratio: build {b / rb:.2f}, teardown {t / rt:.2f})")
    ready = statistics.median(coturn) * 1e3
    print(f"{'coturn start to first STUN answer':<46} {ready:7.1f} ms median of {args.n}")


if __name__ == "__main__":
    main()
