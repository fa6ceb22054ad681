"""Network namespace primitives, done in-process through libc (no `ip netns` fork per call).

Namespaces are bind-mounted under /run/netns like `ip netns add` does, so `ip netns exec`, `nsenter` and
`ip -n` all see them. setns(2) only moves the calling thread, so `entered()` is safe to use from one thread
while others keep running in the root namespace.

Links, addresses and routes inside a namespace are netsim.lab.rtnl's.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

NETNS_RUN_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
MS_REC = 0x4000
MS_BIND = 0x1000
MS_SHARED = 1 << 20
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _setns(fd: int) -> None:
    _check(_libc.setns(fd, CLONE_NEWNET), "setns")


def path(name: str) -> Path:
    return NETNS_RUN_DIR / name


def exists(name: str) -> bool:
    return path(name).exists()


def list_names() -> list[str]:
    try:
        return sorted(p.name for p in NETNS_RUN_DIR.iterdir())
    except FileNotFoundError:
        return []


def _ensure_run_dir() -> None:
    """Make /run/netns a shared mount point, as iproute2 does, so bind mounts propagate."""
    NETNS_RUN_DIR.mkdir(parents=True, exist_ok=True)
    flags = MS_SHARED | MS_REC
    if _libc.mount(b"none", bytes(NETNS_RUN_DIR), None, flags, None) == 0:
        return
    if ctypes.get_errno() != errno.EINVAL:
        _check(-1, "mount --make-shared /run/netns")
    run_dir = bytes(NETNS_RUN_DIR)
    _check(_libc.mount(run_dir, run_dir, b"none", MS_BIND | MS_REC, None), "bind /run/netns")
    _check(_libc.mount(b"none", run_dir, None, flags, None), "mount --make-shared /run/netns")


def create(name: str) -> None:
    """Create a named namespace; fails with FileExistsError if the name is taken (never reuses one)."""
    if not NETNS_RUN_DIR.is_dir() or not os.path.ismount(NETNS_RUN_DIR):
        _ensure_run_dir()
    target = path(name)
    os.close(os.open(target, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o444))
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        _check(_libc.unshare(CLONE_NEWNET), "unshare")
        try:
            src = b"/proc/thread-self/ns/net"
            _check(_libc.mount(src, bytes(target), b"none", MS_BIND, None), f"bind {target}")
        finally:
            _setns(own)
    except OSError:
        target.unlink(missing_ok=True)
        raise
    finally:
        os.close(own)


def delete(name: str) -> None:
    """Unmount and remove a namespace; the kernel frees it once no process or socket holds it."""
    target = path(name)
    if _libc.umount2(bytes(target), MNT_DETACH) != 0 and ctypes.get_errno() not in (
        errno.EINVAL,
        errno.ENOENT,
    ):
        _check(-1, f"umount {target}")
    target.unlink(missing_ok=True)


def enter(name: str) -> None:
    """Move the calling thread into namespace `name` for good (a forked peer's whole life)."""
    fd = os.open(path(name), os.O_RDONLY)
    try:
        _setns(fd)
    finally:
        os.close(fd)


@contextmanager
def entered(name: str) -> Iterator[None]:
    """Run the body with the calling thread inside namespace `name`."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(path(name), os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(target)
        os.close(own)


def socket_in(
    name: str, family: int = socket.AF_INET, kind: int = socket.SOCK_DGRAM, proto: int = 0
) -> socket.socket:
    """A socket that lives in namespace `name` (sockets keep the namespace they were made in)."""
    with entered(name):
        return socket.socket(family, kind, proto)


def write_sysctl(name: str, key: str, value: str) -> None:
    """Set a per-namespace sysctl (net.*) from inside the namespace; the root namespace is untouched."""
    write_sysctls(name, {key: value})


def write_sysctls(name: str, values: Mapping[str, str]) -> None:
    """Set several per-namespace sysctls with one entry into the namespace (/proc/sys/net is resolved in the
    namespace of the thread that opens it)."""
    with entered(name):
        for key, value in values.items():
            Path("/proc/sys", *key.split(".")).write_text(value)


def command(name: str, argv: Sequence[str]) -> list[str]:
    """argv prefixed so that it runs in namespace `name` (nsenter only switches the network namespace)."""
    return ["nsenter", f"--net={path(name)}", "--", *argv]


def run(name: str, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    return subprocess.run(command(name, argv), **kwargs)


def end(proc: subprocess.Popen[Any], grace_s: float = 2.0) -> None:
    """End a process we started: SIGTERM, and SIGKILL if it has not exited within `grace_s` (by pid)."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def popen(name: str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
    return subprocess.Popen(command(name, argv), **kwargs)
