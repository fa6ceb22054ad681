"""The experiment a record keeps (`Experiment`): everything `netsim rerun` needs, never a secret."""

# No `from __future__ import annotations` here: TypedDict needs real annotations at runtime to tell
# NotRequired keys (__optional_keys__) on Python 3.11.
from typing import Any, NotRequired, TypedDict


class RulesFile(TypedDict):
    """A researcher's nftables rules file as the session used it (the text is kept: files change)."""

    site: str  # the site or carrier whose NAT it is
    path: str
    sha256: str
    text: str


class PopulationDraw(TypedDict):
    """How a population session was drawn: rerunning the draw with seed and mix gives the same pairing."""

    seed: int
    mix: dict[str, float]
    mix_b: NotRequired[dict[str, float]]  # the callee's mix, when it differs
    mix_name: NotRequired[str]  # the mix drawn from, when it was a file, a shipped mix or a blend ...
    mix_b_name: NotRequired[str]  # ... e.g. "0.5 mobile + 0.5 residential" (its parts named)
    size: int
    index: int


class SiteTable(TypedDict):
    """A site in scenario-file form; `nat` is its NAT table with every knob spelled out."""

    name: str
    nat: dict[str, Any]
    hosts: list[str]
    behind: NotRequired[str]
    lan: NotRequired[str]
    impair: NotRequired[dict[str, Any]]
    ipv6: NotRequired[str]  # the site's IP mode when not "none" (vocab.IP_MODES)
    fw6: NotRequired[str]  # its IPv6 firewall: a preset name or a rules file's path
    ipv4_hosts: NotRequired[list[str]]  # hosts of a dual site that are IPv4-only themselves


class CarrierTable(TypedDict):
    name: str
    nat: dict[str, Any]
    nat64: NotRequired[bool]  # a NAT64 carrier (its NAT is the NAT44 of its pool)


class TopologyTable(TypedDict):
    """A topology in scenario-file form: netsim.lab.topology.from_dict reads it back."""

    name: str
    ipv6: bool
    site: list[SiteTable]
    carrier: NotRequired[list[CarrierTable]]
    server: list[dict[str, str]]


class Experiment(TypedDict):
    """Everything needed to run the session again (`netsim rerun`); never a secret."""

    topology: TopologyTable
    addresses: dict[str, list[str]]  # node -> its addresses in the lab
    options: dict[str, Any]  # netsim.session.options.SessionOptions, as plain values
    rules: list[RulesFile]
    scenario_file: str | None  # the scenario file it came from, as given
    scenario_text: str | None  # that file's text as read
    population: PopulationDraw | None
    # How each impaired site's loss, rate and delay were made on this machine, e.g.
    # {"nat-a": {"delay": "nfqueue", "loss": "nftables", "rate": "tbf"}} (netem where the kernel has it).
    impairments: dict[str, dict[str, str | None]]
