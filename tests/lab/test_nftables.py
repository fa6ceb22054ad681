"""libnftables loading inside a namespace (root): rules land there, never in the root namespace; nft's
error positions are parsed (no root)."""

from __future__ import annotations

import os
import subprocess

import pytest

from netsim.lab import netns, nftables
from netsim.lab.nftables import NftMessage

RULESET = """table inet probe {
    chain input {
        type filter hook input priority filter; policy accept;
        udp dport 9 drop
    }
}
"""


@pytest.mark.root
def test_ruleset_lands_in_the_namespace_only(scratch_netns: str) -> None:
    root_before = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    nftables.load(scratch_netns, RULESET)
    inside = netns.run(scratch_netns, ["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    assert "table inet probe" in inside and "udp dport 9 drop" in inside
    assert subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout == root_before


@pytest.mark.root
def test_syntax_error_is_reported_with_nfts_message(scratch_netns: str) -> None:
    with pytest.raises(nftables.NftError, match="syntax error") as caught:
        nftables.load(scratch_netns, "table inet probe {\n chain c { bogus }\n}")
    # a position in the text given (nft 1.0.6 names none for a buffer: netsim loads from a memfd)
    assert caught.value.messages[0] == NftMessage(2, 18, "syntax error, unexpected '}'")
    inside = netns.run(scratch_netns, ["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    assert inside.strip() == ""  # a failed load is atomic: nothing half-applied


def test_parse_errors_keeps_positions_and_skips_echoed_lines() -> None:
    output = (
        "/proc/self/fd/6:3:11-11: Error: syntax error, unexpected newline\n"
        "  nonsense\n"
        "          ^\n"
        "/dev/stdin:9:5-30: Error: Could not process rule: No such file or directory\n"
        "netlink: Error: cache initialization failed\n"
    )
    assert nftables.parse_errors(output) == [
        NftMessage(3, 11, "syntax error, unexpected newline"),
        NftMessage(9, 5, "Could not process rule: No such file or directory"),
        NftMessage(0, 0, "cache initialization failed"),
    ]


@pytest.mark.root
def test_check_validates_without_applying_and_leaves_no_namespace() -> None:
    before = set(netns.list_names())
    root_before = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    nftables.check(RULESET)
    with pytest.raises(nftables.NftError) as caught:
        nftables.check("table inet probe {\n  chain c {\n    bogus\n  }\n}\n")
    assert [(m.line, m.text) for m in caught.value.messages] == [(3, "syntax error, unexpected newline")]
    mine = f"ns{os.getpid():x}"
    assert [n for n in set(netns.list_names()) - before if n.startswith(mine)] == []  # scratch ns gone
    assert subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout == root_before
