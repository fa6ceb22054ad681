"""The scenario suite: every pairing in its own fresh lab, asserted against scenarios/expected.toml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from netsim import results, suite
from netsim.lab import Lab

CATALOG = suite.catalog()


@pytest.mark.parametrize("scn", CATALOG, ids=[s.id for s in CATALOG])
def test_scenario(
    scn: suite.Scenario,
    repeat: int,
    launcher: Any,
    run_dir: Path,
    expectations: dict[str, Any],
    pytestconfig: pytest.Config,
) -> None:
    from netsim import session

    expected = suite.expectation(scn, expectations)
    with Lab(scn.topology) as lab:
        lab.start_signaling()
        record = session.run_session(lab, launcher=launcher, **scn.session_options())
    problem = suite.mismatch(record, expected)
    record.update(
        run_id=pytestconfig.netsim_run_id,  # type: ignore[attr-defined]
        scenario=scn.id,
        group=scn.group,
        nat_a=scn.nat_a,
        nat_b=scn.nat_b,
        repeat=repeat,
        expected={"needs_relay": expected.needs_relay, "connect": expected.connect, "verdict": expected.verdict},
        passed=problem is None,
        mismatch=problem,
    )
    results.append_record(run_dir, record)
    assert problem is None, f"{scn.id}:\n{problem}"
