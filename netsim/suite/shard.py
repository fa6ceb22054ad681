"""pytest plugin: `--shard I/N` runs a deterministic, duration-balanced share of the collected tests, and
pytest-xdist hands tests out longest first.

Load it with `-p netsim.suite.shard` or from a conftest (scenarios/conftest.py). Every one of N machines
(CI jobs) collects the same tests and keeps its own share; together the shards run each test exactly once.
Shares are balanced by expected durations: the longest tests are dealt first, each to the shard with the
least work so far (longest processing time first). A test's expected duration is its stored one
(scenarios/durations.json, written by `--store-durations`), else the estimate the suite's conftest sets
(`ESTIMATES`, keyed by the test's parameter id: the scenario id), else the mean of those known (1 s when
none is). The assignment depends only on the collected test ids, the durations file and the estimates, so
every worker of every shard computes the same one.

With pytest-xdist's default distribution (`--dist load`, implied by `-n`), `LongestFirstScheduling` replaces
xdist's scheduler: the longest tests start first and each worker holds at most one test beyond the one it
runs (xdist's own sends tests in consecutive chunks, so two long tests could queue on one worker while the
others idle at the end). `--dist` with any other mode keeps xdist's own.

Durations are keyed by node id without the scenario suite's repeat prefix (`[r3-...]` -> `[...]`), so one
stored duration serves every repeat.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

import pytest
from xdist.remote import Producer
from xdist.scheduler import LoadScheduling
from xdist.workermanage import WorkerController

from netsim.errors import InputError
from netsim.suite.keep import prefer

DURATIONS_FILE: Final = "durations.json"
DEFAULT_DURATION_S: Final = 1.0
_REPEAT_PREFIX = re.compile(r"\[(?:r\d+)?-")
# Estimated seconds by parameter id (set by the suite's conftest; stored durations win over them).
ESTIMATES: Final = pytest.StashKey[dict[str, float]]()
_STORED: Final = pytest.StashKey[dict[str, float]]()  # the durations file, read once at configure
AHEAD: Final = 2  # tests a worker holds: the one it runs and the next (xdist needs it to run the first)
# Browsers each test starts, by parameter id (set by the suite's conftest): the scheduler keeps the browsers
# held by workers within the machine's cap (netsim.suite.parallel.auto_jobs), so aiortc tests run wider.
BROWSERS: Final = pytest.StashKey[dict[str, int]]()
# Whether workers keep their labs and browsers (netsim.suite.keep): a browser then starts once per worker,
# and the cap, which is about browser start-ups, is lifted.
KEEPS: Final = pytest.StashKey[bool]()
# The lab shape each test needs, by parameter id (netsim.suite.keep.shape; "" for a lab of its own): with
# KEEPS, a worker is sent a test of the shape its last one had when one is nearly as long as the longest.
SHAPES: Final = pytest.StashKey[dict[str, str]]()


class ShardError(InputError):
    """A shard spec or durations file that cannot be used; the message names the option or file."""


def parse_shard(text: str) -> tuple[int, int]:
    """'I/N' -> (I, N) with 1 <= I <= N."""
    index, slash, count = text.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        raise ShardError(f"--shard: expected I/N such as 1/4, got {text!r}") from None
    if not slash or n < 1 or not 1 <= i <= n:
        raise ShardError(f"--shard: {text!r}: I must be between 1 and N (N at least 1)")
    return i, n


def duration_key(nodeid: str) -> str:
    """The node id without the suite's repeat prefix."""
    return _REPEAT_PREFIX.sub("[", nodeid, count=1)


def param_id(nodeid: str) -> str | None:
    """The parameter id of a node id without its repeat prefix (`t[r1-a/b]` -> `a/b`); None unparametrized."""
    key = duration_key(nodeid)
    if not key.endswith("]") or "[" not in key:
        return None
    return key[key.index("[") + 1 : -1]


