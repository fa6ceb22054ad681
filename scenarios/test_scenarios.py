"""The scenario suite: every pairing in its own fresh lab, asserted against scenarios/expected.toml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from netsim import runfiles
from netsim.suite.catalog import catalog
from netsim.suite.runner import run_one
from netsim.suite.scenario import Scenario
from netsim.vocab import AIORTC, CHROMIUM, PION

CATALOG = catalog(Path(__file__).resolve().parent)


def _marks(scn: Scenario) -> list[pytest.MarkDecorator]:
    """A mark per stack in the pairing: `-m chromium` selects the browser groups, `-m pion` the Pion ones,
    `-m aiortc` the pairings of aiortc alone. `extra_stacks` (the Pion groups) are deselected unless -m is
    given (conftest.py)."""
    stacks = {scn.options.peer_a, scn.options.peer_b}
    marks = [pytest.mark.chromium] if CHROMIUM in stacks else []
    marks += [pytest.mark.pion, pytest.mark.extra_stacks] if PION in stacks else []
    return marks or ([pytest.mark.aiortc] if stacks == {AIORTC} else [])


@pytest.mark.parametrize("scn", [pytest.param(s, marks=_marks(s), id=s.id) for s in CATALOG])
def test_scenario(
    scn: Scenario,
    repeat: int,
    launcher: Any,
    run_dir: Path,
    expectations: dict[str, Any],
    pytestconfig: pytest.Config,
) -> None:
    run_id = pytestconfig.netsim_run_id  # type: ignore[attr-defined]
    pcap_dir = run_dir / "pcap" if pytestconfig.getoption("--pcap") else None
    retries = pytestconfig.getoption("--retries")
    record, problem = run_one(scn, launcher, expectations, run_id, repeat, pcap_dir=pcap_dir, retries=retries)
    runfiles.append_record(run_dir, record)
    if record.get("outcome") == "inconclusive":  # load, not the NAT: never reported as a verdict
        pytest.fail(f"{scn.id}: {problem}", pytrace=False)
    assert problem is None, f"{scn.id}:\n{problem}"
