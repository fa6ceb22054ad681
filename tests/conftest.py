"""Shared fixtures: root-only tests skip cleanly elsewhere; every test checks it left no lab behind."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from netsim import lab, netns


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (network namespaces, nftables, coturn)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def no_leftovers(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails the test if a lab namespace it created outlives it.

    Only netsim lab names (ns...) count, and labs registered by other live processes (pytest-xdist workers,
    other terminals) are theirs, not leaks.
    """
    before = set(netns.list_names())
    yield
    others = {
        ns
        for entry in lab.registered()
        if int(entry["owner_pid"]) != os.getpid() and lab.owner_alive(entry)
        for ns in entry["namespaces"]
    }
    leaked = sorted(n for n in set(netns.list_names()) - before - others if n.startswith("ns"))
    assert not leaked, f"namespaces left behind: {leaked}"
