"""The Chromium page's ICE restart after a move (root): a host leaves its site for another one mid-call.

The move kills the moved side's signaling WebSocket without a sound (its TCP connection's source address is
gone). Moving a (impolite, restarts): its restart offer and the candidates trickled after it must still reach
b, or the call comes back only over the relays (the old relay allocations answer checks without any
signaling). Moving b (polite): b must reopen its signaling by itself, or a's restart offer never reaches it.
Chromium missing: the test fails (not skips); .ci/setup installs it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from netsim.lab.events import Event


def _moved_call(host: str) -> dict[str, Any]:
    """A held chromium x chromium call (port-restricted cones everywhere) in which `host` moves to nat-c 1 s
    in."""
    from netsim.lab.lab import Lab
    from netsim.lab.topology import from_dict
    from netsim.session.options import SessionOptions
    from netsim.session.run import run_session

    sites = [{"name": f"nat-{h}", "nat": "port-restricted-cone", "hosts": [h]} for h in "abc"]
    opts = SessionOptions(
        peer_a="chromium",
        peer_b="chromium",
        hold_s=12.0,
        needs_relay=False,
        deadline_s=8.0,  # two browsers on a loaded machine
        events=(Event(at_s=1.0, action="move", host=host, site="nat-c"),),
    )
    with Lab(from_dict({"site": sites})) as lab:
        rec = dict(run_session(lab, opts))
        rec["nat_c_wan"] = lab.address("nat-c")
    return rec


@pytest.mark.root
@pytest.mark.usefixtures("require_chromium", "no_leftovers")
@pytest.mark.parametrize("moved", ["a", "b"])
def test_restart_after_a_move_reconnects_directly_through_the_new_site(moved: str) -> None:
    rec = _moved_call(moved)
    other = "b" if moved == "a" else "a"
    call = rec["call"]
    print(json.dumps({k: call.get(k) for k in ("outcome", "recovery_s", "events")}, default=str))
    [event] = call["events"]
    assert event["error"] is None and event["detail"]["address"] == "10.3.0.200"
    assert call["outcome"] == "recovered", call

    # a (impolite) restarted once and that restart connected; the moved side reopened its signaling.
    [restart] = call["a"]["restarts"]
    assert restart["connected"] is not None and restart["connected"] > restart["t"] > event["t"]
    assert call["b"]["restarts"] == []
    assert any(n["what"] == "signaling" and n["state"] == "reconnected" for n in rec[moved]["states"])
    # The other side got the moved side's new candidates, so the new path is direct, not relayed.
    last = rec[moved]["pairs"][-1]
    assert last["local_type"] != "relay" and last["remote_type"] != "relay", rec[moved]["pairs"]
    assert str(last["local"]).startswith(f"{rec['nat_c_wan']}:"), rec[moved]["pairs"]
    assert rec["verdict"] == "direct"
    remote = rec[other]["candidates"]["remote"]
    assert any(" 10.3.0.200 " in c for c in remote), remote
