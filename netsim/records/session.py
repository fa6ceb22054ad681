"""One session's record (`ResultRecord`, one line of results.jsonl) and summary.json (`Summary`)."""

# No `from __future__ import annotations` here: TypedDict needs real annotations at runtime to tell
# NotRequired keys (__optional_keys__) on Python 3.11.
from typing import NotRequired, TypedDict

from netsim.records.call import CallRecord
from netsim.records.experiment import Experiment
from netsim.records.outcome import Attempt, LoadJudgement, Outcome
from netsim.records.peer import PeerRecord, Timings
from netsim.vocab import Family, Policy, RelaySide, Turn, Verdict


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
    """Versions of the software under test; null when not installed or not telling.

    Only versions live here, one key per piece of software, so that `netsim merge` can compare them key
    by key (a key a session lacks is no difference). A browser adds its version under its stack's name
    when a side ran it. How a browser was launched (its flags, with per-lab paths and pins) is a launch
    setting, kept per peer (`PeerRecord.browser.flags`); records before that also carried
    `chromium_flags` here, which readers ignore.
    """

    aiortc: str | None
    aioice: str | None
    coturn: str | None
    kernel: str
    python: str
    chromium: NotRequired[str]  # when a side was Chromium
    firefox: NotRequired[str]  # when a side was Firefox: its exact version (prefs: the side's settings)
    pion: NotRequired[str]  # when a side was Pion: pion/webrtc's version


class Expected(TypedDict):
    """The expectation a session was checked against; needs_relay/verdict null: that part not checked."""

    needs_relay: bool | None
    connect: bool
    verdict: Verdict | None
    source: NotRequired[str]  # where it came from: a scenario file's [expect], expected.toml's matrix, ...
    call: NotRequired[str]  # a held call's expected outcome: held, dropped or recovered


class Families(TypedDict):
    """The address families of a session: what each side gathered, and which family carried the call."""

    a: list[Family]  # families of a's own candidates, in vocab.FAMILIES order
    b: list[Family]
    won: Family | None  # the settled pair's family (a's view); null when the session failed
    ipv6_pair: bool  # an IPv6 pair was selected at some time, by either side


class LabUse(TypedDict):
    """The lab a suite session ran in: built for its cell, or kept from the worker's earlier cells and reset
    (netsim.suite.keep, netsim.lab.reset)."""

    kept: bool  # false: built for this cell
    cells: int  # cells the lab has served, this one included
    reset_s: float | None  # a kept lab's reset before this cell (rules, flushes, coturn); null when built


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
    lab_use: NotRequired[LabUse]  # whether the lab was fresh or kept, and the cells it served
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
    # timings.cpu_wait_s per part: a, b, relay_less_a, relay_less_b, browser_a, browser_b, coturn, signaling
    cpu_wait: NotRequired[dict[str, float] | None]
    # per part, the longest any one thread waited (what the load rule judges; records since this field)
    cpu_wait_thread: NotRequired[dict[str, float] | None]
    load: NotRequired[LoadJudgement]  # whether load made the answer inconclusive (netsim/session/load.py)
    attempts: NotRequired[list[Attempt]]  # every attempt of the session, the last being this record's
    infrastructure: NotRequired[
        str | None
    ]  # a failure caused by the lab's own parts (signaling, coturn, a browser)
    call: NotRequired[CallRecord]  # only for a held call (hold_s > 0)
    families: NotRequired[Families]  # address families gathered and used (records since dual-stack labs)


class Shares(TypedDict):
    """Sessions and shares (0..1, 4 decimals); a share is null when nothing is known to divide by."""

    sessions: int
    relay_needed_share: float | None  # of the sessions whose needs_relay is known
    relay_needed_unknown: int  # sessions whose needs_relay is unknown (shown beside the share, never hidden)
    relay_won_share: float | None  # of all sessions


class Violation(TypedDict):
    """A session whose expectation did not hold, as summary.json lists it."""

    scenario: str | None
    repeat: int | None
    mismatch: str | None  # the expectation and the outcome side by side
    reason: str | None  # why the session failed, when it did


class Summary(TypedDict):
    """summary.json: the whole run, and per NAT kind (a session counts for both of its kinds, once if
    both sides share the kind)."""

    run_id: str | None
    sessions: int
    passed: int
    violated: int  # an expectation did not hold
    unchecked: int  # had no expectation
    inconclusive: int  # load made the answer worthless; left out of every share below
    partial: NotRequired[bool]  # the run was interrupted or stopped: only the sessions that completed
    relay_needed_share: float | None
    relay_needed_unknown: int
    relay_won_share: float | None
    per_nat: dict[str, Shares]
    violations: list[Violation]  # every session counted in `violated`, in record order
