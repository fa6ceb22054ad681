"""Test-only pause points: with NETSIM_PAUSE_AT=<phase> a netsim process stops at that phase and waits for
a signal, so a fault test can deliver SIGINT/SIGTERM/SIGKILL in exactly that phase instead of guessing.

Unset (always, outside tests) a pause point costs one environment lookup.
"""

from __future__ import annotations

import os
import signal
import sys

PAUSE_ENV = "NETSIM_PAUSE_AT"
PHASES = ("imports", "lab-build", "coturn-start", "negotiation", "teardown")


def pause_point(phase: str) -> None:
    """Stop here when NETSIM_PAUSE_AT names this phase; a signal handler that raises ends the wait."""
    if os.environ.get(PAUSE_ENV) != phase:
        return
    print(f"netsim: paused at {phase} (pid {os.getpid()})", file=sys.stderr, flush=True)
    while True:
        signal.pause()
