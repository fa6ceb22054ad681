"""Link impairments at a site's router: random packet loss (nftables) and a rate limit (TBF qdisc).

This kernel has no sch_netem, so there is no delay or jitter; loss and rate are what the built-in nftables
`numgen` expression and the TBF qdisc can do. Both apply to traffic the router forwards, in both directions:
loss in the forward hook, the rate on the router's egress towards the internet (uplink) and towards its LAN
(downlink).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyroute2 import IPRoute

from netsim.lab import netns, nftables

KEYS = ("loss_pct", "rate_kbit")
# TBF needs a bucket of at least one MTU-sized packet plus room for bursts at the configured rate.
MIN_BURST_BYTES = 3200
TBF_LATENCY_MS = 200


class ImpairError(ValueError):
    """A bad impairment; the message names the field and the value."""


@dataclass(frozen=True)
class Impairment:
    loss_pct: float = 0.0  # share of forwarded packets dropped at random, each direction
    rate_kbit: int | None = None  # rate limit of forwarded traffic, each direction

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

    @property
    def active(self) -> bool:
        return self.loss_pct > 0 or self.rate_kbit is not None


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


def apply(netns_name: str, imp: Impairment, interfaces: tuple[str, ...] = ("wan", "lan")) -> None:
    """Install the impairment in a router's namespace (never the root namespace)."""
    if imp.loss_pct > 0:
        nftables.load(netns_name, render_ruleset(imp))
    if imp.rate_kbit is None:
        return
    rate_bytes = imp.rate_kbit * 1000 // 8
    burst = max(MIN_BURST_BYTES, rate_bytes // 100)  # ~10 ms of traffic
    with netns.entered(netns_name):
        ipr = IPRoute()
    with ipr:
        for ifname in interfaces:
            index = ipr.link_lookup(ifname=ifname)[0]
            ipr.tc(
                "add", "tbf", index, rate=f"{imp.rate_kbit}kbit", burst=burst, latency=f"{TBF_LATENCY_MS}ms"
            )
