"""netsim.suite.shard: deterministic, duration-balanced shards of a pytest run (the plugin in real pytest)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from netsim.suite import shard
from netsim.suite.shard import (
    LongestFirstScheduling,
    ShardError,
    assign,
    costs,
    duration_key,
    first_deal,
    load_durations,
    longest_first,
    param_id,
    parse_shard,
    store_durations,
)

TESTS = """
import pytest

@pytest.mark.parametrize("n", range(10))
def test_n(n):
    pass
"""


def test_parse_shard() -> None:
    assert parse_shard("1/1") == (1, 1) and parse_shard("3/4") == (3, 4)
    for bad in ("3/2", "0/2", "1/0", "2", "a/b", "1/2/3"):
        with pytest.raises(ShardError, match="--shard"):
            parse_shard(bad)


def test_repeat_prefix_is_not_part_of_the_key() -> None:
    base = "scenarios/test_scenarios.py::test_scenario[matrix-turn/open__open]"
    for nodeid in (base, base.replace("[", "[-"), base.replace("[", "[r12-")):
        assert duration_key(nodeid) == base


def test_every_test_in_exactly_one_shard_and_balanced() -> None:
    ids = [f"t[{i}]" for i in range(40)]
    durations = {f"t[{i}]": float(1 + i % 7) for i in range(40)}
    owners = assign(ids, 4, durations)
    assert sorted(set(owners)) == [0, 1, 2, 3]
    loads = [sum(durations[i] for i, o in zip(ids, owners, strict=True) if o == s) for s in range(4)]
    assert max(loads) - min(loads) <= 7  # never worse than the longest single test
    assert assign(list(reversed(ids)), 4, durations) == list(
        reversed(owners)
    )  # order of collection is irrelevant


def test_the_longest_tests_go_to_different_shards() -> None:
    ids = ["slow1", "slow2", "a", "b", "c", "d"]
    owners = assign(ids, 2, {"slow1": 10, "slow2": 10, "a": 1, "b": 1, "c": 1, "d": 1})
    assert owners[0] != owners[1] and owners.count(0) == owners.count(1) == 3


def test_unknown_tests_cost_the_mean() -> None:
    owners = assign(["known", "new1", "new2", "short"], 2, {"known": 4.0, "short": 2.0})
    assert owners == [0, 1, 1, 0]  # new1 and new2 cost 3 s each: 4 + 2 against 3 + 3


def test_param_id() -> None:
    assert param_id("s.py::t[r2-firewall/a__b]") == param_id("s.py::t[-firewall/a__b]") == "firewall/a__b"
    assert param_id("s.py::t[x]") == "x" and param_id("s.py::t") is None


def test_costs_stored_then_estimated_then_the_mean() -> None:
    ids = ["m.py::t[-a]", "m.py::t[r1-b]", "m.py::t[c]", "m.py::u"]
    stored = {"m.py::t[a]": 4.0}
    estimates = {"a": 100.0, "b": 2.0}
    assert costs(ids, stored, estimates) == [4.0, 2.0, 3.0, 3.0]  # a: stored wins; c, u: the mean of 4 and 2
    assert costs(["x", "y"], {}) == [1.0, 1.0]
    # Estimates also balance shards where nothing is stored.
    assert assign(ids, 2, {}, {"a": 9.0, "b": 1.0, "c": 1.0}) == [0, 1, 1, 1]


def test_longest_first_and_the_first_deal() -> None:
    assert longest_first([1.0, 5.0, 3.0, 5.0]) == [1, 3, 2, 0]
    # Two tests per worker at the start: the worker with the longest first test gets the shortest second.
    assert first_deal(3) == [0, 1, 2, 2, 1, 0]


class _Worker:
    """What the scheduler sees of an xdist worker: the tests sent to it, and whether it was told to stop."""

    def __init__(self, name: str) -> None:
        self.gateway = SimpleNamespace(id=name)
        self.sent: list[int] = []
        self.shutting_down = False

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent.extend(indices)

    def shutdown(self) -> None:
        self.shutting_down = True


class _Config:
    def __init__(self, workers: int, estimates: dict[str, float]) -> None:
        self.stash = pytest.Stash()
        self.stash[shard._STORED] = {}
        self.stash[shard.ESTIMATES] = estimates
        self.workers = workers

    def getvalue(self, name: str) -> Any:
        return {"tx": [f"{self.workers}*popen"]}[name]

    def getoption(self, name: str) -> Any:
        return {"maxschedchunk": None}[name]


def _scheduled(
    seconds: list[float], workers: int = 2, **stash: Any
) -> tuple[LongestFirstScheduling, list[_Worker]]:
    """A scheduler over tests t[0..] with these estimates, `workers` workers added, and `stash` (e.g.
    KEEPS=True) set, scheduled."""
    ids = [f"t.py::t[{i}]" for i in range(len(seconds))]
    config = _Config(workers, {str(i): s for i, s in enumerate(seconds)})
    for key, value in stash.items():
        config.stash[getattr(shard, key)] = value
    sched = LongestFirstScheduling(config)  # type: ignore[arg-type]
    nodes = [_Worker(f"gw{i}") for i in range(workers)]
    for w in nodes:
        sched.add_node(w)  # type: ignore[arg-type]
        sched.add_node_collection(w, ids)  # type: ignore[arg-type]
    sched.schedule()
    return sched, nodes


def test_the_scheduler_deals_longest_first_and_keeps_one_test_ahead() -> None:
    seconds = [1.0, 9.0, 2.0, 8.0, 3.0, 7.0, 4.0, 5.0]  # test i's estimate
    sched, workers = _scheduled(seconds, 3)
    # 9, 8, 7 first; then 5, 4, 3 in reverse: the worker with the longest first test gets the shortest next.
    assert [w.sent for w in workers] == [[1, 4], [3, 6], [5, 7]]
    assert sched.pending == [2, 0]  # 2 s and 1 s still to hand out
    sched.mark_test_complete(workers[2], 5)  # type: ignore[arg-type]
    assert workers[2].sent == [5, 7, 2] and not workers[2].shutting_down  # one more: never more than 2
    sched.mark_test_complete(workers[1], 3)  # type: ignore[arg-type]
    assert workers[1].sent == [3, 6, 0] and sched.pending == []
    sched.mark_test_complete(workers[0], 1)  # type: ignore[arg-type]
    assert workers[0].sent == [1, 4] and workers[0].shutting_down  # nothing left: it runs its last and stops


def test_a_worker_that_keeps_its_lab_gets_tests_of_its_shape() -> None:
    """With KEEPS, a worker's next test is one its kept lab serves (same shape) when one is nearly as long
    as the longest pending."""
    seconds = [9.0, 8.0, 4.0, 4.0, 4.0, 4.0, 1.0]
    shapes = ["x", "y", "x", "y", "x", "y", "x"]
    shape_of = {str(i): shape for i, shape in enumerate(shapes)}
    sched, workers = _scheduled(seconds, KEEPS=True, SHAPES=shape_of)
    # 9 s (x), 8 s (y); then gw1's second: a y, though an x came first in the order; gw0's: an x
    assert [w.sent for w in workers] == [[0, 2], [1, 3]]
    sched.mark_test_complete(workers[0], 0)  # type: ignore[arg-type]
    assert workers[0].sent[-1] == 4
    sched.mark_test_complete(workers[1], 1)  # type: ignore[arg-type]
    assert workers[1].sent[-1] == 5
    sched.mark_test_complete(workers[1], 3)  # type: ignore[arg-type]
    assert workers[1].sent[-1] == 6  # no y left: the longest of the rest


def test_with_kept_browsers_the_cap_is_on_start_ups(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker that finished a test with browsers keeps them: its next browser tests always fit, and only
    the cold workers' tests count against the cap (2 here)."""
    from netsim.suite import parallel

    monkeypatch.setattr(parallel, "auto_jobs", lambda: (4, 2))
    seconds = [9.0, 8.0, 7.0, 6.0, 2.0, 1.0]
    browsers = {"0": 2, "1": 2, "2": 2, "3": 2, "4": 0, "5": 0}
    sched, workers = _scheduled(seconds, KEEPS=True, BROWSERS=browsers)
    # gw0 starts two browsers; gw1, cold, gets the tests without browsers meanwhile
    assert workers[1].sent == [4, 5] and workers[0].sent[0] == 0
    sched.mark_test_complete(workers[0], 0)  # type: ignore[arg-type]  # gw0's browsers are up
    sched.mark_test_complete(workers[1], 4)  # type: ignore[arg-type]
    assert workers[0].sent == [0, 1, 2]  # warm: browser tests fit whatever the others hold
    assert workers[1].sent == [4, 5, 3]  # gw0's no longer count: gw1 may start its two


