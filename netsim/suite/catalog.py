"""The scenario catalog: the NAT matrices, the firewall, policy and glare scenarios, and scenario files.

`pytest scenarios/` parametrizes over `catalog(directory)`; researchers add topologies as TOML files in that
directory and expectations in its expected.toml.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Any

from netsim.lab.fw6 import Fw6Spec
from netsim.lab.nat import preset
from netsim.lab.topology import Carrier, Site, Topology, standard_topology
from netsim.records import PopulationDraw
from netsim.suite.mixes import Mix, MixError, split_endpoint, split_kind
from netsim.suite.scenario import Scenario, default_options, file_scenarios
from netsim.vocab import (
    AIORTC,
    CHROMIUM,
    CLAT,
    CUSTOM_NAT,
    DUAL,
    FIREFOX,
    FULL_CONE,
    FW6_BLOCK_UDP,
    IPV4_ONLY,
    IPV6_GROUP_SUFFIX,
    MATRIX_NOTURN,
    MATRIX_TURN,
    NAT_KINDS,
    NAT_PRESETS,
    NO_TURN,
    PION,
    POPULATION,
    PORT_RESTRICTED_CONE,
    RELAY,
    TCP,
    TLS,
    UDP,
    UDP_BLOCKED,
    PeerName,
    Turn,
)


def pairing(
    scenario_id: str,
    group: str,
    nat_a: str,
    nat_b: str,
    modes: tuple[str, str] = (IPV4_ONLY, IPV4_ONLY),
    **options: object,
) -> Scenario:
    """A scenario on the standard two-site lab (hosts a and b behind their own NATs); a NAT is a preset or a
    rules file's path (labelled custom:FILE), and each side has an IP mode (IPv4 only by default)."""
    a, b = (
        n if n in NAT_PRESETS else preset(CUSTOM_NAT, rules_file=str(Path(n).resolve()))
        for n in (nat_a, nat_b)
    )
    topo: Topology = standard_topology(a, b, ipv6_a=modes[0], ipv6_b=modes[1])
    opts = default_options(topo, **options)
    return Scenario(scenario_id, group, topo, _label(nat_a), _label(nat_b), opts)


def matrix_group(turn: Turn, peer_a: PeerName = AIORTC, peer_b: PeerName = AIORTC) -> str:
    """matrix-turn / matrix-noturn for aiortc pairs; other stack pairings append theirs, e.g.
    matrix-turn-chromium (both Chromium) or matrix-turn-chromium-aiortc (a is Chromium, b aiortc)."""
    group = MATRIX_NOTURN if turn == NO_TURN else MATRIX_TURN
    if (peer_a, peer_b) == (AIORTC, AIORTC):
        return group
    return f"{group}-{peer_a}" if peer_a == peer_b else f"{group}-{peer_a}-{peer_b}"


def matrix(
    turn: Turn,
    kinds: tuple[str, ...] = NAT_KINDS,
    peer_a: PeerName = AIORTC,
    peer_b: PeerName = AIORTC,
    modes: tuple[str, ...] = (IPV4_ONLY,),
) -> list[Scenario]:
    """Every kind x kind cell for every IP mode x IP mode: IPv4-only cells keep the matrix group (and its
    IPv4 expectations); cells with IPv6 on a side go to GROUP-ipv6, ids ending in __MODE-A__MODE-B."""
    group = matrix_group(turn, peer_a, peer_b)
    cells = []
    for mode_a in modes:
        for mode_b in modes:
            v4 = (mode_a, mode_b) == (IPV4_ONLY, IPV4_ONLY)
            where, tail = (group, "") if v4 else (f"{group}{IPV6_GROUP_SUFFIX}", f"__{mode_a}__{mode_b}")
            cells += [
                pairing(
                    f"{where}/{_label(a)}__{_label(b)}{tail}",
                    where,
                    a,
                    b,
                    (mode_a, mode_b),
                    turn=turn,
                    peer_a=peer_a,
                    peer_b=peer_b,
                )
                for a in kinds
                for b in kinds
            ]
    return cells


def _label(kind: str) -> str:
    return kind if kind in NAT_PRESETS else f"{CUSTOM_NAT}:{Path(kind).name}"


