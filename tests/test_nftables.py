"""libnftables loading inside a namespace (root): rules land there, never in the root namespace."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from netsim import netns, nftables

pytestmark = pytest.mark.root

RULESET = """table inet probe {
    chain input {
        type filter hook input priority filter; policy accept;
        udp dport 9 drop
    }
}
"""


@pytest.fixture
def scratch_ns() -> Iterator[str]:
    name = f"nsnft{os.getpid():x}"
    netns.create(name)
    yield name
    netns.delete(name)


def test_ruleset_lands_in_the_namespace_only(scratch_ns: str) -> None:
    root_before = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    nftables.load(scratch_ns, RULESET)
    inside = netns.run(scratch_ns, ["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    assert "table inet probe" in inside and "udp dport 9 drop" in inside
    assert subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout == root_before


def test_syntax_error_is_reported_with_nfts_message(scratch_ns: str) -> None:
    with pytest.raises(nftables.NftError, match="syntax error"):
        nftables.load(scratch_ns, "table inet probe { chain c { bogus } }")
    inside = netns.run(scratch_ns, ["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    assert inside.strip() == ""  # a failed load is atomic: nothing half-applied