def test_auto_workers_are_one_per_browser_the_machine_may_run(monkeypatch: pytest.MonkeyPatch) -> None:
    from netsim.suite import parallel

    monkeypatch.setattr(parallel, "auto_jobs", lambda: (4, 2))
    assert shard.pytest_xdist_auto_num_workers(None) == 2  # type: ignore[arg-type]


def test_durations_file(tmp_path: Path) -> None:
    path = tmp_path / "durations.json"
    assert load_durations(path) == {}
    store_durations(path, {"t[-x]": 2.0, "t[r1-x]": 4.0, "u": 1.25})
    assert load_durations(path) == {"t[x]": 3.0, "u": 1.25}
    path.write_text('{"t": "slow"}')
    with pytest.raises(ShardError, match=r"durations.json: t: expected seconds"):
        load_durations(path)
    path.write_text("[")
    with pytest.raises(ShardError, match="not a durations file"):
        load_durations(path)


def _pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_many.py").write_text(TESTS)
    cmd = [sys.executable, "-m", "pytest", "-p", "netsim.suite.shard", "-p", "no:cacheprovider", "-q", *args]
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}  # only this plugin: faster, and isolated
    return subprocess.run(
        cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False, env=env
    )


def _selected(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stdout.splitlines() if "::" in line]


