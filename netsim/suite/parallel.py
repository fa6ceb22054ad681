"""Sessions in worker processes (`-j N`): who runs what, how many browsers at once, and how a run ends.

Each worker is a spawned process (a clean interpreter: no inherited locks or threads) with its own peer
launcher, talking to this process over its own pipe: a task goes down, a `Done` comes back. Pipes rather
than multiprocessing queues: a queue's feeder thread blocks for good on a pipe whose reader died (Ctrl-C
used to hang a parallel run that way), and its semaphores leak on SIGTERM.

The scheduler hands the longest pending task to an idle worker, holding back a task with browsers while
`max_browsers` are already in flight (a Chromium side costs a core and ~0.3 GiB to start; an aiortc side a
few MiB), so aiortc sessions run wider than browser sessions.

Interrupts: Ctrl-C reaches the whole process group, so workers ignore SIGINT and this process decides.
On SIGINT or SIGTERM it asks every busy worker to stop (SIGTERM: its lab tears down, its launcher ends its
peers and browsers), waits a few seconds, and raises KeyboardInterrupt; records already written stay.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Generator
from multiprocessing.connection import Connection, wait
from typing import Any

STOP_GRACE_S = 20.0  # a busy worker's lab teardown after SIGTERM (seconds; usually under 2)
POLL_S = 1.0


class WriteStop(Exception):
    """A worker could not write the run's records (a full disk): the run stops; the message names the path."""


_stopping = threading.Event()


def _term_as_exit(signum: int, frame: object) -> None:
    _stopping.set()
    raise SystemExit(128 + signum)


def _forward_to_main_thread() -> None:
    """Make SIGTERM act in the main thread even when the kernel hands it to another one.

    A process-directed signal goes to any thread that does not block it; Python runs its handler in the
    main thread, but only once that thread runs bytecode again, and a main thread blocked in a read or a
    lock with a long timeout (a session waiting for its peers) would not, for tens of seconds. The C-level
    handler writes the signal's number to the wakeup fd from whichever thread got it; a watcher thread
    then signals the main thread itself, whose blocking call returns, so the handler runs.
    """
    r, w = os.pipe()
    os.set_blocking(w, False)
    signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    main = threading.main_thread().ident
    assert main is not None

    def watch() -> None:
        while data := os.read(r, 64):
            if signal.SIGTERM in data and not _stopping.wait(0.2):  # the handler has not run by now
                signal.pthread_kill(main, signal.SIGTERM)

    threading.Thread(target=watch, name="signal-forward", daemon=True).start()


def worker_main(conn: Connection, work: Callable[[Any, Any], Any], context: Any, keep: bool = True) -> None:
    """A worker: `work(task, (keeper, context))` for every task on the pipe until None, with the worker's
    launcher and kept lab (netsim.suite.keep; `keep` False: a fresh lab per task); results go back on it.
    An OSError from writing the records comes back as ("write-error", text) and ends the worker."""
    from netsim.peers.launcher import Launcher
    from netsim.suite.keep import Keeper

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _term_as_exit)
    _forward_to_main_thread()
    with (
        contextlib.suppress(EOFError, OSError, SystemExit),
        Launcher() as launcher,
        Keeper(launcher, keep) as k,
    ):
        while (task := conn.recv()) is not None:
            conn.send(work(task, (k, context)))
    # Everything it made is gone (labs torn down, launcher closed): skip the interpreter's finalization,
    # whose garbage collection took 5-20 s in workers on a loaded machine and held up Ctrl-C.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def pick(
    pending: list[Any],
    browsers: Callable[[Any], int],
    in_flight: int,
    cap: int,
    near: Callable[[Any, Any], bool] | None = None,
) -> int | None:
    """Index of the first (longest) pending task that fits under the browser cap; a task with browsers
    always fits when none are in flight (else a cap below a session's two browsers would stall). With
    `near`, a later fitting task that is near(first, task) (the worker's kept lab serves it, and it is
    nearly as long) comes first."""
    fits = [
        i
        for i, task in enumerate(pending)
        if (need := browsers(task)) == 0 or in_flight == 0 or in_flight + need <= cap
    ]
    if not fits:
        return None
    if near is not None:
        return next((i for i in fits if near(pending[fits[0]], pending[i])), fits[0])
    return fits[0]


