"""Link impairments at a site's router: random loss, a rate limit, one-way delay and jitter.

All apply to traffic the router forwards, in both directions: loss in the forward hook (nftables `numgen`),
the rate on the router's egress towards the internet (uplink) and towards its LAN (downlink) with TBF, and
delay on both too, so the round trip through one delayed site grows by twice the delay. Delay comes from
netem where the kernel has `sch_netem` (a netem qdisc on each interface, TBF below it), else from the
userspace delay line (`netsim.lab.delay`, NFQUEUE); `mechanisms` says which, for the record.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from netsim.errors import InputError
from netsim.lab import delay, netns, nftables

if TYPE_CHECKING:
    from netsim.lab.topology import Topology

KEYS = ("loss_pct", "rate_kbit", "delay_ms", "jitter_ms")
NETEM: Final = "netem"  # delay backends, as records name them
NFQUEUE: Final = "nfqueue"
DELAY_BACKENDS: Final = (NETEM, NFQUEUE)
MAX_DELAY_MS = 10_000
NETEM_LIMIT = 100_000  # packets netem may hold (its default of 1000 overflows at 20,000 pkt/s x 50 ms)
# TBF needs a bucket of at least one MTU-sized packet plus room for bursts at the configured rate.
MIN_BURST_BYTES = 3200
TBF_LATENCY_MS = 200


class ImpairError(InputError):
    """A bad impairment; the message names the field and the value."""


@dataclass(frozen=True)
class Impairment:
    loss_pct: float = 0.0  # share of forwarded packets dropped at random, each direction
    rate_kbit: int | None = None  # rate limit of forwarded traffic, each direction
    delay_ms: float = 0.0  # one-way delay added to forwarded traffic, each direction
    jitter_ms: float = 0.0  # each packet's delay is uniform in delay_ms +- jitter_ms (netem's default)

    def __post_init__(self) -> None:
        if isinstance(self.loss_pct, bool) or not isinstance(self.loss_pct, int | float):
            raise ImpairError(f"impair.loss_pct: expected a number from 0 to 100, got {self.loss_pct!r}")
        if not 0 <= self.loss_pct <= 100:
            raise ImpairError(f"impair.loss_pct: expected a number from 0 to 100, got {self.loss_pct!r}")
        if self.rate_kbit is not None and (
            isinstance(self.rate_kbit, bool) or not isinstance(self.rate_kbit, int) or self.rate_kbit < 8
        ):
            raise ImpairError(
                f"impair.rate_kbit: expected whole kbit/s of at least 8, got {self.rate_kbit!r}"
            )
        if not _number(self.delay_ms) or not 0 <= self.delay_ms <= MAX_DELAY_MS:
            raise ImpairError(
                f"impair.delay_ms: expected a number from 0 to {MAX_DELAY_MS}, got {self.delay_ms!r}"
            )
        # Jitter beyond the delay would clip at zero and move the mean away from delay_ms.
        if not _number(self.jitter_ms) or not 0 <= self.jitter_ms <= self.delay_ms:
            limit = f"0 to delay_ms ({self.delay_ms:g})"
            raise ImpairError(f"impair.jitter_ms: expected a number from {limit}, got {self.jitter_ms!r}")

    @property
    def active(self) -> bool:
        return self.loss_pct > 0 or self.rate_kbit is not None or self.delayed

    @property
    def delayed(self) -> bool:
        return self.delay_ms > 0


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def impair_from_dict(data: dict[str, object], where: str) -> Impairment:
    """From a scenario's TOML table, e.g. {loss_pct = 2, rate_kbit = 1000}."""
    for key in data:
        if key not in KEYS:
            raise ImpairError(f"{where}.{key}: unknown key (choose from {', '.join(KEYS)})")
    try:
        return Impairment(**data)  # type: ignore[arg-type]
    except ImpairError as e:
        raise ImpairError(str(e).replace("impair.", f"{where}.", 1)) from None


def render_ruleset(imp: Impairment) -> str:
    """The loss rule: numgen draws 0..9999 per packet, so loss is exact to 0.01 %."""
    threshold = round(imp.loss_pct * 100)
    return (
        "table inet netsim_impair\n"
        "delete table inet netsim_impair\n"
        "table inet netsim_impair {\n"
        "\tchain forward {\n"
        "\t\ttype filter hook forward priority filter - 10; policy accept;\n"
        f"\t\tnumgen random mod 10000 < {threshold} drop\n"
        "\t}\n"
        "}\n"
    )


