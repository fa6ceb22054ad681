"""The Chromium page's ICE restart after a move (root): host a leaves its site for another one mid-call.

The move kills a's signaling WebSocket without a sound (its TCP connection's source address is gone): the
restart offer and the candidates trickled after it must still reach b, or the call either stays down or
comes back only over the relays (the old relay allocations answer checks without any signaling).
Chromium missing: the test fails (not skips); .ci/setup installs it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from netsim.lab.events import Event
from netsim.peers.browser import ChromiumError, chromium_binary


@pytest.fixture(scope="module")
def require_chromium() -> str:
    try:
        return chromium_binary()
    except ChromiumError as exc:
        pytest.fail(f"{exc}; .ci/setup installs it", pytrace=False)


def _moved_call() -> dict[str, Any]:
    """A held chromium x chromium call (port-restricted cones everywhere) in which a moves to nat-c 1 s in."""
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
        events=(Event(at_s=1.0, action="move", host="a", site="nat-c"),),
    )
    with Lab(from_dict({"site": sites})) as lab:
        rec = dict(run_session(lab, opts))
        rec["nat_c_wan"] = lab.address("nat-c")
    return rec


@pytest.mark.root
@pytest.mark.usefixtures("require_chromium", "no_leftovers")
def test_restart_after_a_move_reconnects_directly_through_the_new_site() -> None:
    rec = _moved_call()
    call = rec["call"]
    print(json.dumps({k: call.get(k) for k in ("outcome", "recovery_s", "events")}, default=str))
    [event] = call["events"]
    assert event["error"] is None and event["detail"]["address"] == "10.3.0.200"
    assert call["outcome"] == "recovered", call

    # a restarted once and that restart connected; its offer went over a fresh signaling connection.
    [restart] = call["a"]["restarts"]
    assert restart["connected"] is not None and restart["connected"] > restart["t"] > event["t"]
    assert {"what": "signaling", "state": "reconnected"} in [
        {"what": n["what"], "state": n["state"]} for n in rec["a"]["states"] if n["t"] > restart["t"] - 0.5
    ]
    # b got a's new candidates (the offer's or trickled ones), so the new path is direct, not relayed.
    last = rec["a"]["pairs"][-1]
    assert last["local_type"] != "relay" and last["remote_type"] != "relay", rec["a"]["pairs"]
    assert str(last["local"]).startswith(f"{rec['nat_c_wan']}:"), rec["a"]["pairs"]
    assert rec["verdict"] == "direct"
    assert any(" 10.3.0.200 " in c for c in rec["b"]["candidates"]["remote"]), rec["b"]["candidates"]
