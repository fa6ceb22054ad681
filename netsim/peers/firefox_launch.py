"""Launching Firefox for a peer: the binary, a fresh profile (prefs, the lab's CA), the launch inside a
host's namespace by pid, the address of its WebDriver BiDi agent, and ending it.

netsim.peers.firefox drives the launched browser over BiDi; this module knows nothing of BiDi. Everything a
browser writes stays in its own directory under the lab's work directory (profile, HOME, TMPDIR, caches),
removed with it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from netsim.lab import netns

ENV_BINARY = "NETSIM_FIREFOX"
DEFAULT_BINARIES = ("firefox-esr", "firefox")  # Debian's ESR package; elsewhere a plain Firefox
BIDI_LINE = re.compile(r"WebDriver BiDi listening on (ws://\S+)")
LISTEN_TIMEOUT_S = 30.0  # ~1-2.5 s on an idle 2-core machine; a loaded one takes several times that
LISTEN_POLL_S = 0.02
CA_NICKNAME = "netsim-lab"
CERTUTIL_TIMEOUT_S = 20.0
PrefValue = bool | int | str

# Prefs of every netsim Firefox. Why each: WebRTC without prompts; the lean process set (11 processes down
# to 4, ~80 MiB less, as far as prefs go: one content process, no fork server, no prelaunched or extension
# processes, media decoding in-process); nothing of Firefox's own talks to the network (a lab host has no
# internet, and any name it resolves lands on the lab's server).
BASE_PREFS: dict[str, PrefValue] = {
    "media.navigator.permission.disabled": True,
    # performance.now() to the microsecond, as in Chromium (Firefox rounds it to 1 ms by default): the
    # page's marks are mapped onto the host clock with it.
    "privacy.reduceTimerPrecision": False,
    "fission.autostart": False,
    "dom.ipc.processCount": 1,
    "dom.ipc.processPrelaunch.enabled": False,
    "dom.ipc.forkserver.enable": False,
    "extensions.webextensions.remote": False,
    "media.rdd-process.enabled": False,
    "browser.newtab.preload": False,
    "browser.newtabpage.enabled": False,
    "browser.startup.page": 0,
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.shell.checkDefaultBrowser": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.enabled": False,
    "app.normandy.enabled": False,
    "app.update.auto": False,
    "extensions.update.enabled": False,
    "extensions.systemAddon.update.enabled": False,
    "extensions.getAddons.cache.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.search.update": False,
    "browser.region.network.url": "",
    "geo.provider.network.url": "",
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "network.trr.mode": 5,  # DNS over HTTPS off: only the system resolver (or forceResolve below)
    # Remote Settings (CRLite, intermediates, ...) sync on a fresh profile at once; release builds honour a
    # server override only with MOZ_REMOTE_SETTINGS_DEVTOOLS=1 in the environment (browser_env).
    "services.settings.server": "data:,#remote-settings-dummy/v1",
    "security.remote_settings.intermediates.enabled": False,
    "security.remote_settings.crlite_filters.enabled": False,
}
HIDE_HOST_PREF = "media.peerconnection.ice.obfuscate_host_addresses"  # host candidates as mDNS names
HOSTS_FILE = Path("/etc/hosts")


class FirefoxError(RuntimeError):
    """Firefox is missing, did not start or did not say where its BiDi agent listens; one line, the
    record's reason."""


def firefox_binary() -> str:
    """The Firefox executable: $NETSIM_FIREFOX, else firefox-esr or firefox on PATH."""
    named = os.environ.get(ENV_BINARY)
    for name in (named,) if named else DEFAULT_BINARIES:
        found = shutil.which(name)
        if found is not None:
            return found
    wanted = repr(named) if named else " or ".join(DEFAULT_BINARIES)
    raise FirefoxError(
        f"firefox binary not found: {wanted} (install the Debian package firefox-esr, "
        f"or set {ENV_BINARY} to a Firefox executable)"
    )


def prefs(hide_host: bool) -> dict[str, PrefValue]:
    """A browser's prefs: hide_host maps to mDNS host candidates."""
    return {**BASE_PREFS, HIDE_HOST_PREF: hide_host}


def hosts_text(names: dict[str, str]) -> str:
    """The machine's hosts file plus the lab's names (address -> name lines). The machine's own entries
    stay: Firefox resolves this host's name at start-up, and stalls for seconds when it cannot."""
    own = ""
    with contextlib.suppress(OSError):
        own = HOSTS_FILE.read_text()
    lab = "".join(f"{ip} {name}\n" for name, ip in sorted(names.items()))
    return f"{own.rstrip()}\n# the lab's names (netsim)\n{lab}"


def user_js(values: dict[str, PrefValue]) -> str:
    """The profile's user.js, read by Firefox at start-up."""
    import json

    return "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in sorted(values.items()))


def certutil() -> str:
    found = shutil.which("certutil")
    if found is None:
        raise FirefoxError("certutil not found (install the Debian package libnss3-tools)")
    return found


