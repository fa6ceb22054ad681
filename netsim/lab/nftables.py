"""Load nftables rulesets inside a namespace through libnftables (the library behind `nft`), in-process.

Same parser and semantics as `nft -f`, without a fork and exec per ruleset; falls back to running `nft` in
the namespace where the library is missing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

from netsim.lab import netns


class NftError(RuntimeError):
    """nft refused a ruleset; the message is nft's own (line and token)."""


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
    lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    return lib


def load(netns_name: str, ruleset: str) -> None:
    """Apply `ruleset` (nft -f syntax) in namespace `netns_name`; raise NftError with nft's message."""
    lib = _lib()
    if lib is None:
        out = netns.run(netns_name, ["nft", "-f", "-"], input=ruleset, capture_output=True, text=True)
        if out.returncode != 0:
            raise NftError(out.stderr.strip())
        return
    # The netlink socket libnftables opens lives in the namespace the thread is in when it runs.
    with netns.entered(netns_name):
        ctx = lib.nft_ctx_new(0)
        try:
            lib.nft_ctx_buffer_output(ctx)
            lib.nft_ctx_buffer_error(ctx)
            if lib.nft_run_cmd_from_buffer(ctx, (ruleset + "\n").encode()) != 0:
                err = lib.nft_ctx_get_error_buffer(ctx) or b""
                raise NftError(err.decode(errors="replace").strip())
        finally:
            lib.nft_ctx_free(ctx)