def run_parallel(
    tasks: list[Any],
    work: Callable[[Any, Any], Any],
    context: Any,
    jobs: int,
    browsers: Callable[[Any], int],
    max_browsers: int,
    keep: bool = True,
    near: Callable[[Any, Any, Any], bool] | None = None,
) -> Generator[Any, None, None]:
    """Yield each task's result as workers finish them (`tasks` longest first). Workers that `keep` their
    labs keep their browsers too: a browser starts once per worker, so the cap on browsers in flight
    (which is about start-ups) is lifted, and `near(last, first, task)` says which task a worker whose
    last task was `last` takes before `first`, the longest (netsim.suite.runner.near: same lab shape)."""
    ctx = multiprocessing.get_context("spawn")
    workers: list[tuple[Any, Connection]] = []
    max_browsers = max(max_browsers, 2 * jobs) if keep else max_browsers
    for _ in range(min(jobs, len(tasks))):
        here, there = ctx.Pipe()
        proc = ctx.Process(target=worker_main, args=(there, work, context, keep), daemon=True)
        proc.start()
        there.close()
        workers.append((proc, here))
    busy: dict[int, Any] = {}  # worker index -> its task
    last: dict[int, Any] = {}  # worker index -> the last task it was given
    pending = list(tasks)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        while pending or busy:
            _dispatch(workers, (busy, last), pending, browsers, max_browsers, near if keep else None)
            ready = wait([conn for i, (_, conn) in enumerate(workers) if i in busy], timeout=POLL_S)
            for i, (proc, conn) in enumerate(workers):
                if conn not in ready or i not in busy:
                    continue
                try:
                    item = conn.recv()
                except (EOFError, OSError):
                    raise RuntimeError(f"worker {proc.pid} died running {busy[i]!r}") from None
                del busy[i]
                if isinstance(item, tuple) and item and item[0] == "write-error":
                    raise WriteStop(item[1])
                yield item
    except BaseException:
        _stop(workers, busy)
        raise
    else:
        _stop(workers, {})
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _dispatch(
    workers: list[tuple[Any, Connection]],
    given: tuple[dict[int, Any], dict[int, Any]],
    pending: list[Any],
    browsers: Callable[[Any], int],
    cap: int,
    near: Callable[[Any, Any, Any], bool] | None,
) -> None:
    busy, last = given
    for i, (proc, conn) in enumerate(workers):
        if i in busy or not pending or not proc.is_alive():
            continue
        in_flight = sum(browsers(t) for t in busy.values())
        before = last.get(i)
        close = None if near is None or before is None else functools.partial(near, before)
        chosen = pick(pending, browsers, in_flight, cap, close)
        if chosen is None:
            return
        busy[i] = last[i] = pending.pop(chosen)
        conn.send(busy[i])


def _stop(workers: list[tuple[Any, Connection]], busy: dict[int, Any]) -> None:
    """Idle workers get their None; busy ones SIGTERM (their lab tears down). Then all are joined; one that
    does not end within STOP_GRACE_S is killed (its launcher's peers end with its pipe)."""
    for i, (proc, conn) in enumerate(workers):
        if i in busy and proc.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
        else:
            with contextlib.suppress(OSError, ValueError):
                conn.send(None)
    for proc, conn in workers:
        proc.join(timeout=STOP_GRACE_S)
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=5)
        conn.close()


# --- how wide a run goes on this machine (`-j auto`, `-n auto`) ---

SESSION_GIB = 0.25  # an aiortc session: its lab, four peer processes, coturn's share (peak ~0.1 GiB)
BROWSER_GIB = 0.5  # a Chromium side at start (130-390 MiB measured, docs/peers.md) with headroom
SESSIONS_PER_CORE = 2  # an aiortc session mostly waits for the network (a failing pairing: its deadline)
KEPT_BROWSERS = 2  # a worker that keeps its lab keeps a browser per host of the standard lab


def cores() -> int:
    """CPUs this process may run on (its affinity, not the machine's count)."""
    return len(os.sched_getaffinity(0))


def available_gib() -> float:
    """MemAvailable from /proc/meminfo, in GiB (8 when it cannot be read)."""
    try:
        for line in open("/proc/meminfo", encoding="ascii"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        pass
    return 8.0


def auto_jobs() -> tuple[int, int]:
    """(sessions at once, browsers in flight) for this machine: two sessions per core, one browser per core
    (a browser's start takes a core for about a second), both within the memory available; every worker
    may keep KEPT_BROWSERS browsers alive (netsim.suite.keep), which counts against it."""
    n, gib = cores(), available_gib()
    jobs = max(1, min(SESSIONS_PER_CORE * n, int(gib / (SESSION_GIB + KEPT_BROWSERS * BROWSER_GIB))))
    browsers = max(1, min(n, int(gib / BROWSER_GIB)))
    return jobs, browsers