def load_durations(path: Path) -> dict[str, float]:
    """Stored durations (node id key -> seconds); {} when the file does not exist."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise ShardError(f"{path}: not a durations file ({e})") from None
    if not isinstance(data, dict):
        raise ShardError(f"{path}: expected an object of test id -> seconds")
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ShardError(f"{path}: {key}: expected seconds (a number >= 0), got {value!r}")
    return {str(k): float(v) for k, v in data.items()}


def costs(
    nodeids: Sequence[str], durations: Mapping[str, float], estimates: Mapping[str, float] | None = None
) -> list[float]:
    """Expected seconds of each test: its stored duration, else its estimate, else the mean of those known
    (DEFAULT_DURATION_S when none is)."""
    estimates = estimates or {}

    def known(nodeid: str) -> float | None:
        stored = durations.get(duration_key(nodeid))
        return stored if stored is not None else estimates.get(param_id(nodeid) or "")

    values = [known(nid) for nid in nodeids]
    present = [v for v in values if v is not None]
    default = sum(present) / len(present) if present else DEFAULT_DURATION_S
    return [default if v is None else v for v in values]


def longest_first(cost: Sequence[float]) -> list[int]:
    """Indices by descending cost (ties: the lower index first)."""
    return sorted(range(len(cost)), key=lambda i: (-cost[i], i))


def first_deal(workers: int) -> list[int]:
    """The worker of each of the first AHEAD x workers tests, longest first: one each, then one each in
    reverse, so the worker with the longest test gets the shortest second one."""
    return [*range(workers), *reversed(range(workers))]


def assign(
    nodeids: Sequence[str],
    shards: int,
    durations: Mapping[str, float],
    estimates: Mapping[str, float] | None = None,
) -> list[int]:
    """0-based shard of each node id: longest first, each to the least-loaded shard (ties: lowest index)."""
    cost = costs(nodeids, durations, estimates)
    order = sorted(range(len(nodeids)), key=lambda i: (-cost[i], nodeids[i]))
    load = [0.0] * shards
    out = [0] * len(nodeids)
    for i in order:
        target = min(range(shards), key=lambda s: (load[s], s))
        out[i] = target
        load[target] += cost[i]
    return out


def _durations_path(config: pytest.Config) -> Path:
    given = config.getoption("--shard-durations")
    return Path(given) if given else config.rootpath / "scenarios" / DURATIONS_FILE


# --- pytest hooks ---


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("shard")
    group.addoption("--shard", default=None, metavar="I/N", help="run the I-th of N duration-balanced shares")
    group.addoption(
        "--shard-durations",
        default=None,
        metavar="FILE",
        help=f"stored test durations (default: scenarios/{DURATIONS_FILE} under the rootdir)",
    )
    group.addoption(
        "--store-durations", action="store_true", help="write this run's test durations into that file"
    )


def pytest_configure(config: pytest.Config) -> None:
    spec = config.getoption("--shard")
    try:
        config.netsim_shard = parse_shard(spec) if spec else None  # type: ignore[attr-defined]
        if spec or _schedules(config):
            config.stash[_STORED] = load_durations(_durations_path(config))
    except ShardError as e:
        raise pytest.UsageError(str(e)) from None
    if config.getoption("--store-durations"):
        config.pluginmanager.register(DurationRecorder(_durations_path(config)), "netsim-shard-durations")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    shard = getattr(config, "netsim_shard", None)
    if shard is None:
        return
    index, count = shard
    durations, estimates = config.stash[_STORED], config.stash.get(ESTIMATES, {})
    owner = assign([item.nodeid for item in items], count, durations, estimates)
    keep = [item for item, s in zip(items, owner, strict=True) if s == index - 1]
    dropped = [item for item, s in zip(items, owner, strict=True) if s != index - 1]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = keep


def _schedules(config: pytest.Config) -> bool:
    """Whether this process is an xdist controller whose scheduler is LongestFirstScheduling."""
    return not hasattr(config, "workerinput") and config.getoption("dist", "no") == "load"


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: one worker per browser the machine may run at once (netsim.suite.parallel.auto_jobs: a
    core each, within memory). Each worker keeps its lab's browsers busy: on 2 cores, 4 workers left 10
    relay-needing browser cells of the main job inconclusive (their browsers waited 25-115 % of the deadline
    for a CPU), 2 workers left 2."""
    from netsim.suite.parallel import auto_jobs

    return auto_jobs()[1]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> LongestFirstScheduling | None:
    return LongestFirstScheduling(config, log) if _schedules(config) else None


