"""Shared fixtures: root-only tests skip cleanly elsewhere; every test checks it left no lab behind."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest

from netsim.lab import netns


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (network namespaces, nftables, coturn)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def no_leftovers(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails the test if a lab namespace this process created outlives it.

    Only this process's labs count (their ids start with ns<pid>): pytest-xdist workers and helpers build
    their own labs at the same time. Tests that build labs in subprocesses check those explicitly.
    """
    mine = f"ns{os.getpid():x}"
    before = set(netns.list_names())
    yield
    leaked = sorted(n for n in set(netns.list_names()) - before if n.startswith(mine))
    assert not leaked, f"namespaces left behind: {leaked}"


@pytest.fixture
def scratch_netns() -> Iterator[str]:
    """An empty namespace of this test's own (loopback down), removed afterwards."""
    name = f"ns{os.getpid():x}{secrets.token_hex(2)}-scratch"
    netns.create(name)
    try:
        yield name
    finally:
        netns.delete(name)
