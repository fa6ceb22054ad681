"""Load nftables rulesets inside a namespace through libnftables (the library behind `nft`), in-process.

Same parser and semantics as `nft -f`, without a fork and exec per ruleset; falls back to running `nft` in
the namespace where the library is missing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import re
import secrets
from dataclasses import dataclass

from netsim.lab import netns

# "<cmdline>:3:11-11: Error: syntax error, ..." (libnftables) or "/dev/stdin:3:11-11: ..." (nft -f -)
_LOCATED = re.compile(r"^\S*?:(\d+):(\d+)(?:-\d+)?: Error: (.*)$")
_UNLOCATED = re.compile(r"^(?:\S+: )?Error: (.*)$")


@dataclass(frozen=True)
class NftMessage:
    """One of nft's complaints: 1-based line and column in the text it was given (0 when it names none)."""

    line: int
    col: int
    text: str


class NftError(RuntimeError):
    """nft refused a ruleset; the message is nft's own, `messages` its complaints with their positions."""

    def __init__(self, output: str) -> None:
        super().__init__(output)
        self.messages = parse_errors(output)


def parse_errors(output: str) -> list[NftMessage]:
    """nft's error lines with their positions (the echoed source line and caret lines are skipped)."""
    found = []
    for line in output.splitlines():
        if located := _LOCATED.match(line):
            found.append(NftMessage(int(located[1]), int(located[2]), located[3].strip()))
        elif unlocated := _UNLOCATED.match(line):
            found.append(NftMessage(0, 0, unlocated[1].strip()))
    return found


@functools.cache
def _lib() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("nftables") or "libnftables.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    lib.nft_ctx_new.restype = ctypes.c_void_p
    lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
    lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
    lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
    lib.nft_run_cmd_from_filename.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.nft_ctx_set_dry_run.argtypes = [ctypes.c_void_p, ctypes.c_bool]
    return lib


def load(netns_name: str, ruleset: str) -> None:
    """Apply `ruleset` (nft -f syntax) in namespace `netns_name`; raise NftError with nft's message."""
    _run(netns_name, ruleset, dry_run=False)


def check(ruleset: str) -> None:
    """Validate `ruleset` as `nft -c` does, in a scratch namespace of this process (removed afterwards), so
    no lab and nothing in the root namespace is needed or touched; NftError with nft's message."""
    name = f"ns{os.getpid():x}{secrets.token_hex(2)}-nftcheck"
    netns.create(name)
    try:
        _run(name, ruleset, dry_run=True)
    finally:
        netns.delete(name)


def _run(netns_name: str, ruleset: str, *, dry_run: bool) -> None:
    lib = _lib()
    if lib is None:
        argv = ["nft", *(["-c"] if dry_run else []), "-f", "-"]
        out = netns.run(netns_name, argv, input=ruleset, capture_output=True, text=True)
        if out.returncode != 0:
            raise NftError(out.stderr.strip())
        return
    # The netlink socket libnftables opens lives in the namespace the thread is in when it runs.
    with netns.entered(netns_name):
        ctx = lib.nft_ctx_new(0)
        try:
            lib.nft_ctx_buffer_output(ctx)
            lib.nft_ctx_buffer_error(ctx)
            lib.nft_ctx_set_dry_run(ctx, dry_run)
            # From a file, not a buffer: nft 1.0.6 reports a buffer's errors with no line number and its
            # first line instead of the offending one. A memfd leaves nothing behind.
            fd = os.memfd_create("netsim-ruleset")
            try:
                os.write(fd, (ruleset + "\n").encode())
                if lib.nft_run_cmd_from_filename(ctx, f"/proc/self/fd/{fd}".encode()) != 0:
                    err = lib.nft_ctx_get_error_buffer(ctx) or b""
                    raise NftError(err.decode(errors="replace").strip())
            finally:
                os.close(fd)
        finally:
            lib.nft_ctx_free(ctx)