class LongestFirstScheduling(LoadScheduling):
    """xdist's load scheduling, with the longest tests first and at most AHEAD tests on a worker."""

    collection: list[str] | None  # set by LoadScheduling.__init__ (declared for mypy)
    browsers: list[int]  # per collected test, set at the first deal
    browser_cap: int
    keeps: bool  # workers keep their labs and browsers (KEEPS)
    warm: set[WorkerController]  # ... and these finished a test with browsers: theirs are up
    shapes: list[str]  # per collected test, the lab it needs (netsim.suite.keep); empty without KEEPS
    cost: list[float]
    last_shape: dict[WorkerController, str]

    def schedule(self) -> None:
        """The first deal, once every worker has collected (later calls only top workers up)."""
        if self.collection is not None:
            for node in self.nodes:
                self.check_schedule(node)
            return
        if not self._check_nodes_have_same_collection():
            self.log("**Different tests collected, aborting run**")
            return
        collection: list[str] = next(iter(self.node2collection.values()))
        self.collection = collection
        stored, estimates = self.config.stash[_STORED], self.config.stash.get(ESTIMATES, {})
        self.cost = costs(collection, stored, estimates)
        self.pending[:] = longest_first(self.cost)
        from netsim.suite.parallel import auto_jobs

        self.keeps = self.config.stash.get(KEEPS, False)
        self.warm = set()
        self.browser_cap = auto_jobs()[1]
        known = self.config.stash.get(BROWSERS, {})
        self.browsers = [known.get(param_id(nid) or "", 0) for nid in collection]
        shapes = self.config.stash.get(SHAPES, {}) if self.keeps else {}
        self.shapes = [shapes.get(param_id(nid) or "", "") for nid in collection]
        self.last_shape = {}
        nodes = self.nodes
        for i in first_deal(len(nodes)):
            self._send_next(nodes[i])
        if not self.pending:  # every test is out: the workers may run their last ones
            for node in nodes:
                node.shutdown()

    def mark_test_complete(self, node: WorkerController, item_index: int, duration: float = 0) -> None:
        if self.keeps and self.browsers[item_index]:
            self.warm.add(node)
        super().mark_test_complete(node, item_index, duration)

    def check_schedule(self, node: WorkerController, duration: float = 0) -> None:
        """Top the worker up to AHEAD tests from the longest pending; with none left, let it finish."""
        if node.shutting_down:
            return
        for _ in range(max(0, AHEAD - len(self.node2pending[node]))):
            if self.pending:
                self._send_next(node)
        if not self.pending:
            node.shutdown()

    def _send_next(self, node: WorkerController) -> None:
        """Send the node the longest pending test that keeps the browsers held by workers within the cap;
        when none does, the longest (a worker must get its next test to run the one it holds). Among those
        that fit, one whose lab has the shape of the node's last test comes first if it is nearly as long
        (the worker's kept lab serves it). With KEEPS the cap is on browser start-ups: a warm worker's
        browsers are up, so only tests held by the others count, and a warm worker's tests always fit."""
        held = sum(
            self.browsers[i]
            for other, pending in self.node2pending.items()
            if not (self.keeps and other in self.warm)
            for i in pending
        )
        warm = self.keeps and node in self.warm
        fits = [
            k
            for k, i in enumerate(self.pending)
            if self.browsers[i] == 0 or warm or held + self.browsers[i] <= self.browser_cap
        ]
        chosen = fits[0] if fits else 0
        shape = self.last_shape.get(node, "")
        if shape and fits:
            longest = self.cost[self.pending[fits[0]]]
            chosen = next(
                (
                    k
                    for k in fits
                    if prefer(shape, self.shapes[self.pending[k]], self.cost[self.pending[k]], longest)
                ),
                chosen,
            )
        index = self.pending.pop(chosen)
        if self.shapes:
            self.last_shape[node] = self.shapes[index]
        self.node2pending[node].append(index)
        node.send_runtest_some([index])


class DurationRecorder:
    """Registered with --store-durations: sums each test's phases, writes the file at the end (xdist: the
    controller, which sees every worker's reports)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seconds: dict[str, float] = {}  # node id -> setup + call + teardown

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[report.nodeid] = self.seconds.get(report.nodeid, 0.0) + report.duration

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not hasattr(session.config, "workerinput") and self.seconds:
            store_durations(self.path, self.seconds)


def store_durations(path: Path, seconds: Mapping[str, float]) -> None:
    """Merge measured durations (node id -> seconds) into the file; the repeats of a test average."""
    try:
        stored = load_durations(path)
    except ShardError:
        stored = {}  # a broken file is replaced by the measurements
    per_key: dict[str, list[float]] = {}
    for nodeid, value in seconds.items():
        per_key.setdefault(duration_key(nodeid), []).append(value)
    for key, values in per_key.items():
        stored[key] = round(sum(values) / len(values), 3)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(dict(sorted(stored.items())), indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