def test_the_plugin_splits_a_real_run(tmp_path: Path) -> None:
    durations = {f"test_many.py::test_n[{i}]": 30.0 if i == 0 else 1.0 for i in range(10)}
    (tmp_path / "durations.json").write_text(json.dumps(durations))
    shards = [
        _selected(_pytest(tmp_path, "--collect-only", f"--shard={i}/3", "--shard-durations=durations.json"))
        for i in (1, 2, 3)
    ]
    everything = sorted(sum(shards, []))
    assert everything == sorted(f"test_many.py::test_n[{i}]" for i in range(10))
    assert shards[0] == ["test_many.py::test_n[0]"]  # the 30 s test fills shard 1 alone
    assert len(shards[1]) + len(shards[2]) == 9


def test_the_plugin_stores_durations_and_rejects_bad_specs(tmp_path: Path) -> None:
    result = _pytest(tmp_path, "--store-durations", "--shard-durations=d.json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(json.loads((tmp_path / "d.json").read_text())) == sorted(
        f"test_many.py::test_n[{i}]" for i in range(10)
    )
    bad = _pytest(tmp_path, "--shard=3/2")
    assert bad.returncode == 4 and "--shard: '3/2': I must be between 1 and N" in bad.stderr


RECORDING = """
import os, time
import pytest

@pytest.mark.parametrize("n", ["short1", "slow1", "short2", "slow2", "short3", "short4"])
def test_n(n):
    with open(os.path.join(os.path.dirname(__file__), "order.txt"), "a") as f:
        f.write(f"{os.environ['PYTEST_XDIST_WORKER']} {n}\\n")
    time.sleep(0.3 if n.startswith("slow") else 0.05)
"""


def test_xdist_starts_the_longest_first_on_different_workers(tmp_path: Path) -> None:
    """xdist's own scheduler would send slow1 and slow2 (neighbours in collection order) to one worker."""
    (tmp_path / "test_order.py").write_text(RECORDING)
    stored = {f"test_order.py::test_n[short{i}]": 1.0 for i in range(1, 5)}
    stored |= {"test_order.py::test_n[slow1]": 30.0, "test_order.py::test_n[slow2]": 20.0}
    (tmp_path / "durations.json").write_text(json.dumps(stored))
    args = ("-p", "xdist.plugin", "-n", "2", "--shard-durations=durations.json", "test_order.py")
    result = _pytest(tmp_path, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    runs = [line.split() for line in (tmp_path / "order.txt").read_text().splitlines()]
    assert sorted(n for _, n in runs) == ["short1", "short2", "short3", "short4", "slow1", "slow2"]
    firsts = {worker: next(n for w, n in runs if w == worker) for worker in ("gw0", "gw1")}
    assert sorted(firsts.values()) == ["slow1", "slow2"]
