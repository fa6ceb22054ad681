"""libnftables loading inside a namespace (root): rules land there, never in the root namespace."""

from __future__ import annotations

import subprocess

import pytest

from netsim.lab import netns, nftables

pytestmark = pytest.mark.root

RULESET = """table inet probe {
    chain input {
        type filter hook input priority filter; policy accept;
        udp dport 9 drop
    }
}
"""


def test_ruleset_lands_in_the_namespace_only(scratch_netns: str) -> None:
    root_before = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    nftables.load(scratch_netns, RULESET)
    inside = netns.run(scratch_netns, ["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    assert "table inet probe" in inside and "udp dport 9 drop" in inside
    assert subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout == root_before


def test_syntax_error_is_reported_with_nfts_message(scratch_netns: str) -> None:
    with pytest.raises(nftables.NftError, match="syntax error"):
        nftables.load(scratch_netns, "table inet probe { chain c { bogus } }")
    inside = netns.run(scratch_netns, ["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    assert inside.strip() == ""  # a failed load is atomic: nothing half-applied
