"""pytest plumbing for the scenario suite: one run id across xdist workers, a preloaded peer launcher and a
kept lab with its browsers per worker (netsim.suite.keep; --fresh-labs: none), results appended to
reports/<run-id>/results.jsonl, and at the end the same summary, matrix tables and HTML report as the
netsim commands (netsim.results.finish.finish_run). Every scenario's expected duration goes to
netsim.suite.shard, which hands the longest out first (xdist) and balances --shard by it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netsim import runfiles
from netsim.results.finish import finish_run
from netsim.suite.catalog import catalog
from netsim.suite.expectations import load_expectations
from netsim.suite.keep import shape
from netsim.suite.runner import DEFAULT_RETRIES, browsers, expectation_or_none, expected_seconds
from netsim.suite.scenario import Scenario

SCENARIOS = Path(__file__).resolve().parent
EXPECTED = SCENARIOS / "expected.toml"


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """--shard I/N, --store-durations and xdist's longest-first scheduling (netsim.suite.shard); its option
    and configure hooks are historic."""
    pluginmanager.import_plugin("netsim.suite.shard")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("netsim")
    group.addoption("--repeats", type=int, default=1, help="run every scenario N times (default 1)")
    group.addoption("--reports", default="reports", help="where run directories go (default ./reports)")
    group.addoption("--run-id", default=None, help="run id (default: a new one per pytest run)")
    group.addoption("--no-report", action="store_true", help="skip building the HTML report at the end")
    group.addoption("--pcap", action="store_true", help="capture every session's internet segment (tcpdump)")
    group.addoption(
        "--fresh-labs",
        action="store_true",
        help="a fresh lab and fresh browsers for every session (default: each worker keeps its lab and "
        "browsers across the cells that only differ in NAT presets or options; netsim.suite.keep)",
    )
    group.addoption(
        "--retries",
        type=int,
        default=DEFAULT_RETRIES,
        help=f"runs of a session that load made inconclusive, beyond the first (default {DEFAULT_RETRIES})",
    )


# Groups deselected unless a -m expression is given (the main job stays as long as it was): the Firefox and
# Pion matrices add minutes each on 2 cores. `-m pion` or `-m firefox` runs them, `-m "extra_stacks or not
# extra_stacks"` everything.
DEFAULT_MARKEXPR = "not extra_stacks"


def pytest_configure(config: pytest.Config) -> None:
    if not config.option.markexpr:
        config.option.markexpr = DEFAULT_MARKEXPR
    worker = getattr(config, "workerinput", None)
    if worker is not None:
        config.netsim_run_id = worker["netsim_run_id"]  # type: ignore[attr-defined]
    else:
        config.netsim_run_id = config.getoption("--run-id") or runfiles.new_run_id()  # type: ignore[attr-defined]
    from netsim.suite import shard  # imported by pytest_addhooks first, so that pytest can rewrite it

    config.stash[shard.KEEPS] = not config.getoption("--fresh-labs")
    try:
        scenarios = catalog(SCENARIOS)
        config.stash[shard.ESTIMATES] = estimates(scenarios)
        config.stash[shard.BROWSERS] = {scn.id: browsers((scn, 0)) for scn in scenarios}
        config.stash[shard.SHAPES] = {scn.id: shape(scn) for scn in scenarios}
    except (ValueError, OSError) as e:  # the stages' input errors: a bad scenario file or expectations table
        raise pytest.UsageError(str(e)) from None


def estimates(scenarios: list[Scenario]) -> dict[str, float]:
    """Expected seconds of every scenario's session, by scenario id (the test's parameter id)."""
    table = load_expectations(EXPECTED)
    return {scn.id: expected_seconds(scn, expectation_or_none(scn, table)) for scn in scenarios}


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: every worker writes into the controller's run directory."""
    node.workerinput["netsim_run_id"] = node.config.netsim_run_id


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "repeat" in metafunc.fixturenames:
        n = metafunc.config.getoption("--repeats")
        metafunc.parametrize("repeat", range(n), ids=[f"r{i}" for i in range(n)] if n > 1 else [""])


def _reports(config: pytest.Config) -> Path:
    return Path(config.getoption("--reports"))


@pytest.fixture(scope="session")
def run_dir(pytestconfig: pytest.Config) -> Path:
    return runfiles.run_dir(_reports(pytestconfig), pytestconfig.netsim_run_id)  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def expectations() -> dict[str, Any]:
    return load_expectations(EXPECTED)


@pytest.fixture(scope="session")
def launcher() -> Iterator[Any]:
    """One preloaded fork server per worker: peers start in milliseconds instead of 0.5 s of imports."""
    if os.geteuid() != 0:
        pytest.skip("the scenario suite needs root (network namespaces, nftables, coturn)")
    from netsim.peers.launcher import Launcher

    with Launcher() as the_launcher:
        yield the_launcher


@pytest.fixture(scope="session")
def keeper(launcher: Any, pytestconfig: pytest.Config) -> Iterator[Any]:
    """The worker's kept lab and browsers (netsim.suite.keep), torn down when the worker ends."""
    from netsim.suite.keep import Keeper

    with Keeper(launcher, enabled=not pytestconfig.getoption("--fresh-labs")) as the_keeper:
        yield the_keeper


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    directory = _reports(config) / config.netsim_run_id  # type: ignore[attr-defined]
    summary = finish_run(directory, _reports(config), report=not config.getoption("--no-report"))
    if summary is None:
        return
    tr = terminalreporter
    for group, table in summary.matrices:
        tr.write_sep("-", f"netsim {group} (rows: NAT of a, columns: NAT of b)")
        tr.write_line(table)
    tr.write_sep("-", "netsim summary")
    tr.write_line(summary.line)
    if summary.report is not None:
        tr.write_line(f"HTML report: {summary.report}")