def import_ca(profile: Path, ca_file: Path) -> None:
    """The lab CA into the profile's own NSS database (cert9.db), trusted to issue server certificates:
    this browser only, never the machine."""
    tool = certutil()
    db = f"sql:{profile}"
    for argv in (
        [tool, "-N", "-d", db, "--empty-password"],
        [tool, "-A", "-d", db, "-n", CA_NICKNAME, "-t", "C,,", "-i", str(ca_file)],
    ):
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=CERTUTIL_TIMEOUT_S, stdin=subprocess.DEVNULL
        )
        if done.returncode != 0:
            said = (done.stderr or done.stdout).strip().splitlines()
            raise FirefoxError(f"certutil {argv[1]} failed: {said[-1] if said else done.returncode}")


def make_profile(directory: Path, values: dict[str, PrefValue], ca_file: Path | None) -> Path:
    """A fresh profile under `directory` with these prefs and, when given, the lab CA."""
    profile = directory / "profile"
    profile.mkdir(parents=True)
    (profile / "user.js").write_text(user_js(values))
    if ca_file is not None:
        import_ca(profile, ca_file)
    return profile


def browser_env(directory: Path) -> dict[str, str]:
    """A small environment: HOME, TMPDIR and the XDG directories inside the browser's directory (nothing
    in /tmp or the caller's home), no display, no session bus, no crash reporter."""
    dirs = {k: directory / k.lower() for k in ("HOME", "TMPDIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME")}
    runtime = directory / "xdg_runtime_dir"
    for path in (*dirs.values(), runtime):
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **{k: str(v) for k, v in dirs.items()},
        "XDG_RUNTIME_DIR": str(runtime),
        "MOZ_CRASHREPORTER_DISABLE": "1",
        "MOZ_REMOTE_SETTINGS_DEVTOOLS": "1",  # lets services.settings.server point nowhere
    }


def launch_argv(netns_name: str, binary: str, profile: Path, hosts: Path | None = None) -> list[str]:
    """Firefox inside the host's namespace (nsenter execs it: the pid stays the browser's), headless,
    its BiDi agent on a free port of the namespace's loopback.

    With `hosts`, Firefox gets a mount namespace of its own in which that file is /etc/hosts, so it
    resolves the lab's names (the system resolver reads it) while the machine's hosts file stays as it is.
    Why not the pref network.dns.forceResolve: it sends every host, IP literals included, to one address,
    so the page and signaling (on the server's second address) become unreachable."""
    args = [binary, "--headless", "--no-remote", "--remote-debugging-port=0", "--profile", str(profile)]
    args.append("about:blank")
    if hosts is not None:
        mount = 'mount --bind "$0" /etc/hosts && exec "$@"'
        args = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", mount, str(hosts), *args]
    return netns.command(netns_name, args)


@dataclass
class Launched:
    """A started Firefox: its pid (the browser's own, by exec) and where its stderr goes."""

    proc: subprocess.Popen[bytes]
    profile: Path
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


def launch(
    netns_name: str, binary: str, directory: Path, profile: Path, names: dict[str, str] | None = None
) -> Launched:
    """Start Firefox in the host's namespace with `profile` (and the lab's host `names` resolvable);
    output to `directory`/firefox.log. Its own session (a Ctrl-C at the terminal is the controller's)."""
    log = directory / "firefox.log"
    hosts = None
    if names:
        hosts = directory / "hosts"
        hosts.write_text(hosts_text(names))
    with log.open("wb") as out:
        proc = subprocess.Popen(
            launch_argv(netns_name, binary, profile, hosts),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=browser_env(directory),
            cwd=directory,
            start_new_session=True,
        )
    return Launched(proc, profile, log)


def wait_bidi_url(launched: Launched, timeout_s: float = LISTEN_TIMEOUT_S) -> str:
    """The ws:// URL Firefox prints once its BiDi agent listens (FirefoxError if it exits or says
    nothing in time, with its last line of output)."""
    deadline = time.monotonic() + timeout_s
    while True:
        text = _read(launched.log)
        found = BIDI_LINE.search(text)
        if found:
            return found.group(1)
        code = launched.proc.poll()
        if code is not None:
            raise FirefoxError(f"firefox exited ({code}) before listening: {_last_line(launched.log)}")
        if time.monotonic() > deadline:
            raise FirefoxError(f"firefox did not listen within {timeout_s:g} s: {_last_line(launched.log)}")
        time.sleep(LISTEN_POLL_S)


def _read(path: Path) -> str:
    with contextlib.suppress(OSError):
        return path.read_bytes().decode(errors="replace")
    return ""


def _last_line(path: Path) -> str:
    lines = [line for line in _read(path).splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no output"


def is_firefox(pid: int, profile: Path) -> bool:
    """Whether pid is still the Firefox of this profile (pids are reused: never signal one unchecked)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    want = str(profile).encode()
    return any(a == b"--profile" and b == want for a, b in zip(argv, argv[1:], strict=False))


def strays(directory: Path) -> list[int]:
    """Processes whose command line names this browser's directory but that are not in its process tree:
    Firefox's crash helper double-forks away from the browser (it exits once its browser is gone)."""
    want = str(directory).encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if want in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
    return found


def application_version(binary: str) -> str | None:
    """Version= of the application.ini beside the real executable (no process started)."""
    ini = Path(binary).resolve().parent / "application.ini"
    with contextlib.suppress(OSError):
        found = re.search(r"^Version=(\S+)", ini.read_text(), re.M)
        return found.group(1) if found else None
    return None
