"""Which lab a suite cell runs in: one kept per worker across the cells it can serve, or one of its own.

A worker (a pytest-xdist worker, a `-j N` suite worker, a serial run) keeps one lab and the browsers
started in it. A cell whose topology has the kept lab's shape (netsim.lab.reset.same_shape: only NAT presets
differ; no carriers, impairments or other IP mode) runs in it after a reset (rules swapped, conntrack and
neighbours flushed, coturn restarted, signaling idle), with new peers (new RTCPeerConnections in the kept
browsers). Isolation comes first:

- a cell with network events or a capture (--pcap), or whose topology cannot be reset into, gets a lab of
  its own, torn down after it, and its own browsers (closed with it); the kept lab waits meanwhile;
- after a cell that failed, was inconclusive, violated its expectation or raised, the kept lab and its
  browsers are dropped: the next cell gets a fresh lab and fresh browsers;
- a retry (an attempt after an inconclusive one) always gets a fresh lab and fresh browsers, which the
  worker then keeps.

Every record says which it was (`lab_use`: kept or not, the cells the lab served, the reset's time).
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from netsim.records import LabUse, ResultRecord
from netsim.suite.scenario import Scenario
from netsim.vocab import BROWSERS, FAILED, INCONCLUSIVE, VIOLATED

if TYPE_CHECKING:
    from netsim.lab.lab import Lab
    from netsim.peers.launcher import Launcher


def keepable(scn: Scenario, own: bool = False) -> bool:
    """Whether the cell may run in a kept lab: no events, no capture (`own`), a shape a lab can be reset
    into."""
    from netsim.lab.reset import resettable

    return not own and not scn.options.events and resettable(scn.topology)


def shape(scn: Scenario) -> str:
    """A short name for the lab a cell needs, equal for cells one kept lab can serve ("" when the cell
    needs a lab of its own): what schedulers group cells by."""
    from netsim.lab.topology import plan

    if not keepable(scn):
        return ""
    nodes = plan(scn.topology)
    text = repr((scn.topology.servers, scn.topology.ipv6, sorted(nodes.items())))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


AFFINITY = 0.5  # a worker takes a cell of its kept lab's shape if it is at least this share as long


def prefer(kept: str, other: str, cost_s: float, longest_s: float) -> bool:
    """Whether a worker whose kept lab has shape `kept` should take a cell of shape `other` lasting
    `cost_s` before the longest pending one (`longest_s`): its lab serves it and it is nearly as long
    (both schedulers: netsim.suite.runner for -j, netsim.suite.shard for pytest-xdist)."""
    return bool(kept) and other == kept and cost_s >= AFFINITY * longest_s


def clean(record: ResultRecord) -> bool:
    """Whether a cell left its lab as a passing session does: it did not fail, was not made inconclusive,
    violated nothing and no part of the lab broke (the next cell may reuse the lab)."""
    judged: Any = record.get("load") or {}
    return not (
        record.get("verdict") == FAILED
        or judged.get(INCONCLUSIVE)
        or record.get("infrastructure")
        or record.get("outcome") in (VIOLATED, INCONCLUSIVE)
    )


class Keeper:
    """A worker's kept lab and browsers; `with Keeper(launcher) as k:` tears both down at the end.
    `enabled=False` gives every cell a fresh lab (the comparison runs)."""

    def __init__(self, launcher: Launcher, enabled: bool = True) -> None:
        self.launcher = launcher
        self.enabled = enabled
        self.lab: Lab | None = None
        self.cells = 0
        self.dirty = False
        self.stacks: set[str] = set()  # browser stacks whose pools keep their browsers
        self._exit = contextlib.ExitStack()

    def __enter__(self) -> Keeper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()

    @contextlib.contextmanager
    def lab_for(self, scn: Scenario, own: bool = False, fresh: bool = False) -> Iterator[tuple[Lab, LabUse]]:
        """The lab this cell runs in and how (kept or built); `own`: the cell needs a lab of its own (a
        capture); `fresh`: a freshly built one, kept afterwards (a retry)."""
        if not (self.enabled and keepable(scn, own)):
            yield from self._own(scn)
            return
        if fresh:
            self.discard()
        use = self._ready(scn)
        assert self.lab is not None
        self._keep_browsers(scn)
        try:
            yield self.lab, use
        except BaseException:
            self.discard()
            raise

    def _own(self, scn: Scenario) -> Iterator[tuple[Lab, LabUse]]:
        from netsim.lab.lab import Lab

        with Lab(scn.topology) as lab:
            try:
                yield lab, {"kept": False, "cells": 1, "reset_s": None}
            finally:
                self._drop_browsers(lab.id)  # pools that keep would hold them past their lab

    def _ready(self, scn: Scenario) -> LabUse:
        """Reset the kept lab into the cell's topology, or build a fresh one."""
        from netsim.lab import reset
        from netsim.lab.lab import Lab, LabError

        lab = self.lab
        if lab is not None and not self.dirty and reset.same_shape(lab.topology, scn.topology):
            t0 = time.perf_counter()
            try:
                reset.reset(lab, scn.topology)
            except (LabError, OSError, RuntimeError):
                self.discard()  # a lab that cannot be reset is not reused
            else:
                self.cells += 1
                return {"kept": True, "cells": self.cells, "reset_s": round(time.perf_counter() - t0, 4)}
        self.discard()
        self.lab = self._exit.enter_context(Lab(scn.topology))
        self.cells = 1
        return {"kept": False, "cells": 1, "reset_s": None}

    def _keep_browsers(self, scn: Scenario) -> None:
        for stack in {scn.options.peer_a, scn.options.peer_b} & set(BROWSERS):
            pool = getattr(self.launcher.adapter(stack), "pool", None)
            if pool is not None:
                pool.keep = True
                self.stacks.add(stack)

    def _drop_browsers(self, prefix: str = "") -> None:
        for stack in self.stacks:
            pool = getattr(self.launcher.adapter(stack), "pool", None)
            if pool is not None:
                pool.drop(prefix)

    def after(self, record: ResultRecord) -> None:
        """What a finished cell says about the lab it leaves: one that did not end clean is not reused."""
        self.dirty = self.dirty or not clean(record)

    def discard(self) -> None:
        """Drop the kept lab and its browsers (the next cell builds a fresh one)."""
        if self.lab is not None:
            self._drop_browsers(self.lab.id)
        self._exit.close()
        self._exit = contextlib.ExitStack()
        self.lab = None
        self.cells = 0
        self.dirty = False
