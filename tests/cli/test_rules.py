"""`netsim rules show/check`, `netsim stun`, `classify --rules/--lifetime` on researchers' files (root)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from netsim.cli.common import InputError
from netsim.cli.rules import parse_server
from netsim.lab import nat, netns
from netsim.vocab import APDM, EIM, FW6_PRESETS, NAT_PRESETS

LIFETIME_3S = """
	ct timeout mapping-lifetime {
		protocol udp; l3proto ip
		policy = { unreplied : 3, replied : 3 }
	}

	chain lifetime {
		type filter hook prerouting priority filter; policy accept;
		ct state new meta l4proto udp ct timeout set "mapping-lifetime"
	}
}
"""


def _netsim(*argv: str, tmp_path: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NETSIM_RUNTIME_DIR": str(tmp_path / "run")}
    return subprocess.run(
        [sys.executable, "-m", "netsim", *argv], capture_output=True, text=True, env=env, timeout=timeout
    )


def test_parse_server() -> None:
    assert parse_server("198.18.0.2") == ("198.18.0.2", 3478)
    assert parse_server("198.18.0.3:3479") == ("198.18.0.3", 3479)
    for bad in ("server", "198.18.0.2:x", "198.18.0.2:0", "::1"):
        with pytest.raises(InputError, match=r"^--server: "):
            parse_server(bad)


@pytest.mark.parametrize("name", NAT_PRESETS)
def test_rules_show_prints_the_preset_file(name: str, tmp_path: Path) -> None:
    out = _netsim("rules", "show", name, tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout == (nat.RULES_DIR / f"{name}.nft").read_text()


def test_rules_show_refuses_an_unknown_preset(tmp_path: Path) -> None:
    out = _netsim("rules", "show", "cone", tmp_path=tmp_path)
    assert out.returncode == 2 and "invalid choice: 'cone'" in out.stderr


@pytest.mark.root
def test_rules_check_accepts_every_preset_and_leaves_nothing(tmp_path: Path) -> None:
    before = set(netns.list_names())
    for name in NAT_PRESETS:
        out = _netsim("rules", "check", str(nat.RULES_DIR / f"{name}.nft"), tmp_path=tmp_path)
        assert (out.returncode, out.stdout) == (0, f"{nat.RULES_DIR / name}.nft: ok\n"), out.stderr
    assert not [n for n in set(netns.list_names()) - before if n.endswith("-nftcheck")]


@pytest.mark.root
def test_rules_check_names_the_users_line_and_column(tmp_path: Path) -> None:
    """Issue 11, finding 4: the position is in the user's file, not in netsim's prepended defines."""
    bad = tmp_path / "mine.nft"
    lines = nat.preset_text("full-cone").splitlines()
    at = next(
        i for i, line in enumerate(lines) if line.startswith("\t\toifname $WAN_IF ip saddr $LAN_NET snat")
    )
    lines[at] = lines[at].replace("snat ip to", "snat ip to to")
    bad.write_text("\n".join(lines) + "\n")
    out = _netsim("rules", "check", str(bad), tmp_path=tmp_path)
    assert out.returncode == 2 and out.stdout == ""
    first, second = out.stderr.splitlines()[:2]
    col = lines[at].index("to to") + 4  # the second "to"
    assert first == f"{bad}:{at + 1}:{col}: syntax error, unexpected to", first
    assert second == f"    | {lines[at]}"


def test_rules_check_of_a_missing_file_is_one_line(tmp_path: Path) -> None:
    out = _netsim("rules", "check", str(tmp_path / "none.nft"), tmp_path=tmp_path)
    assert out.returncode == 2
    assert out.stderr == f"netsim: error: rules check: no such file: {tmp_path / 'none.nft'}\n"


@pytest.mark.root
def test_a_bad_rules_file_in_a_scenario_names_the_users_line(tmp_path: Path) -> None:
    bad = tmp_path / "mine.nft"
    bad.write_text("table inet netsim {\n\tchain c {\n\t\tbogus\n\t}\n}\n")
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        'name = "s"\n[[site]]\nname = "nat-a"\nhosts = ["a"]\n'
        'nat = { type = "custom", rules_file = "mine.nft" }\n'
    )
    out = _netsim("up", str(scenario), tmp_path=tmp_path)
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith(f"netsim: error: {bad}:3:8: syntax error, unexpected newline | bogus"), (
        out.stderr
    )
    assert not list((tmp_path / "run").glob("*/lab.json"))  # nothing left behind


# ---- classify on researchers' files ------------------------------------------------------------------------


def _classify(rules: Path, tmp_path: Path, *extra: str) -> dict[str, object]:
    out = _netsim("classify", "--rules", str(rules), "--json", *extra, tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    result: dict[str, object] = json.loads(out.stdout)
    return result


@pytest.mark.root
def test_classify_a_copied_symmetric_file_says_symmetric(tmp_path: Path) -> None:
    """Issue 11, finding 2: the copy is used as written (it used to classify EIM, port preserving)."""
    copy = tmp_path / "symmetric.nft"
    copy.write_bytes((nat.RULES_DIR / "symmetric.nft").read_bytes())
    result = _classify(copy, tmp_path)
    assert (result["mapping"], result["filtering"]) == (APDM, APDM)
    assert result["port_preservation"] is False and result["hole_punch"] is False


@pytest.mark.root
def test_classify_the_output_of_rules_show(tmp_path: Path) -> None:
    shown = tmp_path / "prc.nft"
    shown.write_text(_netsim("rules", "show", "port-restricted-cone", tmp_path=tmp_path).stdout)
    result = _classify(shown, tmp_path)
    assert (result["mapping"], result["filtering"]) == (EIM, APDM)
    assert result["port_preservation"] is True and result["hole_punch"] is True


@pytest.mark.root
def test_classify_lifetime_measures_the_files_own_lifetime(tmp_path: Path) -> None:
    """Issue 11, finding 3: a ct timeout of 3 s in the file, 30 s in the sysctl: 3 s is measured."""
    own = tmp_path / "short.nft"
    own.write_text(nat.preset_text("port-restricted-cone").rstrip()[:-1] + LIFETIME_3S.lstrip("\n"))
    result = _classify(own, tmp_path, "--lifetime")
    assert isinstance(result["lifetime_s"], float) and 2.0 <= result["lifetime_s"] <= 3.0


# ---- stun --------------------------------------------------------------------------------------------------


@pytest.fixture
def lab_up(tmp_path: Path) -> Iterator[str]:
    """A standard lab (symmetric site a, full-cone site b) left up by `netsim up`, taken down afterwards."""
    out = _netsim("up", "--nat-a", "symmetric", "--nat-b", "full-cone", "--json", tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    lab = json.loads(out.stdout)["lab"]
    try:
        yield lab
    finally:
        _netsim("down", lab, tmp_path=tmp_path)


@pytest.mark.root
def test_stun_shows_the_mapping_and_whether_it_changed(lab_up: str, tmp_path: Path) -> None:
    symmetric = json.loads(_netsim("stun", lab_up, "a", "--json", tmp_path=tmp_path).stdout)
    cone = json.loads(_netsim("stun", lab_up, "b", "--json", tmp_path=tmp_path).stdout)
    assert [a["server"] for a in symmetric["answers"]] == ["198.18.0.2:3478", "198.18.0.3:3478"]
    assert all(a["mapped"].startswith("198.18.1.1:") for a in symmetric["answers"])
    assert symmetric["mapping_changed"] is True
    assert [a["mapped"] for a in cone["answers"]] == [f"198.18.2.1:{cone['local_port']}"] * 2
    assert cone["mapping_changed"] is False
    text = _netsim("stun", lab_up, "b", "--server", "198.18.0.3", tmp_path=tmp_path)
    assert text.returncode == 0, text.stderr
    assert "198.18.0.3:3478" in text.stdout and "mapped 198.18.2.1:" in text.stdout
    assert "198.18.0.2" not in text.stdout and "changed" not in text.stdout  # one server: nothing to compare


@pytest.mark.root
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nolab", "a"], "netsim: error: no lab 'nolab' (running labs: "),
        (["LAB", "zz"], "netsim: error: no node 'zz' in lab LAB (nodes: "),
        (
            ["LAB", "a", "--server", "192.0.2.1"],
            "netsim: error: --server: 192.0.2.1:3478 is not an address of lab LAB",
        ),
        (
            ["LAB", "a", "--server", "198.18.0.2:9", "--timeout", "0.3"],
            "netsim: error: no STUN answer from 198.18.0.2:9 within 0.3 s",
        ),
    ],
    ids=["lab", "node", "outside", "silent"],
)
def test_stun_errors_are_one_line(argv: list[str], message: str, lab_up: str, tmp_path: Path) -> None:
    out = _netsim("stun", *[a.replace("LAB", lab_up) for a in argv], tmp_path=tmp_path)
    assert out.returncode == 2
    assert out.stderr.startswith(message.replace("LAB", lab_up)) and out.stderr.count("\n") == 1, out.stderr


@pytest.mark.parametrize("name", FW6_PRESETS)
def test_rules_show_prints_an_ipv6_firewall_preset(name: str, tmp_path: Path) -> None:
    out = _netsim("rules", "show", f"fw6-{name}", tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout == (nat.RULES_DIR / f"fw6-{name}.nft").read_text()


@pytest.mark.root
def test_rules_check_takes_an_ipv6_firewall_file_and_names_its_line(tmp_path: Path) -> None:
    mine = tmp_path / "mine.nft"
    lines = (nat.RULES_DIR / "fw6-eif.nft").read_text().splitlines()
    out = _netsim("rules", "check", str(nat.RULES_DIR / "fw6-eif.nft"), tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    at = next(i for i, line in enumerate(lines) if "@outbound accept" in line)
    lines[at] = lines[at].replace("@outbound", "@inbound")  # no such set
    mine.write_text("\n".join(lines) + "\n")
    out = _netsim("rules", "check", str(mine), tmp_path=tmp_path)
    assert out.returncode == 2 and out.stderr.startswith(f"{mine}:{at + 1}:"), out.stderr
