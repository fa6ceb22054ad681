"""Impairments: validation and rendering (no root), and measured loss and rate in a real lab (root)."""

from __future__ import annotations

import re
import socket
import subprocess
import time

import pytest

from netsim.lab import impair, netns
from netsim.lab.impair import ImpairError, Impairment, impair_from_dict
from netsim.lab.lab import Lab
from netsim.lab.topology import TopologyError, from_dict, standard_topology
from tests.lab.measure import rate_kbit


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"loss_pct": 120}, "site.impair.loss_pct: expected a number from 0 to 100, got 120"),
        ({"loss_pct": -1}, "site.impair.loss_pct: expected a number from 0 to 100, got -1"),
        ({"loss_pct": "5"}, "site.impair.loss_pct: expected a number from 0 to 100, got '5'"),
        ({"loss_pct": True}, "site.impair.loss_pct: expected a number from 0 to 100, got True"),
        ({"rate_kbit": 2.5}, "site.impair.rate_kbit: expected whole kbit/s of at least 8, got 2.5"),
        ({"rate_kbit": 4}, "site.impair.rate_kbit: expected whole kbit/s of at least 8, got 4"),
        ({"delay_ms": -5}, "site.impair.delay_ms: expected a number from 0 to 10000, got -5"),
        ({"delay_ms": "50ms"}, "site.impair.delay_ms: expected a number from 0 to 10000, got '50ms'"),
        ({"delay_ms": 20000}, "site.impair.delay_ms: expected a number from 0 to 10000, got 20000"),
        (
            {"delay_ms": 50, "jitter_ms": 60},
            "site.impair.jitter_ms: expected a number from 0 to delay_ms (50), got 60",
        ),
        ({"jitter_ms": 5}, "site.impair.jitter_ms: expected a number from 0 to delay_ms (0), got 5"),
        (
            {"delay_ms": 50, "jitter_ms": False},
            "site.impair.jitter_ms: expected a number from 0 to delay_ms (50), got False",
        ),
        (
            {"latency_ms": 20},
            "site.impair.latency_ms: unknown key (choose from loss_pct, rate_kbit, delay_ms, jitter_ms)",
        ),
    ],
)
def test_bad_impairments_name_field_and_value(data: dict, message: str) -> None:
    with pytest.raises(ImpairError, match=f"^{re.escape(message)}$"):
        impair_from_dict(data, "site.impair")


def test_impair_from_dict() -> None:
    assert impair_from_dict({"loss_pct": 2.5, "rate_kbit": 64}, "x") == Impairment(loss_pct=2.5, rate_kbit=64)
    assert impair_from_dict({}, "x") == Impairment()
    assert not Impairment().active
    assert Impairment(rate_kbit=64).active and Impairment(loss_pct=0.01).active
    assert impair_from_dict({"delay_ms": 50, "jitter_ms": 10}, "x") == Impairment(delay_ms=50, jitter_ms=10)
    assert Impairment(delay_ms=0.5).active and Impairment(delay_ms=0.5).delayed
    assert not Impairment(loss_pct=1).delayed


