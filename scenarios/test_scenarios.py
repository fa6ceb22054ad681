"""The scenario suite: every pairing in its worker's kept lab or a fresh one (netsim.suite.keep), asserted
against scenarios/expected.toml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from netsim import runfiles
from netsim.suite.catalog import catalog
from netsim.suite.runner import run_one
from netsim.suite.scenario import Scenario
from netsim.vocab import AIORTC, CHROMIUM, FIREFOX, PION

CATALOG = catalog(Path(__file__).resolve().parent)


def _marks(scn: Scenario) -> list[pytest.MarkDecorator]:
    """A mark per stack in the pairing: `-m chromium` selects the Chromium groups of aiortc and Chromium,
    `-m firefox` and `-m pion` the groups of those stacks (with any other stack), `-m aiortc` the pairings
    of aiortc alone. Firefox's and Pion's groups are also `extra_stacks`, deselected unless -m is given
    (conftest.py)."""
    stacks = {scn.options.peer_a, scn.options.peer_b}
    extra = [getattr(pytest.mark, s) for s in (FIREFOX, PION) if s in stacks]
    if extra:
        return [*extra, pytest.mark.extra_stacks]
    if CHROMIUM in stacks:
        return [pytest.mark.chromium]
    return [pytest.mark.aiortc] if stacks == {AIORTC} else []


@pytest.mark.parametrize("scn", [pytest.param(s, marks=_marks(s), id=s.id) for s in CATALOG])
def test_scenario(
    scn: Scenario,
    repeat: int,
    launcher: Any,
    keeper: Any,
    run_dir: Path,
    expectations: dict[str, Any],
    pytestconfig: pytest.Config,
) -> None:
    run_id = pytestconfig.netsim_run_id  # type: ignore[attr-defined]
    pcap_dir = run_dir / "pcap" if pytestconfig.getoption("--pcap") else None
    retries = pytestconfig.getoption("--retries")
    record, problem = run_one(
        scn, launcher, expectations, run_id, repeat, pcap_dir=pcap_dir, retries=retries, keeper=keeper
    )
    runfiles.append_record(run_dir, record)
    if record.get("outcome") == "inconclusive":  # load, not the NAT: never reported as a verdict
        pytest.fail(f"{scn.id}: {problem}", pytrace=False)
    assert problem is None, f"{scn.id}:\n{problem}"
