"""The scenario catalog: the NAT matrices, the firewall, policy and glare scenarios, and scenario files.

`pytest scenarios/` parametrizes over `catalog(directory)`; researchers add topologies as TOML files in that
directory and expectations in its expected.toml.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

from netsim.lab.topology import Topology, standard_topology
from netsim.results.records import PopulationDraw
from netsim.suite.scenario import Scenario, default_options, file_scenarios
from netsim.vocab import MATRIX_NOTURN, MATRIX_TURN, NAT_KINDS, NO_TURN, POPULATION, UDP_BLOCKED, Turn


class MixError(ValueError):
    """A NAT mix or population size that cannot be drawn from; the message names the option."""


def pairing(scenario_id: str, group: str, nat_a: str, nat_b: str, **options: object) -> Scenario:
    """A scenario on the standard two-site lab (hosts a and b behind their own NATs)."""
    topo: Topology = standard_topology(nat_a, nat_b)
    return Scenario(scenario_id, group, topo, nat_a, nat_b, default_options(topo, **options))


def matrix(turn: Turn, kinds: tuple[str, ...] = NAT_KINDS) -> list[Scenario]:
    group = MATRIX_NOTURN if turn == NO_TURN else MATRIX_TURN
    return [pairing(f"{group}/{a}__{b}", group, a, b, turn=turn) for a in kinds for b in kinds]


def firewall() -> list[Scenario]:
    """UDP blocked on one side and on both: only TURN over TCP or TLS on port 443 gets out."""
    return [
        pairing(f"firewall/{UDP_BLOCKED}__{other}__{turn}", "firewall", UDP_BLOCKED, other, turn=turn)
        for other in ("port-restricted-cone", UDP_BLOCKED)
        for turn in ("tcp", "tls")
    ]


def policy_and_glare() -> list[Scenario]:
    prc = "port-restricted-cone"
    return [
        pairing(
            "policy/full-cone__full-cone__relay-only", "policy", "full-cone", "full-cone", policy="relay"
        ),
        *(
            pairing(f"glare/{prc}__{prc}__{first}-first", "glare", prc, prc, glare=True, glare_first=first)
            for first in ("a", "b")
        ),
    ]


def catalog(directory: Path) -> list[Scenario]:
    """Every scenario of the suite, in a stable order (their ids are pytest ids); `directory` holds the
    scenario files.

    The slow firewall scenarios come first so that pytest-xdist workers finish at about the same time.
    """
    return [
        *firewall(),
        *matrix("udp"),
        *matrix(NO_TURN),
        *file_scenarios(directory),
        *policy_and_glare(),
    ]


def parse_mix(text: str) -> dict[str, float]:
    """`kind=weight,...` as a dict."""
    mix = {}
    for part in text.split(","):
        kind, _, weight = part.partition("=")
        try:
            mix[kind.strip()] = float(weight)
        except ValueError:
            raise MixError(f"--mix: bad weight in {part!r} (use kind=weight,...)") from None
    return mix


def population(size: int, mix: dict[str, float], seed: int, turn: Turn = "udp") -> list[Scenario]:
    """`size` pairings whose two NAT kinds are drawn independently from `mix` (kind -> weight)."""
    for kind, weight in mix.items():
        if kind not in NAT_KINDS:
            raise MixError(f"--mix: unknown NAT kind {kind!r} (choose from {', '.join(NAT_KINDS)})")
        if weight < 0:
            raise MixError(f"--mix: negative weight for {kind!r}: {weight}")
    if sum(mix.values()) <= 0:
        raise MixError("--mix: the weights must add up to a positive number")
    if size < 1:
        raise MixError(f"--size: needs at least one session, got {size}")
    rng = random.Random(seed)
    kinds, weights = list(mix), list(mix.values())
    out = []
    for i in range(size):
        a, b = rng.choices(kinds, weights, k=2)
        scn = pairing(f"{POPULATION}/{i:04d}__{a}__{b}", POPULATION, a, b, turn=turn)
        draw: PopulationDraw = {"seed": seed, "mix": dict(mix), "size": size, "index": i}
        out.append(dataclasses.replace(scn, draw=draw))
    return out
