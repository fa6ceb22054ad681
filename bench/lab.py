"""Benchmark: lab build and teardown (no coturn), how the build grows with sites, coturn start. Needs root.

Prints medians beside the targets: the standard lab builds in <= 50 ms and in at most 0.35 of the time the
same lab takes with ~35 `ip` commands, teardown <= 20 ms (and, beside it, the build with static neighbours).
netsim and `ip` builds alternate within one run, each after a short settle pause (the kernel frees a deleted
lab's namespaces in the background, and a build that overlaps that work waits for it), so the ratio compares
like with like on a shared machine. Then labs of 2, 8, 32 and 64 sites (one host each) and one server show
the cost per site, which should stay flat.

`--ipv6` instead builds the standard lab IPv4-only and dual-stack (both sites `dual`, apdf firewalls, the
server's IPv6 addresses and routes) alternately: the IPv4-only build keeps its target (no slower than
before IPv6 existed), and the dual-stack build's extra cost is printed beside it.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time

from netsim.lab.lab import Lab
from netsim.lab.nat import preset
from netsim.lab.topology import Site, Topology, standard_topology

TARGET_BUILD_MS = 50.0
TARGET_RATIO = 0.35
TARGET_TEARDOWN_MS = 20.0
SITE_COUNTS = (2, 8, 32, 64)
# The kernel frees a deleted namespace in the background (about 10 ms each here, in batches that hold the
# locks a new namespace needs): a build that starts meanwhile waits, up to a second after a 64-site lab.
SETTLE_PER_NAMESPACE_S = 0.012


def lab_once(topology: Topology, static_neighbours: bool = False) -> tuple[float, float]:
    lab = Lab(topology, coturn=False, static_neighbours=static_neighbours)
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


def many_sites(count: int) -> Topology:
    """`count` port-restricted cone sites with one host each, and the server."""
    sites = tuple(Site(f"s{i}", preset("port-restricted-cone"), (f"h{i}",)) for i in range(1, count + 1))
    return Topology(name=f"sites-{count}", sites=sites)


def standard_vs_ip(runs: int, settle_s: float) -> None:
    ours_b, ours_t, ref_b, ref_t, static_b = [], [], [], [], []
    standard = standard_topology("port-restricted-cone", "symmetric")
    for i in range(runs):
        time.sleep(settle_s)
        b, t = lab_once(standard)
        ours_b.append(b)
        ours_t.append(t)
        time.sleep(settle_s)
        static_b.append(lab_once(standard, static_neighbours=True)[0])
        time.sleep(settle_s)
        b, t = ip_script_once(f"nsbench{i}")
        ref_b.append(b)
        ref_t.append(t)
    b, t = statistics.median(ours_b) * 1e3, statistics.median(ours_t) * 1e3
    rb, rt = statistics.median(ref_b) * 1e3, statistics.median(ref_t) * 1e3
    rows = [
        ("standard lab build (netlink, with NAT rules)", b, TARGET_BUILD_MS),
        ("standard lab teardown", t, TARGET_TEARDOWN_MS),
    ]
    for label, value, target in rows:
        verdict = "OK" if value <= target else "MISSED"
        print(f"{label:<46} {value:7.1f} ms median of {runs}  target <= {target:.0f} ms  {verdict}")
    print(f"{'reference: same lab with `ip` commands':<46} {rb:7.1f} ms build, {rt:.1f} ms teardown", end="")
    verdict = "OK" if b / rb <= TARGET_RATIO else "MISSED"
    print(f"  (netsim/ip ratio: build {b / rb:.2f}, teardown {t / rt:.2f})", end="")
    print(f"  target build <= {TARGET_RATIO}  {verdict}")
    sb = statistics.median(static_b) * 1e3
    label = "the same with static neighbours (17 entries)"
    print(f"{label:<46} {sb:7.1f} ms median of {runs} ({sb - b:+.1f} ms)")


def ipv6_cost(runs: int, settle_s: float) -> None:
    """The standard lab's build without and with IPv6, alternating (medians of `runs`)."""
    v4 = standard_topology("port-restricted-cone", "symmetric")
    dual = standard_topology("port-restricted-cone", "symmetric", ipv6_a="dual", ipv6_b="dual")
    builds: dict[str, list[float]] = {"v4": [], "dual": []}
    for _ in range(runs):
        for name, topology in (("v4", v4), ("dual", dual)):
            time.sleep(settle_s)
            builds[name].append(lab_once(topology)[0] * 1e3)
    b4, b6 = statistics.median(builds["v4"]), statistics.median(builds["dual"])
    verdict = "OK" if b4 <= TARGET_BUILD_MS else "MISSED"
    label = "standard lab build, IPv4 only"
    print(f"{label:<46} {b4:7.1f} ms median of {runs}  target <= {TARGET_BUILD_MS:.0f} ms  {verdict}")
    label = "standard lab build, both sites dual-stack"
    print(f"{label:<46} {b6:7.1f} ms median of {runs}  ({b6 - b4:+.1f} ms for IPv6: addresses, routes, fw6)")