def test_mechanisms_name_what_applies_each_part(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(impair, "netem_probe", lambda: (False, "Error: Specified qdisc kind is unknown."))
    assert impair.mechanisms(None) == {"delay": None, "loss": None, "rate": None}
    imp = Impairment(loss_pct=1, rate_kbit=500, delay_ms=20)
    assert impair.mechanisms(imp) == {"delay": "nfqueue", "loss": "nftables", "rate": "tbf"}
    monkeypatch.setattr(impair, "netem_probe", lambda: (True, "sch_netem"))
    assert impair.mechanisms(imp)["delay"] == "netem"
    assert impair.mechanisms(Impairment(loss_pct=1))["delay"] is None
    topo = standard_topology("full-cone", "symmetric", impair_b=Impairment(delay_ms=5))
    assert impair.site_mechanisms(topo) == {"nat-b": {"delay": "netem", "loss": None, "rate": None}}


def test_netem_batch_puts_the_rate_under_netem() -> None:
    imp = Impairment(rate_kbit=1000, delay_ms=50, jitter_ms=2.5)
    assert impair.netem_batch(imp, ("wan", "lan")) == (
        "qdisc add dev wan root handle 1: netem delay 50000us 2500us limit 100000\n"
        "qdisc add dev wan parent 1:1 handle 10: tbf rate 1000kbit burst 3200 latency 200ms\n"
        "qdisc add dev lan root handle 1: netem delay 50000us 2500us limit 100000\n"
        "qdisc add dev lan parent 1:1 handle 10: tbf rate 1000kbit burst 3200 latency 200ms\n"
    )
    assert impair.netem_batch(Impairment(delay_ms=7), ("wan",)) == (
        "qdisc add dev wan root handle 1: netem delay 7000us limit 100000\n"
    )


@pytest.mark.root
def test_netem_probe_agrees_with_tc() -> None:
    """The probe's answer is tc's own (on this kernel: no sch_netem, so the delay line is used)."""
    available, detail = impair.netem_probe()
    assert available is not None, detail
    if not available:
        assert "qdisc kind is unknown" in detail or "not found" in detail.lower(), detail
        assert impair.delay_backend_here() == "nfqueue"
    else:
        assert impair.delay_backend_here() == "netem"


def test_loss_renders_to_a_numgen_threshold() -> None:
    assert impair.render_ruleset(Impairment(loss_pct=2.5)) == (
        "table inet netsim_impair\n"
        "delete table inet netsim_impair\n"
        "table inet netsim_impair {\n"
        "\tchain forward {\n"
        "\t\ttype filter hook forward priority filter - 10; policy accept;\n"
        "\t\tnumgen random mod 10000 < 250 drop\n"
        "\t}\n"
        "}\n"
    )


def test_scenario_impair_table() -> None:
    topo = from_dict(
        {"site": [{"name": "r1", "hosts": ["h1"], "impair": {"loss_pct": 3, "rate_kbit": 1000}}]}
    )
    assert topo.site("r1").impair == Impairment(loss_pct=3, rate_kbit=1000)
    with pytest.raises(TopologyError, match=r"site\[0\].impair.jitter_ms: .*delay_ms \(0\), got 3$"):
        from_dict({"site": [{"name": "r1", "hosts": ["h1"], "impair": {"jitter_ms": 3}}]})
    delayed = {"delay_ms": 40, "jitter_ms": 5, "loss_pct": 1}
    topo = from_dict({"site": [{"name": "r1", "hosts": ["h1"], "impair": delayed}]})
    assert topo.site("r1").impair == Impairment(loss_pct=1, delay_ms=40, jitter_ms=5)


def _loss(lab: Lab, n: int = 2000) -> float:
    """Share of n UDP datagrams from host a that never reach the server (drained while sending)."""
    srv, cli = netns.socket_in(lab.netns("server")), netns.socket_in(lab.netns("a"))
    with srv, cli:
        srv.bind(("198.18.0.2", 9999))
        srv.setblocking(False)
        got = 0
        for i in range(n):
            cli.sendto(b"x" * 100, ("198.18.0.2", 9999))
            if i % 50 == 49:  # keep the receive buffer from overflowing (that would look like loss)
                got += _drain(srv)
        time.sleep(0.1)
        got += _drain(srv)
    return 1 - got / n


def _drain(sock: socket.socket) -> int:
    count = 0
    while True:
        try:
            sock.recvfrom(2048)
        except BlockingIOError:
            return count
        count += 1


@pytest.mark.root
def test_loss_and_rate_are_measured_as_configured(no_leftovers: None) -> None:
    root_qdiscs = subprocess.run(["tc", "qdisc", "show"], capture_output=True, text=True).stdout
    with Lab(standard_topology("full-cone", "open"), coturn=False) as lab:
        assert _loss(lab) < 0.01
        impair.apply(lab.netns("nat-a"), Impairment(loss_pct=20))
        assert 0.12 < _loss(lab) < 0.28  # 2000 draws: sigma is under 1 %
    with Lab(standard_topology("full-cone", "open"), coturn=False) as lab:
        assert rate_kbit(lab, 9998) > 4000  # unshaped, the offered 8 Mbit/s gets through
        impair.apply(lab.netns("nat-a"), Impairment(rate_kbit=2000))
        assert 1400 < rate_kbit(lab, 9998) < 2300
    assert subprocess.run(["tc", "qdisc", "show"], capture_output=True, text=True).stdout == root_qdiscs
