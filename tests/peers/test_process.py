"""The generic process adapter (netsim/peers/process.py) with the protocol's reference program: the aiortc
peer as an external program (python -m netsim.peers.exec_peer), started in a host's namespace with its
config in NETSIM_PEER_CONFIG, its record the last line of stdout; SIGTERM ends it with a record within 2 s;
its process group is gone afterwards (root: real labs)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from netsim.lab.lab import Lab
from netsim.lab.topology import standard_topology
from netsim.peers.adapter import PeerPlace
from netsim.peers.browser import page_directory
from netsim.peers.launcher import Launcher
from netsim.peers.process import ProcessAdapter, ProcessSession
from netsim.peers.protocol import IceServer, PeerConfig, accept_record
from netsim.session.configs import peer_configs, user_names
from netsim.session.options import SessionOptions
from netsim.session.verdict import verdict, with_timelines

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("no_leftovers")]

EXEC_PEER = [sys.executable, "-m", "netsim.peers.exec_peer"]


def _configs(lab: Lab, opts: SessionOptions) -> tuple[dict[str, PeerPlace], dict[str, PeerConfig]]:
    from netsim.services.signaling import make_token

    url = lab.start_signaling(static_dir=page_directory())
    users = user_names()
    coturn = lab.coturn
    assert coturn is not None
    places = {s: PeerPlace(lab.netns(s), Path(lab.workdir), url, coturn.ca_file, False) for s in "ab"}
    ice: dict[str, list[IceServer]] = {s: coturn.ice_servers(opts.turn, users[s]) for s in "ab"}  # type: ignore[misc]
    tokens = {s: make_token(str(lab.signaling_secret), users[s]) for s in "ab"}
    cfgs = peer_configs(
        opts, users, signaling_url=url, tokens=tokens, ice_servers=ice, ca_file=coturn.ca_file
    )
    return places, cfgs


def _group_gone(session: ProcessSession) -> bool:
    try:
        os.killpg(session.proc.pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_an_external_peer_pairs_with_a_forked_one() -> None:
    opts = SessionOptions(deadline_s=8.0, needs_relay=False)
    with Lab(standard_topology("full-cone", "symmetric")) as lab, Launcher() as launcher:
        places, cfgs = _configs(lab, opts)
        external = ProcessAdapter("aiortc", EXEC_PEER)
        a = launcher.adapter("aiortc").open(places["a"]).run(cfgs["a"])
        b = external.open(places["b"]).run(cfgs["b"])
        ra = accept_record(a.wait(20), side="a", stack="aiortc", cfg=a.cfg)
        rb = accept_record(b.wait(20), side="b", stack="aiortc", cfg=b.cfg)
        ra, rb = with_timelines(ra, rb)
        assert (ra["state"], rb["state"]) == ("connected", "connected"), (ra["reason"], rb["reason"])
        assert verdict(ra, rb)[0] != "failed"
        assert rb["pairs"] and all(p["family"] == "ipv4" for p in rb["pairs"])
        assert _group_gone(b)
        config = b.directory / "config.json"
        assert oct(config.stat().st_mode & 0o777) == "0o600"  # it holds the token and TURN credentials
        external.close()


def test_sigterm_ends_an_external_peer_with_a_record_within_2_s() -> None:
    """The target never comes: stopped (SIGTERM) at once, it says bye, closes and prints its record."""
    opts = SessionOptions(deadline_s=30.0, needs_relay=False)
    with Lab(standard_topology("open", "open")) as lab:
        places, cfgs = _configs(lab, opts)
        external = ProcessAdapter("aiortc", EXEC_PEER)
        session = external.open(places["a"]).run(cfgs["a"])
        time.sleep(3.0)  # let it import and sign in
        t0 = time.monotonic()
        raw = session.wait(0)
        took = time.monotonic() - t0
        rec = accept_record(raw, side="a", stack="aiortc", cfg=session.cfg)
        assert rec["state"] == "failed" and rec["reason"] == "stopped", rec["reason"]
        assert took < 2.5, took
        assert _group_gone(session)


def test_a_program_that_prints_no_record_fails_its_peer_with_the_reason() -> None:
    opts = SessionOptions(deadline_s=3.0, needs_relay=False)
    with Lab(standard_topology("open", "open")) as lab:
        places, cfgs = _configs(lab, opts)
        broken = ProcessAdapter("pion", ["sh", "-c", "echo starting; echo 'not json'; exit 3"])
        session = broken.open(places["a"]).run(cfgs["a"])
        rec = accept_record(session.wait(10), side="a", stack="pion", cfg=session.cfg)
        assert rec["state"] == "failed"
        assert (
            rec["reason"]
            == "peer a (pion): the last stdout line is not JSON: 'not json' (exited with status 3)"
        )
        liar = ProcessAdapter("pion", ["sh", "-c", 'echo \'{"protocol": 1, "stack": "pion"}\''])
        session = liar.open(places["a"]).run(cfgs["a"])
        rec = accept_record(session.wait(10), side="a", stack="pion", cfg=session.cfg)
        assert rec["reason"] is not None and rec["reason"].startswith(
            "peer a (pion): version: Field required"
        )