def growth(runs: int, settle_s: float) -> None:
    """Build time per site count; the marginal cost per site between sizes should stay flat (linear).

    Each round builds every size once, so a change of load on the machine during the run spreads over all
    sizes instead of bending the curve; each build waits for the kernel to free the previous lab.
    """
    topologies = {count: many_sites(count) for count in SITE_COUNTS}
    builds: dict[int, list[float]] = {count: [] for count in SITE_COUNTS}
    teardowns: dict[int, list[float]] = {count: [] for count in SITE_COUNTS}
    previous = 0  # namespaces of the lab torn down last
    for _ in range(runs):
        for count, topology in topologies.items():
            time.sleep(settle_s + SETTLE_PER_NAMESPACE_S * previous)
            b, t = lab_once(topology)
            previous = 2 * count + 2
            builds[count].append(b * 1e3)
            teardowns[count].append(t * 1e3)
    built = {count: statistics.median(values) for count, values in builds.items()}
    for count in SITE_COUNTS:
        label = f"lab with {count} sites + server ({2 * count + 2} namespaces)"
        print(
            f"{label:<46} {built[count]:7.1f} ms build, {built[count] / count:5.2f} ms per site, "
            f"teardown {statistics.median(teardowns[count]):5.1f} ms  (median of {runs})"
        )
    print(growth_line(built))


def growth_line(built: dict[int, float]) -> str:
    """The build's cost per added site between successive sizes (ms), judged linear when the largest is at
    most twice the smallest (bench/population.py judges the shared lab by the same line)."""
    sizes = sorted(built)
    steps = list(zip(sizes, sizes[1:], strict=False))
    marginal = [(built[hi] - built[lo]) / (hi - lo) for lo, hi in steps]
    spread = max(marginal) / min(marginal) if min(marginal) > 0 else float("inf")
    parts = ", ".join(f"{lo}->{hi}: {m:.2f}" for (lo, hi), m in zip(steps, marginal, strict=True))
    verdict = "OK" if spread <= 2.0 else "MISSED"
    return f"cost per added site (ms): {parts}  (max/min {spread:.2f}, linear if <= 2)  {verdict}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=20, help="runs of the standard lab (and of coturn)")
    parser.add_argument("--growth-runs", type=int, default=5, help="rounds of the site counts")
    parser.add_argument("--settle", type=float, default=0.2, help="pause before each build, seconds")
    parser.add_argument("--skip-growth", action="store_true")
    parser.add_argument("--ipv6", action="store_true", help="only: the build without and with IPv6")
    args = parser.parse_args()
    if args.ipv6:
        ipv6_cost(args.n, args.settle)
        return
    standard_vs_ip(args.n, args.settle)
    if not args.skip_growth:
        growth(args.growth_runs, args.settle)
    coturn = [coturn_once() for _ in range(args.n)]
    ready = statistics.median(coturn) * 1e3
    print(f"{'coturn start to first STUN answer':<46} {ready:7.1f} ms median of {args.n}")


if __name__ == "__main__":
    main()
