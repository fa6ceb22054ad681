"""Progress of a run in the terminal: `[n/N]`, elapsed, ETA and counts by verdict and outcome.

On a terminal it is a rich live bar with one line per finished session above it; anywhere else (CI logs, a
pipe) it degrades to one plain line per session, so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class RunProgress:
    """Shows sessions as they finish; use as a context manager around the run."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = total
        self.done = 0
        self.verdicts: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.started = time.monotonic()
        self.console = Console(file=stream or sys.stdout, highlight=False)
        self.live = self.console.is_terminal
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> RunProgress:
        if self.live:
            self._bar = Progress(
                TextColumn("[bold]sessions"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[counts]}"),
                console=self.console,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("run", total=self.total, counts="")
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(kind, exc, tb)

    def counts_text(self) -> str:
        """Verdicts, then the outcomes that need a look, e.g. 'direct 3 relay 1 | violated 1 unchecked 2'.
        A verdict is what the connection did (`failed` among them); an outcome what the check found."""
        text = " ".join(f"{name} {n}" for name, n in sorted(self.verdicts.items()))
        checks = {
            "violated": self.outcomes["violated"],
            "unchecked": self.outcomes["unchecked"],
            "inconclusive": self.outcomes["inconclusive"],
        }
        marks = " ".join(f"{name} {n}" for name, n in checks.items() if n)
        return f"{text} | {marks}" if marks else text

    def eta_s(self) -> float | None:
        if not self.done:
            return None
        elapsed = time.monotonic() - self.started
        return elapsed / self.done * (self.total - self.done)

    def session(self, line: str, verdict: str, outcome: str, detail: str | None = None) -> None:
        """One finished session: its line (and the mismatch detail, indented), then the bar moves on."""
        self.done += 1
        self.verdicts[verdict] += 1
        self.outcomes[outcome] += 1
        if self.live and self._bar is not None and self._task is not None:
            self._bar.console.print(line, markup=False, soft_wrap=True)
            if detail:
                self._bar.console.print("    " + detail.replace("\n", "\n    "), markup=False, soft_wrap=True)
            self._bar.update(self._task, advance=1, counts=self.counts_text())
            return
        elapsed = time.monotonic() - self.started
        eta = self.eta_s()
        eta_text = "-" if eta is None else f"{eta:.0f}s"
        status = f"elapsed {elapsed:.0f}s, ETA {eta_text}; {self.counts_text()}"
        self.console.print(f"[{self.done}/{self.total}] {line}  ({status})", markup=False, soft_wrap=True)
        if detail:
            self.console.print("    " + detail.replace("\n", "\n    "), markup=False, soft_wrap=True)
