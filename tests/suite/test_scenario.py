"""Scenario files: the one loader, its errors, and the files the suite ships (no root)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from netsim.suite.scenario import ScenarioError, file_scenarios, load_scenario_file

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
SITE = '[[site]]\nname = "r1"\nnat = "symmetric"\nhosts = ["h1", "h2"]\n'


def test_shipped_scenario_files_load() -> None:
    files = sorted(p.name for p in SCENARIOS.glob("*.toml") if p.name != "expected.toml")
    assert files == [
        "double-nat-cone-cgn.toml",
        "double-nat-symmetric-cgn.toml",
        "dual-clat-x-none.toml",
        "dual-prc-fw6-apdf.toml",
        "dual-prc-fw6-block-udp.toml",
        "dual-prc-fw6-eif.toml",
        "dual-prc-fw6-open.toml",
        "dual-symmetric-aiortc.toml",
        "dual-symmetric-broken.toml",
        "dual-symmetric-chromium-ipv4-only.toml",
        "dual-symmetric-chromium.toml",
        "dual-symmetric-firefox.toml",
        "dual-symmetric-pion.toml",
        "dual-x-none.toml",
        "hairpin-off.toml",
        "hairpin-on.toml",
        "impaired-uplink.toml",
        "same-lan.toml",
        "timeline-flush-aiortc.toml",
        "timeline-flush-chromium.toml",
        "timeline-held.toml",
        "timeline-lifetime-long.toml",
        "timeline-lifetime-short.toml",
        "timeline-move-aiortc.toml",
        "timeline-move.toml",
        "timeline-outage.toml",
        "timeline-turn-restart.toml",
    ]
    loaded = {s.id: s for s in file_scenarios(SCENARIOS)}
    assert sorted(loaded) == [
        "double-nat/cone-behind-cone-cgn",
        "double-nat/cone-behind-symmetric-cgn",
        "dual-stack-firefox/symmetric-firefox",
        "dual-stack-pion/symmetric-pion",
        "dual-stack/clat-x-none",
        "dual-stack/dual-x-none",
        "dual-stack/prc-fw6-apdf",
        "dual-stack/prc-fw6-block-udp",
        "dual-stack/prc-fw6-eif",
        "dual-stack/prc-fw6-open",
        "dual-stack/symmetric-aiortc",
        "dual-stack/symmetric-broken-ipv6",
        "dual-stack/symmetric-chromium",
        "dual-stack/symmetric-chromium-ipv4-only-b",
        "hairpin/hairpin-off",
        "hairpin/hairpin-on",
        "impaired/lossy-1mbit",
        "lan/same-lan",
        "timeline/flush-symmetric-aiortc",
        "timeline/flush-symmetric-chromium",
        "timeline/held-30s",
        "timeline/lifetime-2s-idle",
        "timeline/lifetime-30s-idle",
        "timeline/move-wifi-to-cellular",
        "timeline/move-wifi-to-cellular-aiortc",
        "timeline/turn-restart-relayed",
        "timeline/uplink-down-3s",
    ]
    hairpin = loaded["hairpin/hairpin-on"]
    assert hairpin.options.hide_host and (hairpin.nat_a, hairpin.nat_b) == ("port-restricted-cone",) * 2


def test_session_table_sets_hosts_and_options(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        'name = "mine"\n' + SITE + '[session]\na = "h2"\nb = "h1"\nturn = "tcp"\ndeadline_s = 7\n'
    )
    scn = load_scenario_file(path)
    opts = scn.options
    assert (scn.id, opts.host_a, opts.host_b, opts.turn, opts.deadline_s) == (
        "mine/mine",
        "h2",
        "h1",
        "tcp",
        7.0,
    )
    assert (scn.group, scn.nat_a, scn.nat_b) == ("mine", "symmetric", "symmetric")


def test_udp_blocked_sites_get_the_firewall_deadline(tmp_path: Path) -> None:
    path = tmp_path / "fw.toml"
    path.write_text('[[site]]\nname = "r1"\nnat = "udp-blocked"\nhosts = ["h1", "h2"]\n')
    assert load_scenario_file(path).options.deadline_s == 14.0


@pytest.mark.parametrize(
    ("session", "message"),
    [
        ('a = "nobody"', r"mine.toml: session.a: unknown host 'nobody' \(hosts: h1, h2\)"),
        ("speed = 1", r"mine.toml: session.speed: unknown key"),
        ('deadline_s = "soon"', r"mine.toml: session.deadline_s: expected a number of seconds, got 'soon'"),
        ('turn = "carrier-pigeon"', r"mine.toml: session.turn: unknown value 'carrier-pigeon'"),
        ("glare = 1", r"mine.toml: session.glare: expected true or false"),
    ],
)
def test_bad_session_tables_name_file_and_field(tmp_path: Path, session: str, message: str) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(SITE + "[session]\n" + session + "\n")
    with pytest.raises(ScenarioError, match=message):
        load_scenario_file(path)


def test_unreadable_files_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"nope.toml: no such file"):
        load_scenario_file(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[site]\n")
    with pytest.raises(ScenarioError, match=r"bad.toml: not valid TOML"):
        load_scenario_file(bad)
    topo = tmp_path / "topo.toml"
    topo.write_text('[[site]]\nname = "r1"\nnat = "teleport"\nhosts = ["h1"]\n')
    with pytest.raises(ScenarioError, match=r"topo.toml: .*teleport"):
        load_scenario_file(topo)


def test_readme_names_every_session_key_the_loader_accepts(tmp_path: Path) -> None:
    """The README's `[session]` key list is the loader's: a key it accepts is listed, a listed key loads."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    sentence = readme.split("`[session]` keys:", 1)[1].split("A test checks", 1)[0]
    listed = set(re.findall(r"`(\w+)`", sentence)) - {"[[event]]"}
    path = tmp_path / "probe.toml"
    path.write_text('[session]\nno_such_key = 1\n[[site]]\nname = "nat-a"\nhosts = ["a"]\n')
    with pytest.raises(ScenarioError) as err:
        load_scenario_file(path)
    accepted = set(str(err.value).split("(allowed: ", 1)[1].rstrip(")").split(", "))
    assert listed == accepted
