"""The result record types: what one session leaves in reports/<run-id>/results.jsonl, and summary.json.

This module is the authority for record fields (docs/DESIGN.md points here). Who writes what:

- `netsim.session.run.run_session` builds a `ResultRecord` with every key not marked `NotRequired`, and
  `netsim.session.verdict.peer_record` builds each `PeerRecord` from a peer's raw record.
- the suite (`netsim.suite.runner.run_one`) adds the `NotRequired` keys: run id, scenario, group, repeat,
  expectation, pass/mismatch and pcap. A record of `netsim pair` has none of them.

A peer that crashed or was killed leaves only a state and a reason, so its `PeerRecord` has every key with
null values (`None` below). Readers (the store, the tables, the report) still use `.get()`: records on disk
are not validated and may come from an older netsim, so a missing key must never crash a report.
"""

# No `from __future__ import annotations` here: TypedDict needs real annotations at runtime to tell
# NotRequired keys (__optional_keys__) on Python 3.11.
from typing import Any, Final, Literal, NotRequired, TypedDict

from netsim.vocab import Policy, RelaySide, Side, Stack, Turn, Verdict

CandidateType = Literal["host", "srflx", "prflx", "relay"]  # vocab.CANDIDATE_TYPES
TurnTransport = Literal["udp", "tcp", "tls"]  # vocab.TURN_TRANSPORTS
IceRole = Literal["controlling", "controlled"]
PeerState = Literal["connected", "failed"]

# 2: outcome (passed/failed/unchecked), experiment, schema_version. 1: the records before (no version key).
SCHEMA_VERSION: Final = 2
Outcome = Literal["passed", "failed", "unchecked"]
OUTCOMES: Final = ("passed", "failed", "unchecked")

TIMING_KEYS: Final = ("gathering_s", "ice_completed_s", "channel_open_s", "first_echo_s", "rtt_ms")


class Timings(TypedDict):
    """Seconds from the winning offer's creation (rtt in ms); null when a milestone was not reached.

    Session timings count a milestone when both peers reached it and take the slower gathering and the
    lower rtt; a peer's own timings are its view alone.
    """

    gathering_s: float | None
    ice_completed_s: float | None
    channel_open_s: float | None
    first_echo_s: float | None
    rtt_ms: float | None


class StateNote(TypedDict):
    """One state change a peer saw, `t` seconds after its launch was requested."""

    t: float
    what: str  # "signaling", "gathering", "ice", "dtls", "datachannel", ...
    state: str  # that machine's new state, e.g. "checking"


class Candidates(TypedDict):
    """SDP candidate lines (`candidate:... typ host ...`) as sent and as received."""

    local: list[str]
    remote: list[str]


class Negotiation(TypedDict):
    """Perfect-negotiation counters of one peer; `offerer`: its offer is the one the session used."""

    offers_sent: int
    ignored_offers: int
    rollbacks: int
    stale_answers: int
    offerer: bool


class EchoCounts(TypedDict):
    """Echo data channel pings sent and pongs received."""

    sent: int
    received: int


class MediaTracks(TypedDict):
    """Track kinds ("audio", "video") sent and received (`netsim pair --media`)."""

    sent: list[str]
    received: list[str]


class PeerLaunch(TypedDict):
    """How the peer started: request to ready latency, pid, namespace inode (a browser also: when it had
    signed in at the signaling server and how long its start took)."""

    ready_ms: float
    pid: int | None
    netns_inode: int | None
    signed_in_ms: NotRequired[float | None]
    spawn_to_signed_in_ms: NotRequired[float | None]
    browser_ready_s: NotRequired[float | None]


class SelectedPair(TypedDict):
    """A selected candidate pair as one side saw it; `t` in seconds from the winning offer."""

    t: float | None
    local_type: CandidateType | None
    remote_type: CandidateType | None
    local: str | None
    remote: str | None
    role: IceRole | None
    turn_transport: TurnTransport | None


class BrowserInfo(TypedDict):
    """A Chromium peer's browser: version, the exact launch flags, whether host candidates were mDNS names."""

    version: str | None
    flags: list[str]
    mdns: bool


