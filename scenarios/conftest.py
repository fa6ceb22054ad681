"""pytest plumbing for the scenario suite: one run id across xdist workers, a preloaded peer launcher per
worker, results appended to reports/<run-id>/results.jsonl, and at the end a summary, the matrix tables in
the terminal, and the HTML report."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netsim.results import store as results
from netsim.suite import catalog as suite

REPO = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("netsim")
    group.addoption("--repeats", type=int, default=1, help="run every scenario N times (default 1)")
    group.addoption("--reports", default=str(REPO / "reports"), help="where run directories go (reports/)")
    group.addoption("--run-id", default=None, help="run id (default: a new one per pytest run)")
    group.addoption("--no-report", action="store_true", help="skip building the HTML report at the end")
    group.addoption("--pcap", action="store_true", help="capture every session's internet segment (tcpdump)")


def pytest_configure(config: pytest.Config) -> None:
    worker = getattr(config, "workerinput", None)
    if worker is not None:
        config.netsim_run_id = worker["netsim_run_id"]  # type: ignore[attr-defined]
    else:
        config.netsim_run_id = config.getoption("--run-id") or results.new_run_id()  # type: ignore[attr-defined]


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: every worker writes into the controller's run directory."""
    node.workerinput["netsim_run_id"] = node.config.netsim_run_id


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "repeat" in metafunc.fixturenames:
        n = metafunc.config.getoption("--repeats")
        metafunc.parametrize("repeat", range(n), ids=[f"r{i}" for i in range(n)] if n > 1 else [""])


@pytest.fixture(scope="session")
def run_dir(pytestconfig: pytest.Config) -> Path:
    return results.run_dir(pytestconfig.getoption("--reports"), pytestconfig.netsim_run_id)  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def expectations() -> dict[str, Any]:
    return suite.load_expectations()


@pytest.fixture(scope="session")
def launcher() -> Iterator[Any]:
    """One preloaded fork server per worker: peers start in milliseconds instead of 0.5 s of imports."""
    if os.geteuid() != 0:
        pytest.skip("the scenario suite needs root (network namespaces, nftables, coturn)")
    from netsim.peers.launcher import Launcher

    with Launcher() as the_launcher:
        yield the_launcher


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    directory = results.run_dir(config.getoption("--reports"), config.netsim_run_id)  # type: ignore[attr-defined]
    if not (directory / "results.jsonl").exists():
        return
    records = results.load_records(directory)
    results.write_summary(directory)
    tr = terminalreporter
    for group in ("matrix-turn", "matrix-noturn"):
        if any(r.get("group") == group for r in records):
            tr.write_sep("-", f"netsim {group} (rows: NAT of a, columns: NAT of b)")
            tr.write_line(results.matrix_table(records, group))
    summary = results.summarize(records, config.netsim_run_id)  # type: ignore[attr-defined]
    tr.write_sep("-", "netsim summary")
    tr.write_line(
        f"{summary['sessions']} sessions, relay needed in {_pct(summary['relay_needed_share'])}, "
        f"relay won in {_pct(summary['relay_won_share'])}; results in {directory}"
    )
    if not config.getoption("--no-report"):
        from netsim.results import report

        page = report.build_report(directory, Path(config.getoption("--reports")))
        tr.write_line(f"HTML report: {page}")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"
