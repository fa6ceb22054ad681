"""netsim.suite.keep: which cells a worker's kept lab serves, and that a cell after a bad one, a cell with
events or a capture, and a retry get labs (and browsers) of their own."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from netsim.lab.events import Event
from netsim.records import ResultRecord
from netsim.suite.catalog import firewall, matrix, mix_pairing, pairing
from netsim.suite.expectations import load_expectations
from netsim.suite.keep import clean, keepable, shape
from netsim.vocab import CHROMIUM, FAILED, INCONCLUSIVE, NO_TURN, PASSED, UDP, VIOLATED

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
TABLE = load_expectations(SCENARIOS / "expected.toml")
FC, PRC, SYM = "full-cone", "port-restricted-cone", "symmetric"


def test_cells_of_one_shape_share_a_lab_and_the_rest_get_their_own() -> None:
    cells = {s.id: s for s in matrix(UDP)}
    a, b = cells[f"matrix-turn/{FC}__{SYM}"], firewall()[0]  # udp-blocked and port-restricted: same lab
    assert shape(a) == shape(b) != ""
    assert shape(cells[f"matrix-turn/open__{SYM}"]) not in ("", shape(a))  # a public LAN: another lab
    layered = mix_pairing(f"{FC}+cgn-{SYM}", FC)
    assert not keepable(layered) and shape(layered) == ""  # carriers: a lab per cell
    held = pairing("x/ev", "x", FC, FC, hold_s=5.0, events=(Event(at_s=1.0, action="flush", node="nat-a"),))
    assert not keepable(held) and shape(held) == ""
    assert keepable(a) and not keepable(a, own=True)  # a capture


def _record(**fields: Any) -> ResultRecord:
    return dict({"verdict": "direct", "outcome": PASSED, "infrastructure": None}, **fields)  # type: ignore[return-value]


def test_only_a_clean_cell_leaves_its_lab_for_the_next() -> None:
    assert clean(_record())
    assert clean(_record(verdict="relay"))
    assert not clean(_record(verdict=FAILED))
    assert not clean(_record(outcome=VIOLATED))
    assert not clean(_record(outcome=INCONCLUSIVE))
    assert not clean(_record(load={INCONCLUSIVE: True}))
    assert not clean(_record(infrastructure="coturn"))


def _run(scn: Any, keeper: Any) -> ResultRecord:
    from netsim.suite.runner import run_one

    record, problem = run_one(scn, keeper.launcher, TABLE, None, keeper=keeper, retries=0)
    assert problem is None, problem
    return record


@pytest.mark.root
@pytest.mark.alone  # retries=0 (a retry gets a fresh lab): other tests' load made a cell inconclusive in CI
def test_a_worker_keeps_its_lab_until_a_cell_fails(no_leftovers: None) -> None:
    from netsim.peers.launcher import Launcher
    from netsim.suite.keep import Keeper

    turn = {s.id: s for s in matrix(UDP)}
    noturn = {s.id: s for s in matrix(NO_TURN)}
    with Launcher() as launcher, Keeper(launcher) as keeper:
        first = _run(turn[f"matrix-turn/{FC}__{FC}"], keeper)
        assert first["lab_use"] == {"kept": False, "cells": 1, "reset_s": None}
        lab = keeper.lab
        second = _run(turn[f"matrix-turn/{PRC}__{SYM}"], keeper)
        assert second["lab_use"]["kept"] and second["lab_use"]["cells"] == 2
        assert (second["nat_a"], second["nat_b"], second["needs_relay"]) == (PRC, SYM, True)
        assert keeper.lab is lab
        # A cell with events gets a lab of its own; the kept one waits for the next cell.
        event = Event(at_s=0.5, action="flush", node="nat-a")
        held = dataclasses.replace(
            turn[f"matrix-turn/{FC}__{FC}"],
            id="x/held",
            options=turn[f"matrix-turn/{FC}__{FC}"].options.replace(hold_s=2.0, events=(event,)),
        )
        from netsim.suite.runner import run_one

        own, _ = run_one(held, launcher, {}, None, strict=False, keeper=keeper, retries=0)
        assert own["lab_use"] == {"kept": False, "cells": 1, "reset_s": None}
        third = _run(turn[f"matrix-turn/{SYM}__{FC}"], keeper)
        assert third["lab_use"]["kept"] and third["lab_use"]["cells"] == 3 and keeper.lab is lab
        # A failed cell (as expected: symmetric on both sides without TURN) spoils the lab for the next.
        failed = _run(noturn[f"matrix-noturn/{SYM}__{SYM}"], keeper)
        assert failed["verdict"] == FAILED and failed["lab_use"]["cells"] == 4
        after = _run(turn[f"matrix-turn/{FC}__{PRC}"], keeper)
        assert after["lab_use"] == {"kept": False, "cells": 1, "reset_s": None}
        assert keeper.lab is not lab and keeper.lab is not None
    assert keeper.lab is None


@pytest.mark.root
def test_kept_browsers_serve_the_next_cells_and_a_dead_one_is_replaced(
    require_chromium: str, no_leftovers: None
) -> None:
    from netsim.peers.launcher import Launcher
    from netsim.suite.keep import Keeper

    cells = {s.id: s for s in matrix(UDP, peer_a=CHROMIUM, peer_b=CHROMIUM)}
    group = "matrix-turn-chromium"
    with Launcher() as launcher, Keeper(launcher) as keeper:
        pool = launcher.adapter(CHROMIUM).pool  # type: ignore[attr-defined]
        first = _run(cells[f"{group}/{FC}__{PRC}"], keeper)
        second = _run(cells[f"{group}/{PRC}__{FC}"], keeper)
        assert second["lab_use"]["kept"] and pool.started == 2 and pool.alive() == 2
        assert [second[s]["launch"]["pid"] for s in "ab"] == [first[s]["launch"]["pid"] for s in "ab"]
        dead = first["a"]["launch"]["pid"]
        os.kill(dead, signal.SIGKILL)
        third = _run(cells[f"{group}/{SYM}__{FC}"], keeper)
        assert third["lab_use"]["kept"] and pool.started == 3
        assert (
            third["a"]["launch"]["pid"] != dead and third["b"]["launch"]["pid"] == first["b"]["launch"]["pid"]
        )
    assert pool.alive() == 0


def _matrix_twice(tmp_path: Path, peer: str) -> tuple[Path, Path, list[ResultRecord]]:
    """The 25-cell matrix with TURN, once in fresh labs and once in kept ones (two workers each)."""
    from netsim.results.store import load_records
    from netsim.suite.runner import run_many

    cells = matrix(UDP, peer_a=peer, peer_b=peer)  # type: ignore[arg-type]
    runs = tmp_path / "fresh", tmp_path / "kept"
    for directory, keep in zip(runs, (False, True), strict=True):
        directory.mkdir()
        run_many(cells, 1, TABLE, directory, jobs=2, keep=keep)
    kept = load_records(runs[1])
    assert all(not r["lab_use"]["kept"] for r in load_records(runs[0]))
    # A cell after an inconclusive attempt (load) gets a fresh lab: under load fewer are kept.
    assert sum(r["lab_use"]["kept"] for r in kept) >= 5, [r["lab_use"] for r in kept]
    return runs[0], runs[1], kept


def _compare(fresh: Path, kept: Path, aspects: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "netsim", "compare", str(fresh), str(kept), "--fail-on", aspects]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


@pytest.mark.root
@pytest.mark.alone  # a verdict flipped by other tests' load (a late srflx check) is not reuse's doing
def test_kept_labs_change_no_aiortc_cell(tmp_path: Path, no_leftovers: None) -> None:
    """Reuse changes nothing: `netsim compare` finds no change in needs_relay or connect."""
    fresh, kept, _ = _matrix_twice(tmp_path, "aiortc")
    out = _compare(fresh, kept, "needs_relay,connect")
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.root
@pytest.mark.alone
def test_kept_labs_and_browsers_change_no_chromium_cell(
    tmp_path: Path, require_chromium: str, no_leftovers: None
) -> None:
    """... nor, for Chromium, in the verdict or needs_relay, with browsers kept across cells."""
    fresh, kept, records = _matrix_twice(tmp_path, CHROMIUM)
    out = _compare(fresh, kept, "verdict,needs_relay")
    assert out.returncode == 0, out.stdout + out.stderr
    pids = {r[side]["launch"]["pid"] for r in records for side in "ab"}  # type: ignore[index]
    assert len(pids) <= len(records), f"{len(pids)} browsers for {len(records)} cells: none was kept"


@pytest.mark.root
def test_a_retry_gets_a_fresh_lab_that_is_kept_and_a_capture_one_of_its_own(no_leftovers: None) -> None:
    from netsim.peers.launcher import Launcher
    from netsim.suite.keep import Keeper

    cells = {s.id: s for s in matrix(UDP)}
    a, b = cells[f"matrix-turn/{FC}__{SYM}"], cells[f"matrix-turn/{PRC}__{FC}"]
    with Launcher() as launcher, Keeper(launcher) as keeper:
        with keeper.lab_for(a) as (first, use):
            assert not use["kept"]
        with keeper.lab_for(b) as (lab, use):
            assert lab is first and use["kept"] and use["cells"] == 2
            assert lab.topology is b.topology
        with keeper.lab_for(b, fresh=True) as (retry, use):
            assert retry is not first and use == {"kept": False, "cells": 1, "reset_s": None}
        assert keeper.lab is retry  # kept for the next cells
        with keeper.lab_for(a, own=True) as (capture, use):
            assert capture is not retry and not use["kept"]
        assert keeper.lab is retry and keeper.cells == 1
