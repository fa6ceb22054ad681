"""The lab registry: one entry per lab under /run/netsim/<lab>/lab.json, and removal of labs by entry.

An entry names the lab's namespaces and the process that owns it (pid plus that process's start time, so a
reused pid is not taken for a live owner). `cleanup` removes labs whose owner died, except those kept on
purpose (`netsim up`); `remove` takes down any one lab by its entry. `NETSIM_RUNTIME_DIR` moves the registry
(tests use a temporary directory).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from netsim.errors import InputError
from netsim.lab import netns

RUNTIME_ENV = "NETSIM_RUNTIME_DIR"
RUNTIME_DIR = Path(os.environ.get(RUNTIME_ENV, "/run/netsim"))
ENTRY_FILE = "lab.json"
LAB_ID = re.compile(r"ns([0-9a-f]+)[0-9a-f]{4}")  # ns<owner pid in hex><4 random hex digits>


class LabError(RuntimeError):
    """A lab that cannot be built or used here (a service that did not start, a bridge that did not
    forward); the message names the lab and what is wrong."""


class LabInputError(LabError, InputError):
    """A lab, node or runtime directory that does not exist or cannot be used as given; exit 2."""


def lab_dir(lab_id: str, runtime_dir: Path | None = None) -> Path:
    """The lab's runtime directory: its registry entry and its services' files (coturn config, logs)."""
    return (runtime_dir or RUNTIME_DIR) / lab_id


def ensure_runtime_dir(directory: Path) -> None:
    """Make the registry directory, or say in one line why it cannot be used."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        not_dir = isinstance(e, (FileExistsError, NotADirectoryError))
        why = "a file, not a directory" if not_dir else f"cannot use it as a directory ({e.strerror})"
        raise LabInputError(f"{RUNTIME_ENV} {str(directory)!r}: {why}") from None