class PeerRecord(TypedDict):
    """One peer's view of the session (`a` and `b` in a `ResultRecord`)."""

    local_type: CandidateType | None  # the selected pair; null when none was selected
    remote_type: CandidateType | None
    local: str | None  # "10.1.0.2:41000"
    remote: str | None
    role: IceRole | None
    polite: bool | None
    turn_transport: TurnTransport | None  # set when the local candidate is a relay
    state: PeerState
    ice_urls: list[str] | None  # the STUN/TURN URLs it was given (never credentials)
    candidates: Candidates
    states: list[StateNote]
    timings: Timings
    negotiation: Negotiation | None
    media: MediaTracks | None
    echo: EchoCounts | None
    launch: PeerLaunch | None
    reason: str | None  # why it failed
    peer: Stack  # the WebRTC stack of this side
    pairs: list[SelectedPair]  # every change of the selected pair (Chromium may switch after connecting)
    first: SelectedPair | None  # the pair at connect
    settled: SelectedPair | None  # the pair once echoes flowed both ways and it stayed for settle_s
    hide_host: bool | None  # host candidates withheld (aiortc) or mDNS names (Chromium)
    browser: BrowserInfo | None


class NeedsRelayRun(TypedDict):
    """The relay-less second run (STUN only) that decided `needs_relay`."""

    verdict: Verdict
    connect_s: float | None
    reason: str | None


class LaunchFigures(TypedDict):
    """Peer-ready latencies of both peers (ms) and process start to first echo (s, the slower peer)."""

    ready_ms: list[float]
    start_to_first_echo_s: float | None


class Versions(TypedDict):
    """Versions of the software under test; null when not installed or not telling."""

    aiortc: str | None
    aioice: str | None
    coturn: str | None
    kernel: str
    python: str
    chromium: NotRequired[str]  # when a side was Chromium: its version ...
    chromium_flags: NotRequired[list[str]]  # ... and the exact flags it was launched with


class Expected(TypedDict):
    """The expectation a session was checked against; needs_relay/verdict null: that part not checked."""

    needs_relay: bool | None
    connect: bool
    verdict: Verdict | None
    source: NotRequired[str]  # where it came from: a scenario file's [expect], expected.toml's matrix, ...
    call: NotRequired[str]  # a held call's expected outcome: held, dropped or recovered


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


class CarrierTable(TypedDict):
    name: str
    nat: dict[str, Any]


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


CallOutcome = Literal["held", "dropped", "recovered"]


class CallState(TypedDict):
    """An ICE (`ice`), connection (`pc`) or restart state change, seconds from the winning offer."""

    t: float | None
    what: str
    state: str


class CallClosed(TypedDict):
    """The connection failed or closed while the call was held, and why, as the stack said it."""

    t: float | None
    reason: str | None


class CallRestart(TypedDict):
    """An ICE restart (Chromium): when it was called, why, and when the connection was back (null: never)."""

    t: float | None
    reason: str
    connected: float | None


class CallSide(TypedDict):
    """One side of a held call. `echoes`: [sent, answered] per echo (answered null: lost), from the offer."""

    stack: Stack
    sent: int
    answered: int
    echoes: list[list[float | None]]
    outcome: CallOutcome | None
    first_lost_s: float | None
    back_s: float | None  # the answer of the first echo answered after the first outage
    recovery_s: float | None
    states: list[CallState]
    closed: CallClosed | None
    restart: Literal["unsupported", "supported", "unsupported by the remote"] | None
    restarts: list[CallRestart]


class CallEvent(TypedDict):
    """A network event (netsim.lab.events) as applied: planned `at_s` after connect, actual `t` from the
    offer (null: not applied), the action's arguments, what it did, and an error if it failed."""

    at_s: float
    action: str  # flush, down, up (the end of a down), nat, move, turn-restart
    t: float | None
    detail: dict[str, Any] | None
    error: str | None
    node: NotRequired[str]
    seconds: NotRequired[float]
    kind: NotRequired[str]
    host: NotRequired[str]
    site: NotRequired[str]


