"""Test-only pause points: with NETSIM_PAUSE_AT=<phase>[,<phase>...] a netsim process stops at each named
phase and waits for a signal, so a fault test can deliver SIGINT/SIGTERM/SIGKILL in exactly that phase
instead of guessing. Naming two phases (`negotiation,teardown`) lets a test interrupt a run and then
interrupt its teardown again.

Unset (always, outside tests) a pause point costs one environment lookup.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable

PAUSE_ENV = "NETSIM_PAUSE_AT"
PHASES = ("imports", "lab-build", "coturn-start", "negotiation", "teardown")


def pause_point(phase: str, until: Callable[[], bool] | None = None) -> None:
    """Stop here when NETSIM_PAUSE_AT names this phase.

    Without `until`, a signal handler that raises ends the wait. With it (where signals are held rather than
    raised, as during teardown) the wait ends as soon as `until()` is true.
    """
    names = os.environ.get(PAUSE_ENV)
    if not names or phase not in names.split(","):
        return
    print(f"netsim: paused at {phase} (pid {os.getpid()})", file=sys.stderr, flush=True)
    while until is None or not until():
        if until is None:
            signal.pause()
        else:
            time.sleep(0.01)  # a held signal runs its handler and ends the sleep early