def browser_matrices() -> list[Scenario]:
    """Chromium (libwebrtc) x Chromium with TURN and without, and mixed pairs in both orders with TURN."""
    return [
        *matrix(UDP, peer_a=CHROMIUM, peer_b=CHROMIUM),
        *matrix(NO_TURN, peer_a=CHROMIUM, peer_b=CHROMIUM),
        *matrix(UDP, peer_a=CHROMIUM, peer_b=AIORTC),
        *matrix(UDP, peer_a=AIORTC, peer_b=CHROMIUM),
    ]


def firefox_matrices() -> list[Scenario]:
    """Firefox (nICEr) x Firefox with TURN and without, and Firefox against Chromium and aiortc in both
    orders with TURN (deselected by default: a Firefox costs ~2 s and ~0.4 GiB; `-m firefox` runs them)."""
    return [
        *matrix(UDP, peer_a=FIREFOX, peer_b=FIREFOX),
        *matrix(NO_TURN, peer_a=FIREFOX, peer_b=FIREFOX),
        *matrix(UDP, peer_a=FIREFOX, peer_b=CHROMIUM),
        *matrix(UDP, peer_a=CHROMIUM, peer_b=FIREFOX),
        *matrix(UDP, peer_a=FIREFOX, peer_b=AIORTC),
        *matrix(UDP, peer_a=AIORTC, peer_b=FIREFOX),
    ]


def pion_matrices() -> list[Scenario]:
    """Pion x Pion with TURN and without, and Pion against Chromium and aiortc in both orders with TURN."""
    return [
        *matrix(UDP, peer_a=PION, peer_b=PION),
        *matrix(NO_TURN, peer_a=PION, peer_b=PION),
        *matrix(UDP, peer_a=PION, peer_b=CHROMIUM),
        *matrix(UDP, peer_a=CHROMIUM, peer_b=PION),
        *matrix(UDP, peer_a=PION, peer_b=AIORTC),
        *matrix(UDP, peer_a=AIORTC, peer_b=PION),
    ]


def firewall() -> list[Scenario]:
    """UDP blocked on one side and on both: only TURN over TCP or TLS on port 443 gets out."""
    return [
        pairing(f"firewall/{UDP_BLOCKED}__{other}__{turn}", "firewall", UDP_BLOCKED, other, turn=turn)
        for other in (PORT_RESTRICTED_CONE, UDP_BLOCKED)
        for turn in (TCP, TLS)
    ]


def policy_and_glare() -> list[Scenario]:
    prc = PORT_RESTRICTED_CONE
    return [
        pairing(f"policy/{FULL_CONE}__{FULL_CONE}__relay-only", "policy", FULL_CONE, FULL_CONE, policy=RELAY),
        *(
            pairing(f"glare/{prc}__{prc}__{first}-first", "glare", prc, prc, glare=True, glare_first=first)
            for first in ("a", "b")
        ),
    ]


def _layered_site(side: str, kind: str, mode: str = IPV4_ONLY) -> tuple[Site, Carrier | None]:
    """A site for a mix kind: its home NAT, behind a carrier-grade NAT of its own when the kind says so; a
    clat site behind a NAT64 carrier whose NAT44 is the kind's NAT (as `standard_topology` builds it); a
    site that blocks UDP blocks it over IPv6 too."""
    home, cgn = split_kind(kind)
    if mode == CLAT:
        carrier: Carrier | None = Carrier(f"nat64-{side}", preset(home), nat64=True)
    else:
        carrier = None if cgn is None else Carrier(f"cgn-{side}", preset(cgn))
    fw6 = Fw6Spec(FW6_BLOCK_UDP) if home == UDP_BLOCKED and mode == DUAL else None
    behind = None if carrier is None else carrier.name
    return Site(f"nat-{side}", preset(home), (side,), behind=behind, ipv6=mode, fw6=fw6), carrier


