"""The session a record describes, made ready to run again (`netsim rerun`), from a run that may be
someone else's: the record is data, never an instruction to this machine.

The record comes through the one reader (types, sizes, a topology of at most reader.MAX_SITES sites).
Refused before anything is written or any lab is built, in one line naming the field: an `exec:` peer
(a command of the record's own: rerun runs only the stacks netsim knows), an option netsim does not know,
and rules files that are not the record's kept text (netsim.suite.experiment writes each kept text inside
the new run directory; a `rules_file` the record only names is never read from this machine).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from netsim.errors import printable
from netsim.records import ResultRecord
from netsim.results import store
from netsim.session.options import option_names
from netsim.suite.expectations import from_entry
from netsim.suite.experiment import RerunError, scenario_from_record
from netsim.suite.scenario import Scenario
from netsim.vocab import EXEC_PREFIX

RERUN_SCHEMA = 2  # the first schema whose records keep their experiment


def pick(run_dir: Path, scenario: str, repeat: int | None) -> ResultRecord:
    """The record of `scenario` (its first, or that repeat's) among the run's readable records."""
    records = store.load_run(run_dir, need=RERUN_SCHEMA)
    mine = [r for r in records if r.get("scenario") == scenario]
    if repeat is not None:
        mine = [r for r in mine if r.get("repeat") == repeat]
    if not mine:
        known = sorted({str(r.get("scenario")) for r in records})
        more = ", ..." if len(known) > 8 else ""
        raise RerunError(f"{run_dir}: no session {scenario!r} (sessions: {', '.join(known[:8])}{more})")
    return mine[0]


def _check_options(record: ResultRecord) -> None:
    experiment: Any = record.get("experiment") or {}
    options = experiment.get("options")
    if not isinstance(options, dict):
        return  # scenario_from_record names what is missing
    unknown = sorted(set(options) - set(option_names()))
    if unknown:
        raise RerunError(f"experiment.options.{unknown[0]}: not an option this netsim knows")
    for side in ("peer_a", "peer_b"):
        peer = options.get(side)
        if isinstance(peer, str) and peer.startswith(EXEC_PREFIX):
            raise RerunError(
                f"experiment.options.{side}: {peer!r} would run a command the record names; rerun runs "
                "only the stacks netsim knows (put your own program in a scenario file instead)"
            )


def scenario_to_rerun(run_dir: Path, scenario: str, repeat: int | None, rules_dir: Path) -> Scenario:
    """The scenario of a record with exactly its expectation (or none); the record's rules texts are
    written into rules_dir, nothing anywhere else. RerunError (exit 2) names what cannot be rerun."""
    record = pick(run_dir, scenario, repeat)
    _check_options(record)
    scn = scenario_from_record(dict(record), rules_dir=rules_dir)
    # Its names are printed as the session runs: shown escaped, never as a terminal's instructions.
    scn = dataclasses.replace(
        scn,
        id=printable(scn.id),
        group=printable(scn.group),
        nat_a=printable(scn.nat_a),
        nat_b=printable(scn.nat_b),
    )
    expected = record.get("expected")
    if expected:
        entry = {k: v for k, v in expected.items() if k in ("needs_relay", "connect", "verdict")}
        scn = dataclasses.replace(scn, expect=from_entry(entry, f"{run_dir}: {scenario}: expected"))
    return scn
