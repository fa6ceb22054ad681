"""Shared fixtures: root-only tests skip cleanly elsewhere; every test checks it left no lab behind; the
whole run checks that the root network namespace is exactly as it was."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from netsim.lab import netns

# Address and route lifetimes count down on their own (DHCP, router advertisements): not a change.
_LIFETIMES = re.compile(r"\s*(valid_lft|preferred_lft|expires)\s+\S+")
_ROOT_COMMANDS = {
    "links": ["ip", "-d", "-o", "link", "show"],
    "addresses": ["ip", "-o", "addr", "show"],
    "routes": ["ip", "route", "show", "table", "all"],
    "routes6": ["ip", "-6", "route", "show", "table", "all"],
    "rules": ["ip", "rule", "show"],
    "rules6": ["ip", "-6", "rule", "show"],
    "nft": ["nft", "list", "ruleset"],
}


def root_namespace_state() -> dict[str, str]:
    """Links, addresses, routes, rules, the nft ruleset and every readable net.* sysctl of this process's
    namespace (the root one: tests enter lab namespaces only from threads that leave them again).

    No sysctl under /proc/sys/net was seen to change by itself (1,070 keys over 20 s idle and over whole
    test runs), so all are compared; write-only keys are skipped.
    """
    state = {}
    for what, argv in _ROOT_COMMANDS.items():
        out = subprocess.run(argv, capture_output=True, text=True)
        state[what] = _LIFETIMES.sub("", out.stdout + out.stderr)
    for path in sorted(Path("/proc/sys/net").rglob("*")):
        try:
            state[".".join(path.relative_to("/proc/sys").parts)] = path.read_text()
        except OSError:  # directories, write-only keys (route flush)
            continue
    return state


@pytest.fixture(scope="session", autouse=True)
def root_namespace_guard() -> Iterator[None]:
    """Fails the run if the root network namespace changed: netsim must never touch it (README).

    Once per process (each pytest-xdist worker has its own); other helpers' tests run at the same time, but
    none may touch the root namespace either, so any difference is a bug somewhere.
    """
    own = os.stat("/proc/thread-self/ns/net")
    before = root_namespace_state()
    yield
    now = os.stat("/proc/thread-self/ns/net")
    assert (now.st_dev, now.st_ino) == (own.st_dev, own.st_ino), "the test process was left in another netns"
    after = root_namespace_state()
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    detail = "\n".join(f"{k}:\n  before: {before.get(k)!r}\n  after:  {after.get(k)!r}" for k in changed[:10])
    assert not changed, f"the root network namespace changed: {', '.join(changed)}\n{detail}"


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
    mine = f"{os.environ.get('NETSIM_LAB_PREFIX', 'ns')}{os.getpid():x}"
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


@pytest.fixture(scope="session")
def require_chromium() -> str:
    """Chromium is part of the set-up (.ci/setup): missing, the browser tests fail with this message."""
    from netsim.peers.browser import ChromiumError, chromium_binary

    try:
        return chromium_binary()
    except ChromiumError as exc:
        pytest.fail(f"{exc}; .ci/setup installs it", pytrace=False)


@pytest.fixture(scope="session")
def require_firefox() -> str:
    """Firefox (and certutil) are part of the set-up (.ci/setup): missing, the Firefox tests fail with this
    message."""
    from netsim.peers.firefox_launch import FirefoxError, certutil, firefox_binary

    try:
        certutil()
        return firefox_binary()
    except FirefoxError as exc:
        pytest.fail(f"{exc}; .ci/setup installs it", pytrace=False)