def mix_pairing(kind_a: str, kind_b: str, turn: Turn = UDP, **options: Any) -> Scenario:
    """A scenario for one cell of a mix: each side an endpoint (netsim.suite.mixes.endpoint), a kind that
    may be CGN-layered (HOME+cgn-CGN) or udp-blocked, with an IP mode (KIND@MODE) when not IPv4-only.

    The group is the one the estimate reads the cell from: firewall when a side blocks UDP (TURN then goes
    over TCP 443), double-nat when a side is behind a CGN, else the matrix; GROUP-ipv6 when a side has IPv6.
    """
    (kind_a, mode_a), (kind_b, mode_b) = split_endpoint(kind_a), split_endpoint(kind_b)
    sides = (("a", kind_a, mode_a), ("b", kind_b, mode_b))
    sites, carriers = zip(*(_layered_site(*side) for side in sides), strict=True)
    topo = Topology("mix", sites=tuple(sites), carriers=tuple(c for c in carriers if c is not None))
    if UDP_BLOCKED in (kind_a, kind_b):
        group, turn = "firewall", TCP if turn == UDP else turn
    elif any(c is not None and not c.nat64 for c in carriers):
        group = "double-nat"
    else:
        group = matrix_group(turn, options.get("peer_a", AIORTC), options.get("peer_b", AIORTC))
    tail = ""
    if (mode_a, mode_b) != (IPV4_ONLY, IPV4_ONLY):
        group, tail = f"{group}{IPV6_GROUP_SUFFIX}", f"__{mode_a}__{mode_b}"
    opts = default_options(topo, turn=turn, **options)
    return Scenario(f"{group}/{kind_a}__{kind_b}{tail}", group, topo, kind_a, kind_b, opts)


def catalog(directory: Path) -> list[Scenario]:
    """Every scenario of the suite, in a stable order (their ids are pytest ids); `directory` holds the
    scenario files.

    The slow firewall and browser scenarios come first so that pytest-xdist workers finish together.
    """
    return [
        *firewall(),
        *browser_matrices(),
        *firefox_matrices(),
        *pion_matrices(),
        *matrix(UDP),
        *matrix(NO_TURN),
        *file_scenarios(directory),
        *policy_and_glare(),
    ]


def mix_cells(mix_a: Mix, mix_b: Mix | None = None, turn: Turn = UDP, **options: Any) -> list[Scenario]:
    """Exactly the cells an estimate for this mix needs (netsim matrix --mix)."""
    from netsim.suite.mixes import cells_to_run

    return [mix_pairing(a, b, turn=turn, **options) for a, b in cells_to_run(mix_a, mix_b)]


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


def population(
    size: int,
    mix: dict[str, float],
    seed: int,
    turn: Turn = UDP,
    mix_b: dict[str, float] | None = None,
    names: tuple[str | None, str | None] = (None, None),
    peer_a: PeerName = AIORTC,
    peer_b: PeerName = AIORTC,
) -> list[Scenario]:
    """`size` pairings whose two NAT kinds are drawn independently from `mix` (kind -> weight; the callee's
    from `mix_b` when given), with `peers` as the stacks of a and b. Kinds are those of mix files: the
    matrix kinds, udp-blocked, HOME+cgn-CGN."""
    for kind, weight in [*mix.items(), *(mix_b or {}).items()]:
        try:
            split_kind(kind)
        except ValueError as e:
            raise MixError(
                f"--mix: {e} (choose from {', '.join(NAT_KINDS)}, {UDP_BLOCKED} or HOME+cgn-CGN)"
            ) from None
        if weight < 0:
            raise MixError(f"--mix: negative weight for {kind!r}: {weight}")
    if sum(mix.values()) <= 0 or (mix_b is not None and sum(mix_b.values()) <= 0):
        raise MixError("--mix: the weights must add up to a positive number")
    if size < 1:
        raise MixError(f"--size: needs at least one session, got {size}")
    rng = random.Random(seed)
    callee = mix_b or mix
    out = []
    for i in range(size):
        a = rng.choices(list(mix), list(mix.values()))[0]
        b = rng.choices(list(callee), list(callee.values()))[0]
        cell = mix_pairing(a, b, turn=turn, peer_a=peer_a, peer_b=peer_b)
        scn = dataclasses.replace(cell, id=f"{POPULATION}/{i:04d}__{a}__{b}", group=POPULATION)
        draw: PopulationDraw = {"seed": seed, "mix": dict(mix), "size": size, "index": i}
        if mix_b is not None:
            draw["mix_b"] = dict(mix_b)
        if names[0]:  # where the weights came from (a file, a shipped mix, a blend of them)
            draw["mix_name"] = names[0]
        if names[1]:
            draw["mix_b_name"] = names[1]
        out.append(dataclasses.replace(scn, draw=draw))
    return out
