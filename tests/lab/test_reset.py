"""netsim.lab.reset: which topologies a live lab can be reset into, and that a reset leaves the lab as a
fresh build would (the new NAT behaviour, no conntrack entry, no learned neighbour, a restarted coturn)."""

from __future__ import annotations

import dataclasses
import time

import pytest

from netsim.lab import reset
from netsim.lab.impair import Impairment
from netsim.lab.nat import preset
from netsim.lab.registry import LabError
from netsim.lab.topology import Carrier, Site, Topology, standard_topology
from netsim.vocab import APDM, EIM


def test_same_shape_is_the_same_plan_without_carriers_or_impairments() -> None:
    cone = standard_topology("full-cone", "port-restricted-cone")
    assert reset.same_shape(cone, standard_topology("symmetric", "udp-blocked"))
    assert not reset.same_shape(cone, standard_topology("open", "port-restricted-cone"))  # a public LAN
    assert not reset.same_shape(cone, dataclasses.replace(cone, ipv6=True))
    # A dual-stack lab is never kept: the reset does not reload IPv6 firewalls (open vs apdf would leak).
    dual = standard_topology("full-cone", "port-restricted-cone", ipv6_a="dual", ipv6_b="dual")
    assert not reset.same_shape(dual, dual)
    assert not reset.same_shape(cone, dual)
    impaired = standard_topology("full-cone", "port-restricted-cone", impair_b=Impairment(loss_pct=5))
    assert not reset.same_shape(cone, impaired)
    layered = Topology(
        "mix",
        sites=(Site("nat-a", preset("full-cone"), ("a",), behind="cgn-a"), cone.sites[1]),
        carriers=(Carrier("cgn-a", preset("symmetric")),),
    )
    assert not reset.same_shape(layered, layered)


def _conntrack_count(ns: str) -> int:
    from netsim.lab.netns import run

    out = run(ns, ["conntrack", "-C"], capture_output=True, text=True)
    return int(out.stdout.strip() or 0)


def _learned_neighbours(ns: str) -> list[str]:
    from netsim.lab.netns import run

    out = run(ns, ["ip", "neigh", "show"], capture_output=True, text=True).stdout.splitlines()
    return [line for line in out if "PERMANENT" not in line and "NOARP" not in line]


@pytest.mark.root
def test_a_reset_lab_behaves_as_a_fresh_one_of_the_new_topology() -> None:
    from netsim.lab import probe
    from netsim.lab.lab import Lab

    with Lab(standard_topology("port-restricted-cone", "full-cone")) as lab:
        assert lab.coturn is not None
        server_ips = (lab.addresses("server")[0], lab.addresses("server")[1])

        def mapping() -> str | None:
            return probe.mapping_behaviour(lab.netns("a"), lab.netns("server"), server_ips)

        assert mapping() == EIM
        assert _conntrack_count(lab.netns("nat-a")) > 0
        assert _learned_neighbours(lab.netns("a"))
        coturn_pid = lab.coturn.process.pid if lab.coturn.process else None
        wanted = standard_topology("symmetric", "restricted-cone")
        t0 = time.perf_counter()
        steps = reset.reset(lab, wanted)
        took = time.perf_counter() - t0
        assert lab.topology is wanted
        assert _conntrack_count(lab.netns("nat-a")) == 0
        assert _conntrack_count(lab.netns("nat-b")) == 0
        for name in lab.namespaces.values():
            assert not _learned_neighbours(name), name
        assert lab.coturn.process is not None and lab.coturn.process.pid != coturn_pid
        assert set(steps) == {"signaling_s", "rules_s", "flush_s", "coturn_s"}
        assert took < 5.0, steps  # ~0.08 s on an idle machine (bench/suite.py --reset measures it)
        assert mapping() == APDM


@pytest.mark.root
def test_a_reset_refuses_another_shape_and_a_busy_signaling_server() -> None:
    from netsim.lab.lab import Lab
    from netsim.services.signaling import make_token
    from netsim.services.signaling_client import SignalingClient

    with Lab(standard_topology("full-cone", "full-cone")) as lab:
        with pytest.raises(LabError, match="shape"):
            reset.reset(lab, standard_topology("open", "full-cone"))
        url = lab.start_signaling()
        reset.reset(lab, standard_topology("symmetric", "full-cone"))  # idle: fine

        import asyncio

        async def hold_a_session() -> None:
            from netsim.lab import netns

            with netns.entered(lab.netns("a")):
                client = SignalingClient()
                await client.connect(url, "alice", make_token(lab.signaling_secret, "alice"))
            try:
                with pytest.raises(LabError, match="still holds 1 session"):
                    await asyncio.to_thread(reset.signaling_idle, lab, 0.3)
            finally:
                await client.close()

        asyncio.run(hold_a_session())
        reset.signaling_idle(lab)  # the session ended: idle again
