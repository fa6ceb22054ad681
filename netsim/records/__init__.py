"""The result record types: what one session leaves in reports/<run-id>/results.jsonl, and summary.json.

This package is the authority for record fields (docs/DESIGN.md points here). Who writes what:

- `netsim.session.run.run_session` builds a `ResultRecord` with every key not marked `NotRequired`, and
  `netsim.session.verdict.peer_record` builds each `PeerRecord` from a peer's raw record.
- the suite (`netsim.suite.runner.run_one`) adds the `NotRequired` keys: run id, scenario, group, repeat,
  expectation, pass/mismatch and pcap. A record of `netsim pair` has none of them.

A peer that crashed or was killed leaves only a state and a reason, so its `PeerRecord` has every key with
null values (`None` below). Readers (the store, the tables, the report) still use `.get()`: records on disk
are not validated and may come from an older netsim, so a missing key must never crash a report.
"""

from netsim.records.call import (
    CallClosed,
    CallEvent,
    CallOutcome,
    CallRecord,
    CallRestart,
    CallSide,
    CallState,
    Keepalive,
    PairChange,
)
from netsim.records.experiment import (
    CarrierTable,
    Experiment,
    PopulationDraw,
    RulesFile,
    SiteTable,
    TopologyTable,
)
from netsim.records.outcome import (
    OLD_VIOLATED,
    OUTCOMES,
    SCHEMA_VERSION,
    Attempt,
    LoadJudgement,
    Outcome,
)
from netsim.records.peer import (
    TIMING_KEYS,
    BrowserInfo,
    Candidates,
    CandidateType,
    ChromiumSettings,
    EchoCounts,
    IceRole,
    MediaTracks,
    Negotiation,
    PairFields,
    ParsedCandidate,
    PeerLaunch,
    PeerRecord,
    PeerState,
    SelectedPair,
    StateNote,
    Timings,
    TurnTransport,
)
from netsim.records.run import MergedInput, RunInfo
from netsim.records.session import (
    Expected,
    Families,
    LabUse,
    LaunchFigures,
    NeedsRelayRun,
    ResultRecord,
    Shares,
    Summary,
    Versions,
    Violation,
)

__all__ = [
    "LabUse",
    "Attempt",
    "Families",
    "LoadJudgement",
    "OLD_VIOLATED",
    "BrowserInfo",
    "ChromiumSettings",
    "CallClosed",
    "CallEvent",
    "CallOutcome",
    "CallRecord",
    "CallRestart",
    "CallSide",
    "CallState",
    "CandidateType",
    "Candidates",
    "CarrierTable",
    "EchoCounts",
    "Expected",
    "Experiment",
    "IceRole",
    "Keepalive",
    "LaunchFigures",
    "MediaTracks",
    "MergedInput",
    "NeedsRelayRun",
    "Negotiation",
    "OUTCOMES",
    "Outcome",
    "PairChange",
    "PairFields",
    "ParsedCandidate",
    "PeerLaunch",
    "PeerRecord",
    "PeerState",
    "PopulationDraw",
    "ResultRecord",
    "RulesFile",
    "RunInfo",
    "SCHEMA_VERSION",
    "SelectedPair",
    "Shares",
    "SiteTable",
    "StateNote",
    "Summary",
    "TIMING_KEYS",
    "Timings",
    "TopologyTable",
    "TurnTransport",
    "Versions",
    "Violation",
]
