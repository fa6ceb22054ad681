"""`netsim doctor`: what this machine supports of what the README promises, and what is missing.

One line per item: `ok` or `MISSING`, what was found (version, path) and, when missing, how to install it.
Exit 0 when everything is there, 1 when something is missing (the exit-code table's "expectation violated").
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from netsim.cli.common import EXIT_MISMATCH, EXIT_OK, print_json
from netsim.vocab import CHROMIUM, FIREFOX

APT = "apt-get install"
VERSION_TIMEOUT_S = 20.0  # chromium --version on a loaded machine takes a few seconds


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    found: str  # version, path or backend when ok; what was seen when not
    fix: str = ""  # how to get it, when missing


def add_parsers(sub: Any) -> None:
    doctor = sub.add_parser(
        "doctor", help="what this machine supports (delay backend, chromium, firefox, coturn, ...)"
    )
    doctor.add_argument("--json", action="store_true", help="the checks as a JSON list")
    doctor.set_defaults(func=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    checks = run_checks()
    if args.json:
        print_json([asdict(c) for c in checks])
    else:
        print(render(checks))
    return EXIT_OK if all(c.ok for c in checks) else EXIT_MISMATCH


def render(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        status = "ok" if c.ok else "MISSING"
        fix = f"  -> {c.fix}" if not c.ok and c.fix else ""
        lines.append(f"{status:8}{c.name:{width}}  {c.found}{fix}")
    missing = [c.name for c in checks if not c.ok]
    lines.append(f"missing: {', '.join(missing)}" if missing else "everything netsim needs is here")
    return "\n".join(lines)


def run_checks() -> list[Check]:
    checks = [_root(), *_delay()]
    checks += [
        _tool("nft", "nftables", "nft", ["--version"]),
        _tool("conntrack", "conntrack", "conntrack", ["--version"]),
        _tool("tc / ip", "iproute2", "tc", ["-V"]),
        _tool("nsenter, unshare", "util-linux", "nsenter", ["--version"], also=("unshare",)),
        _tool("tcpdump", "tcpdump", "tcpdump", ["--version"]),
        _coturn(),
        _tool("turnutils_natdiscovery", "coturn", "turnutils_natdiscovery", None),
        _chromium(),
        _firefox(),
        _pion(),
        _python_package("playwright", "pip install playwright (part of netsim's dependencies)"),
    ]
    return checks


def _root() -> Check:
    if os.geteuid() == 0:
        return Check("root", True, "yes")
    return Check("root", False, f"running as uid {os.geteuid()}", "labs need root: run netsim as root")


def _delay() -> list[Check]:
    """The delay backend: netem, else the NFQUEUE delay line with its binding and iptables-nft."""
    from netsim.lab import impair

    netem, how = impair.netem_probe()
    nfq = _python_package(
        "netfilterqueue", f"{APT} libnetfilter-queue-dev gcc python3-dev; pip install netfilterqueue"
    )
    ipt = [shutil.which(t) for t in ("iptables-nft-restore", "ip6tables-nft-restore")]
    ipt_check = Check(
        "iptables-nft",
        all(ipt),
        ", ".join(p for p in ipt if p) or "iptables-nft-restore not on PATH",
        f"{APT} iptables",
    )
    line_ok = nfq.ok and ipt_check.ok
    if netem:
        delay = Check("delay/jitter", True, "netem (the kernel has sch_netem)")
    elif line_ok:
        delay = Check("delay/jitter", True, f"delay line (NFQUEUE; no netem: {how})")
    else:
        fix = "a kernel with sch_netem (modprobe sch_netem), or the delay line's packages below"
        delay = Check("delay/jitter", False, f"no netem ({how}) and no delay line", fix)
    # Without netem the delay line's parts are what delay needs; with it they are optional, shown as found.
    extras = [nfq, ipt_check] if not netem else [c for c in (nfq, ipt_check) if c.ok]
    return [delay, *extras]


def _tool(
    name: str, package: str, exe: str, version_args: list[str] | None, also: tuple[str, ...] = ()
) -> Check:
    path = shutil.which(exe)
    absent = [e for e in (exe, *also) if shutil.which(e) is None]
    if path is None or absent:
        return Check(name, False, f"{', '.join(absent)} not on PATH", f"{APT} {package}")
    version = _version([path, *version_args]) if version_args else None
    return Check(name, True, f"{version} ({path})" if version else path)


def _coturn() -> Check:
    from netsim.versions import coturn_version

    path = shutil.which("turnserver")
    if path is None:
        return Check("coturn", False, "turnserver not on PATH", f"{APT} coturn")
    return Check("coturn", True, f"{coturn_version() or 'version unknown'} ({path})")


def _browser(name: str, find: Callable[[], str], error: type[Exception], fix: str) -> Check:
    """A browser binary found (`find` raises `error` when not) that says its version."""
    try:
        path = find()
    except error as e:
        return Check(name, False, str(e).split(" (")[0], fix)
    version = _version([path, "--version"])
    if version is None:
        return Check(name, False, f"{path} did not say its version", "check the binary runs headless")
    return Check(name, True, f"{version} ({path})")


def _chromium() -> Check:
    from netsim.peers.browser import ENV_BINARY, ChromiumError, chromium_binary

    fix = f"{APT} chromium, or set {ENV_BINARY} to a Chromium executable (browser peers only)"
    return _browser(CHROMIUM, chromium_binary, ChromiumError, fix)


def _firefox() -> Check:
    """Firefox (the nICEr stack) and certutil, which puts the lab CA into each browser's profile."""
    from netsim.peers.firefox_launch import ENV_BINARY, FirefoxError, certutil, firefox_binary

    fix = f"{APT} firefox-esr, or set {ENV_BINARY} to a Firefox executable (Firefox peers only)"
    check = _browser(FIREFOX, firefox_binary, FirefoxError, fix)
    if not check.ok:
        return check
    try:
        return Check(FIREFOX, True, f"{check.found}, certutil {certutil()}")
    except FirefoxError:
        return Check(FIREFOX, False, f"{check.found} but certutil not found", f"{APT} libnss3-tools")


def _pion() -> Check:
    from netsim.peers.pion_stack import ENV_BINARY, WEBRTC_PACKAGE, status
    from netsim.vocab import PION

    ok, found = status()
    fix = f"{APT} golang-go {WEBRTC_PACKAGE}, or set {ENV_BINARY} to a built peer (Pion peers only)"
    return Check(PION, ok, found, fix)


def _python_package(name: str, fix: str) -> Check:
    import importlib
    import importlib.metadata

    try:
        importlib.import_module(name)
    except ImportError as e:
        return Check(name, False, f"does not import: {e}", fix)
    try:
        version = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        version = "version unknown"
    return Check(name, True, version)


def _version(argv: list[str]) -> str | None:
    """The first version-looking number a program prints, or None when it fails to run."""
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=VERSION_TIMEOUT_S, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"\d+(?:\.\d+)+", done.stdout + done.stderr)
    return found.group(0) if found else None