def write_entry(directory: Path, info: dict[str, Any], *, namespaces: Iterable[str], keep: bool) -> None:
    """Register (or update) a lab owned by this process; `info` is `Lab.describe()`. Atomic: readers never
    see half an entry."""
    entry = {
        **info,
        "owner_pid": os.getpid(),
        "owner_start": _proc_start(os.getpid()),
        "keep": keep,
        "namespaces": list(namespaces),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    tmp = directory / f"{ENTRY_FILE}.tmp"
    tmp.write_text(json.dumps(entry, indent=2))
    tmp.replace(directory / ENTRY_FILE)


def registered(runtime_dir: Path | None = None) -> list[dict[str, Any]]:
    """Every readable entry, sorted by lab id (an entry being written or removed is skipped)."""
    entries = []
    for path in sorted((runtime_dir or RUNTIME_DIR).glob(f"*/{ENTRY_FILE}")):
        try:
            entries.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return entries


def lookup(lab_id: str, runtime_dir: Path | None = None) -> dict[str, Any]:
    """The entry of lab `lab_id`; LabError naming the running labs if there is none."""
    entries = registered(runtime_dir)
    for entry in entries:
        if entry["lab"] == lab_id:
            return entry
    running = ", ".join(e["lab"] for e in entries) or "none"
    raise LabInputError(f"no lab {lab_id!r} (running labs: {running})")


def owner_alive(entry: dict[str, Any]) -> bool:
    """Is the process that built the lab still running (same pid and the same start time)?"""
    start = _proc_start(int(entry["owner_pid"]))
    return start is not None and start == entry.get("owner_start")


def remove(entry: dict[str, Any], runtime_dir: Path | None = None) -> None:
    """Take a registered lab down: its processes, its namespaces and its runtime directory.

    Only namespaces named `<lab>-...` are touched, whatever else a damaged entry lists.
    """
    lab_id = str(entry["lab"])
    names = [str(n) for n in entry["namespaces"] if str(n).startswith(f"{lab_id}-")]
    discard(names, lab_dir(lab_id, runtime_dir))


def cleanup(all_labs: bool = False, runtime_dir: Path | None = None) -> list[str]:
    """Remove labs whose owner died (not those kept by `netsim up`); with all_labs, every netsim lab.

    Returns the ids of the labs removed.
    """
    removed = []
    for entry in registered(runtime_dir):
        if all_labs or (not entry.get("keep") and not owner_alive(entry)):
            remove(entry, runtime_dir)
            removed.append(str(entry["lab"]))
    return removed + _remove_unlisted(runtime_dir or RUNTIME_DIR)


def _remove_unlisted(root: Path) -> list[str]:
    """Remove lab directories without an entry whose owner (the pid in the id) is gone.

    A lab writes its entry right after claiming its directory and before it makes any namespace, so such a
    directory (its owner killed in between) holds nothing else to remove. A live pid is left alone: it may
    be writing its entry right now, or be a reused pid (then the directory waits for a later cleanup).
    """
    removed = []
    for directory in sorted(root.glob("ns*")):
        match = LAB_ID.fullmatch(directory.name)
        if not match or not directory.is_dir() or (directory / ENTRY_FILE).exists():
            continue
        if Path(f"/proc/{int(match.group(1), 16)}").exists():
            continue
        shutil.rmtree(directory, ignore_errors=True)
        removed.append(directory.name)
    return removed


def discard(namespaces: Iterable[str], directory: Path) -> None:
    """SIGKILL whatever still runs in the namespaces, delete them, and remove the lab's directory."""
    names = list(namespaces)
    _wait_gone(kill_processes_in(names))
    for name in names:
        if netns.exists(name):
            netns.delete(name)
    # A file created while the tree is being removed (a crowd's session thread noting its peer's end, a
    # service's last line) makes one pass fail: try again for a moment.
    deadline = time.monotonic() + 1.0
    shutil.rmtree(directory, ignore_errors=True)
    while directory.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
        shutil.rmtree(directory, ignore_errors=True)


def _wait_gone(pids: Iterable[tuple[int, str | None]], within_s: float = 2.0) -> None:
    """Wait (briefly) until killed processes have exited: until then they may still write into the lab's
    directory. A zombie has exited; a pid with another start time is someone else's."""
    deadline = time.monotonic() + within_s
    left = set(pids)
    while left and time.monotonic() < deadline:
        left = {(pid, start) for pid, start in left if start is not None and _alive(pid, start)}
        if left:
            time.sleep(0.02)


def _alive(pid: int, start: str) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0] != "Z" and fields[19] == start


def kill_processes_in(namespaces: Iterable[str]) -> list[tuple[int, str | None]]:
    """SIGKILL every process (but this one) whose network namespace is one of these live namespaces; the
    killed pids with their start times."""
    killed: list[tuple[int, str | None]] = []
    with held_open(namespaces) as wanted:
        if not wanted:
            return killed
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                st = os.stat(f"/proc/{pid}/ns/net")
                if (st.st_dev, st.st_ino) in wanted:
                    start = _proc_start(int(pid))
                    os.kill(int(pid), signal.SIGKILL)
                    killed.append((int(pid), start))
            except OSError:
                continue
    return killed


@contextlib.contextmanager
def held_open(namespaces: Iterable[str]) -> Iterator[set[tuple[int, int]]]:
    """The (st_dev, st_ino) identities of those namespaces whose bind mount exists, valid inside the block.

    Inode numbers are reused as soon as a namespace is freed, so an identity is only good while the
    namespace is known to be alive: each one is opened here and held open (which keeps it alive) until the
    block ends. A name without a bind mount (a plain file left in /run/netns) is not a namespace and is left
    out, as is one that is gone.
    """
    nsfs = os.stat("/proc/self/ns/net").st_dev
    fds = []
    wanted = set()
    try:
        for name in namespaces:
            try:
                fd = os.open(netns.path(name), os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue
            fds.append(fd)
            st = os.fstat(fd)
            if st.st_dev == nsfs:
                wanted.add((st.st_dev, st.st_ino))
        yield wanted
    finally:
        for fd in fds:
            os.close(fd)


def _proc_start(pid: int) -> str | None:
    """Process start time (field 22 of /proc/PID/stat): tells a live owner from a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]
