"""What keeps a lab whole while it is built and torn down: SIGINT/SIGTERM held over the steps that must not be
cut in half, and a few background threads (routers loading their rules) that never outlive the lab."""

from __future__ import annotations

import contextlib
import functools
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from netsim.lab import nftables


class Background:
    """Tasks run in a few threads while the `with` body goes on. On exit it waits for all of them (with
    SIGINT/SIGTERM held: no task may outlive the lab it works on) and raises the first task's error, in
    submission order, unless the body failed."""

    WORKERS = 8

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._futures: list[Future[None]] = []

    def submit(self, fn: Callable[..., None], *args: Any) -> None:
        if self._pool is None:
            nft_initialised()
            self._pool = ThreadPoolExecutor(self.WORKERS, thread_name_prefix="netsim-lab")
        self._futures.append(self._pool.submit(fn, *args))

    def __enter__(self) -> Background:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if self._pool is None:
            return
        with signals_held():
            self._pool.shutdown(wait=True)
        if exc_type is None:
            for future in self._futures:
                future.result()


@functools.cache
def nft_initialised() -> None:
    """libnftables sets up libxtables' globals in its first context, which is not thread-safe: make that
    first context here, on one thread, before routers load their rules in parallel."""
    lib = nftables._lib()
    if lib is not None:
        lib.nft_ctx_free(lib.nft_ctx_new(0))


HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def signals_held() -> Iterator[list[int]]:
    """Hold SIGINT/SIGTERM while the body runs (the list says which came), then let the first one act.

    Python-level handlers are swapped rather than the signal mask, because in a process with threads the
    kernel hands a process-directed signal to any thread that does not block it. Only the main thread can
    set handlers; elsewhere signals are not ours to hold and the body just runs.
    """
    held: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield held
        return
    previous = {s: signal.getsignal(s) for s in HELD_SIGNALS}
    ours = [s for s, handler in previous.items() if handler is not None]  # None: set outside Python
    for s in ours:
        signal.signal(s, lambda signum, frame: held.append(signum))
    try:
        yield held
    finally:
        for s in ours:
            signal.signal(s, previous[s])
        if held:
            signal.raise_signal(held[0])  # now the restored handler acts (raises, or ends the process)


def sigterm_as_exit() -> None:
    """SIGTERM behaves like Ctrl-C from the first lab on, so `with Lab(...)` cleans up on both.

    Only from the main thread (signal handlers live there), and only where nobody set a handler.
    """
    if threading.current_thread() is threading.main_thread():
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _raise_exit)


def _raise_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)