class PairChange(SelectedPair):
    """A selected-pair change during a held call, and whose it was."""

    side: Side


class Keepalive(TypedDict):
    """Outbound STUN binding requests (consent checks, keepalives) at a host's NAT router while held."""

    router: str
    interval_s: float | None  # median gap in the busiest flow; null with fewer than 2 (e.g. relayed)
    requests: int
    flow: str | None


class CallRecord(TypedDict):
    """A held call (`hold_s` > 0): echoes both ways, events, the pair changes and the outcome; times in
    seconds from the winning offer. Outcome: held (no more than one echo lost in a row), recovered
    (an outage, then echoes answered again; recovery_s from the first lost echo's send to that answer),
    dropped (echoes stopped and never came back before the hold ended, or the connection failed or closed
    for good); null when the call never connected."""

    hold_s: float
    interval_s: float
    outcome: CallOutcome | None
    recovery_s: float | None
    first_lost_s: float | None
    back_s: float | None
    connected_s: float | None  # both peers connected: the origin of the events' at_s
    events: list[CallEvent]
    pair_changes: list[PairChange]  # both sides' pairs timelines in one list, each with its `side`
    keepalive: dict[str, Keepalive] | None  # by side
    a: CallSide
    b: CallSide


class ResultRecord(TypedDict):
    """One session: one line of results.jsonl."""

    # --- added by the suite ---
    run_id: NotRequired[str]  # the run directory's name, e.g. "20261129-043500-ab12"
    scenario: NotRequired[str]  # unique per pairing, e.g. "matrix-turn/full-cone__symmetric"
    group: NotRequired[str]  # matrix-turn, matrix-noturn, firewall, lan, hairpin, double-nat, ...
    repeat: NotRequired[int]  # 0-based repeat of the scenario
    expected: NotRequired[Expected | None]  # null: no expectation, the outcome is unchecked
    outcome: NotRequired[Outcome]
    passed: NotRequired[bool | None]  # null when unchecked
    experiment: NotRequired[Experiment]
    mismatch: NotRequired[str | None]  # expectation and outcome side by side
    pcap: NotRequired[str | None]  # capture file, relative to the run directory
    # --- the session ---
    schema_version: int  # SCHEMA_VERSION of the netsim that wrote it
    nat_a: str | None  # NAT kind in front of each host; null when the topology does not say
    nat_b: str | None
    turn: Turn
    policy: Policy
    glare: bool
    verdict: Verdict  # the settled verdict
    relay_side: RelaySide | None  # whose path goes through the relay, when the verdict is relay
    first_verdict: Verdict  # the verdict of the pairs at connect
    disagreement: str | None  # where the two sides' final pairs say different things
    settled_s: float | None  # when the later side's pair last changed, seconds from the offer
    needs_relay: bool | None  # "won" is not "needed"; null: not determined
    needs_relay_run: NeedsRelayRun | None  # null when the main run already answered
    reason: str | None  # why a failed session failed
    connect_s: float | None  # offer to data channel open (timings.channel_open_s)
    timings: Timings
    a: PeerRecord
    b: PeerRecord
    launch: LaunchFigures
    versions: Versions
    coturn_log: str | None  # what coturn logged during the session (its tail)
    started_at: str  # UTC, "2026-11-29T04:35:00Z"
    call: NotRequired[CallRecord]  # only for a held call (hold_s > 0)


class Shares(TypedDict):
    """Sessions and shares (0..1, 4 decimals); a share is null when nothing is known to divide by."""

    sessions: int
    relay_needed_share: float | None  # of the sessions whose needs_relay is known
    relay_needed_unknown: int  # sessions whose needs_relay is unknown (shown beside the share, never hidden)
    relay_won_share: float | None  # of all sessions


class Summary(TypedDict):
    """summary.json: the whole run, and per NAT kind (a session counts for both of its kinds, once if
    both sides share the kind)."""

    run_id: str | None
    sessions: int
    passed: int
    failed: int  # violated an expectation
    unchecked: int  # had no expectation
    relay_needed_share: float | None
    relay_needed_unknown: int
    relay_won_share: float | None
    per_nat: dict[str, Shares]