def apply(
    netns_name: str,
    imp: Impairment,
    interfaces: tuple[str, ...] = ("wan", "lan"),
    *,
    delay_backend: str | None = None,
) -> list[subprocess.Popen[Any]]:
    """Install the impairment in a router's namespace (never the root namespace).

    Returns the processes it started (the delay line, where it is used): the caller ends them by pid at
    teardown. `delay_backend` forces netem or the delay line; by default netem where the kernel has it.
    """
    if imp.loss_pct > 0:
        nftables.load(netns_name, render_ruleset(imp))
    backend = (delay_backend or delay_backend_here()) if imp.delayed else None
    if backend == NETEM:
        _run_tc(netns_name, netem_batch(imp, interfaces))
        return []
    if imp.rate_kbit is not None:
        _tbf(netns_name, imp.rate_kbit, interfaces)
    if backend == NFQUEUE:
        return [delay.start(netns_name, imp.delay_ms, imp.jitter_ms, interfaces)]
    return []


def _burst(rate_kbit: int) -> int:
    return max(MIN_BURST_BYTES, rate_kbit * 1000 // 8 // 100)  # ~10 ms of traffic


def _tbf(netns_name: str, rate_kbit: int, interfaces: tuple[str, ...]) -> None:
    from pyroute2 import IPRoute  # ~90 ms to import: only rate-limited sites pay it, not every lab or command

    with netns.entered(netns_name):
        ipr = IPRoute()
    with ipr:
        for ifname in interfaces:
            index = ipr.link_lookup(ifname=ifname)[0]
            ipr.tc(
                "add",
                "tbf",
                index,
                rate=f"{rate_kbit}kbit",
                burst=_burst(rate_kbit),
                latency=f"{TBF_LATENCY_MS}ms",
            )


def netem_batch(imp: Impairment, interfaces: tuple[str, ...]) -> str:
    """`tc -batch` input: netem at the root of each interface, the rate limit (TBF) as its child."""
    jitter = f" {round(imp.jitter_ms * 1000)}us" if imp.jitter_ms else ""
    lines = []
    for ifname in interfaces:
        lines.append(
            f"qdisc add dev {ifname} root handle 1: netem delay {round(imp.delay_ms * 1000)}us{jitter}"
            f" limit {NETEM_LIMIT}"
        )
        if imp.rate_kbit is not None:
            lines.append(
                f"qdisc add dev {ifname} parent 1:1 handle 10: tbf rate {imp.rate_kbit}kbit"
                f" burst {_burst(imp.rate_kbit)} latency {TBF_LATENCY_MS}ms"
            )
    return "\n".join([*lines, ""])


def _run_tc(netns_name: str, batch: str) -> None:
    done = netns.run(netns_name, ["tc", "-batch", "-"], input=batch.encode(), capture_output=True)
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip() or f"exit {done.returncode}"
        raise ImpairError(f"netem in {netns_name}: tc failed: {why}")


# ---- which delay backend this machine has -----------------------------------------------------------------


@functools.cache
def netem_probe() -> tuple[bool | None, str]:
    """(whether the kernel has sch_netem, how we know); None when it cannot be known (not root).

    The probe adds a netem qdisc to the loopback of a fresh, unnamed namespace made by `unshare --net` for
    that one command: nothing is named, nothing outlives it, and the root namespace is never touched.
    """
    if os.geteuid() != 0:
        return None, "needs root to probe"
    if shutil.which("unshare") is None or shutil.which("tc") is None:
        return False, "unshare or tc missing (util-linux, iproute2)"
    argv = ["unshare", "--net", "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    if done.returncode == 0:
        return True, "sch_netem"
    return False, " ".join(done.stderr.split()) or f"tc exit {done.returncode}"


def delay_backend_here() -> str:
    """netem where the kernel has it, else the userspace delay line."""
    return NETEM if netem_probe()[0] else NFQUEUE


def mechanisms(imp: Impairment | None) -> dict[str, str | None]:
    """What applies each part of a site's impairment, for the record: None where that part is off."""
    imp = imp or Impairment()
    backend = delay_backend_here() if imp.delayed else None
    return {
        "delay": backend,
        "loss": "nftables" if imp.loss_pct > 0 else None,
        "rate": "tbf" if imp.rate_kbit is not None else None,
    }


def site_mechanisms(topology: Topology) -> dict[str, dict[str, str | None]]:
    """`mechanisms` of every impaired site, by site name (e.g. {"nat-a": {"delay": "nfqueue", ...}})."""
    return {s.name: mechanisms(s.impair) for s in _impaired(topology.sites)}


def _impaired(sites: Iterable[Any]) -> list[Any]:
    return [s for s in sites if s.impair is not None and s.impair.active]
