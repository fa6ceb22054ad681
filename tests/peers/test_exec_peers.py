"""Peers users bring (`exec:COMMAND`, the generic process adapter): what netsim makes of their output and
records (no root), and a peer that prints garbage in a real lab: one clear line, exit 1, nothing left (root).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netsim.cli.common import peer_name, stacks
from netsim.lab import netns
from netsim.peers.process import record_from_stdout
from netsim.peers.protocol import NoRecord, accept_record, failed_record
from netsim.session.options import OptionsError, SessionOptions
from tests.peers.test_pion_stack import config

EXEC = "exec:./my-peer --fast"


def test_the_last_stdout_line_is_the_record() -> None:
    assert record_from_stdout(b'log line\n{"a": 1}\n\n', "exited with status 0") == {"a": 1}
    assert record_from_stdout(b"", "exited with status 3") == NoRecord(
        "no record on stdout (exited with status 3)"
    )
    garbage = record_from_stdout(b'{"a": 1}\nhello garbage\n', "stopped")
    assert garbage == NoRecord("the last stdout line is not JSON: 'hello garbage' (stopped)")


def test_a_peer_without_a_record_fails_its_side_naming_the_command() -> None:
    cfg = config()
    rec = accept_record(NoRecord("no record on stdout (exited with status 1)"), side="a", stack=EXEC, cfg=cfg)
    assert rec["state"] == "failed" and rec["stack"] == EXEC
    assert rec["reason"] == f"peer a ({EXEC}): no record on stdout (exited with status 1)"


def test_an_exec_peer_names_its_own_stack_but_not_another_user() -> None:
    cfg = config()
    own = {**failed_record(cfg, "my-stack", "gave up"), "state": "failed"}
    assert accept_record(own, side="b", stack=EXEC, cfg=cfg)["reason"] == "gave up"
    wrong_user = {**own, "user": "someone-else"}
    rec = accept_record(wrong_user, side="b", stack=EXEC, cfg=cfg)
    assert rec["reason"] == f"peer b ({EXEC}): user: expected 'a-test', got 'someone-else'"
    broken = {**own, "pairs": [{"t": 1.0}]}
    assert accept_record(broken, side="b", stack=EXEC, cfg=cfg)["reason"].startswith(
        f"peer b ({EXEC}): pairs[0].local_type: Field required"
    )
    # netsim's own stacks must name themselves.
    assert accept_record(own, side="a", stack="pion", cfg=cfg)["reason"] == (
        "peer a (pion): stack: expected 'pion', got 'my-stack'"
    )


def test_exec_names_in_options_and_on_the_command_line() -> None:
    assert SessionOptions(peer_a="exec:/opt/peer --x 'a b'", peer_b="pion").peer_a.startswith("exec:")
    with pytest.raises(OptionsError, match=r"peer_b: 'exec:  ' names no command"):
        SessionOptions(peer_b="exec:  ")
    with pytest.raises(OptionsError, match=r"peer_a: 'exec:x \"y': No closing quotation"):
        SessionOptions(peer_a='exec:x "y')
    with pytest.raises(OptionsError, match=r"peer_a: unknown value 'opera' \(choose from .*exec:COMMAND\)"):
        SessionOptions(peer_a="opera")
    assert peer_name("pion") == "pion" and peer_name("exec:peer") == "exec:peer"
    assert stacks("pion,exec:./p --x") == ("pion", "exec:./p --x")
    for bad in ("exec:", "safari"):
        with pytest.raises(Exception, match=r"exec:COMMAND"):
            peer_name(bad)


# --- a garbage-printing peer in a real lab (root) --------------------------------------------------------


@pytest.mark.root
def test_a_peer_printing_garbage_fails_with_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    """Its side fails naming the command and what was wrong; one line on stderr, exit 1; its process group
    (here a child it left sleeping) and the lab's namespaces are gone afterwards."""
    token = f"{secrets.randbelow(10**6):06d}"
    sleeper = f"sleep 60.{token}"
    command = f'exec:sh -c "{sleeper} & echo garbage-{token}"'
    prefix = f"np{token[:4]}"
    done = subprocess.run(
        [sys.executable, "-m", "netsim", "pair", "--peer-a", command, "--peer-b", "pion", "--no-needs-relay"],
        env={**os.environ, "NETSIM_LAB_PREFIX": prefix, "PYTHONPATH": str(Path.cwd())},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    want = f"netsim: peer a ({command}): the last stdout line is not JSON: 'garbage-{token}'"
    assert done.stderr.splitlines() == [f"{want} (exited with status 0)"], done.stderr
    assert "verdict: failed" in done.stdout
    time.sleep(0.2)
    left = [n for n in netns.list_names() if n.startswith(prefix)]
    assert not left, f"namespaces left behind: {left}"
    procs = subprocess.run(["pgrep", "-f", sleeper], capture_output=True, text=True, check=False)
    assert procs.stdout.strip() == "", f"the peer's child outlived it: {procs.stdout}"
