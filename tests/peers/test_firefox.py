"""The Firefox peer: launch pieces (no root) and real sessions in labs (root).

Tests that need Firefox fail (not skip) when it is missing: .ci/setup installs it (or NETSIM_FIREFOX names
one). A Firefox costs ~2 s, ~3 CPU-s and ~0.4 GiB: each root test builds one lab, holds its hosts' browsers
for all the sessions it runs there, and checks that nothing of them is left.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from netsim.peers import firefox_launch as fl
from netsim.peers.adapter import PeerPlace
from netsim.peers.firefox import FirefoxAdapter, firefox_spec, named_servers
from netsim.peers.protocol import IceServer
from netsim.peers.stacks import make_adapter
from netsim.vocab import PEER_STACKS
from tests.peers.test_chromium import _brief, _zombie
from tests.peers.test_chromium import _check_connected as _check_common

# --- no root ---------------------------------------------------------------------------------------------


def test_missing_binary_names_it_and_the_way_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETSIM_FIREFOX", "/nonexistent/firefox-xyz")
    with pytest.raises(
        fl.FirefoxError, match=r"^firefox binary not found: '/nonexistent/firefox-xyz' .*NETSIM_FIREFOX"
    ):
        fl.firefox_binary()
    monkeypatch.setenv("NETSIM_FIREFOX", "/bin/true")
    assert fl.firefox_binary() == "/bin/true"
    monkeypatch.delenv("NETSIM_FIREFOX")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(
        fl.FirefoxError, match=r"'?firefox-esr or firefox'? \(install the Debian package firefox-esr"
    ):
        fl.firefox_binary()


def test_prefs_map_hide_host_and_keep_firefox_off_the_network() -> None:
    shown, hidden = fl.prefs(False), fl.prefs(True)
    assert shown[fl.HIDE_HOST_PREF] is False and hidden[fl.HIDE_HOST_PREF] is True
    assert shown["media.navigator.permission.disabled"] is True
    assert (shown["fission.autostart"], shown["dom.ipc.processCount"]) == (False, 1)  # the lean process set
    assert shown["network.trr.mode"] == 5 and shown["services.settings.server"].startswith("data:")
    # Every name resolves through the hosts file: a pref that answers every name (IP literals too) would
    # send the page and signaling to the TURN server.
    assert "network.dns.forceResolve" not in shown
    text = fl.user_js({"a.b": True, "c": 'say "hi"', "n": 5})
    assert text == 'user_pref("a.b", true);\nuser_pref("c", "say \\"hi\\"");\nuser_pref("n", 5);\n'


def test_hosts_file_keeps_the_machines_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    own = tmp_path / "hosts"
    own.write_text("127.0.0.1 localhost\n127.0.1.1 this-machine\n")
    monkeypatch.setattr(fl, "HOSTS_FILE", own)
    text = fl.hosts_text({"turn.netsim.test": "198.18.0.2"})
    assert text.startswith("127.0.0.1 localhost\n127.0.1.1 this-machine\n")
    assert text.endswith("198.18.0.2 turn.netsim.test\n")


def test_launch_argv_enters_the_namespace_and_mounts_the_hosts_file_by_exec(tmp_path: Path) -> None:
    plain = fl.launch_argv("lab-a", "/usr/bin/firefox-esr", tmp_path / "profile")
    assert plain[:3] == ["nsenter", "--net=/run/netns/lab-a", "--"]
    assert plain[3:] == [
        *("/usr/bin/firefox-esr", "--headless", "--no-remote", "--remote-debugging-port=0"),
        *("--profile", str(tmp_path / "profile"), "about:blank"),
    ]
    hosts = fl.launch_argv("lab-a", "/usr/bin/firefox-esr", tmp_path / "profile", tmp_path / "hosts")
    assert hosts[3:7] == ["unshare", "--mount", "--propagation", "private"]
    script = hosts[hosts.index("-c") + 1]
    assert script == 'mount --bind "$0" /etc/hosts && exec "$@"'  # exec: the pid stays the browser's
    assert hosts[hosts.index("-c") + 2 :] == [str(tmp_path / "hosts"), *plain[3:]]


def test_browser_environment_stays_in_its_directory(tmp_path: Path) -> None:
    env = fl.browser_env(tmp_path)
    for key in ("HOME", "TMPDIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_RUNTIME_DIR"):
        assert Path(env[key]).is_relative_to(tmp_path) and Path(env[key]).is_dir(), key
    assert "DISPLAY" not in env and "DBUS_SESSION_BUS_ADDRESS" not in env
    assert env["MOZ_REMOTE_SETTINGS_DEVTOOLS"] == "1"


def test_the_lab_ca_goes_into_the_profile_only(tmp_path: Path) -> None:
    from netsim.services.coturn import CA_FILE, write_certificate

    write_certificate(tmp_path, ("198.18.0.2",))
    profile = fl.make_profile(tmp_path / "browser", fl.prefs(False), tmp_path / CA_FILE)
    assert (
        'user_pref("media.peerconnection.ice.obfuscate_host_addresses", false);'
        in (profile / "user.js").read_text()
    )
    listed = subprocess.run(
        ["certutil", "-L", "-d", f"sql:{profile}"], capture_output=True, text=True, check=True
    ).stdout
    assert any(line.startswith(fl.CA_NICKNAME) and line.split()[-1] == "C,," for line in listed.splitlines())


def test_a_certutil_failure_is_one_line(tmp_path: Path) -> None:
    bogus = tmp_path / "not-a-cert.pem"
    bogus.write_text("nonsense")
    with pytest.raises(fl.FirefoxError, match=r"^certutil -A failed: .+") as info:
        fl.make_profile(tmp_path / "browser", fl.prefs(False), bogus)
    assert "\n" not in str(info.value)


def _sh(tmp_path: Path, script: str) -> fl.Launched:
    log = tmp_path / "firefox.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(["sh", "-c", script], stdout=out, stderr=subprocess.STDOUT)
    return fl.Launched(proc, tmp_path / "profile", log)


def test_bidi_url_is_read_from_the_output(tmp_path: Path) -> None:
    launched = _sh(
        tmp_path, 'echo "*** headless"; echo "WebDriver BiDi listening on ws://127.0.0.1:4242"; sleep 5'
    )
    try:
        assert fl.wait_bidi_url(launched, 5.0) == "ws://127.0.0.1:4242"
    finally:
        launched.proc.kill()
        launched.proc.wait()


def test_a_browser_that_exits_before_listening_says_its_last_line(tmp_path: Path) -> None:
    launched = _sh(tmp_path, 'echo "Error: no DISPLAY environment variable specified"; exit 1')
    with pytest.raises(fl.FirefoxError, match=r"^firefox exited \(1\) before listening: Error: no DISPLAY"):
        fl.wait_bidi_url(launched, 5.0)
    silent = _sh(tmp_path, "sleep 5")
    try:
        with pytest.raises(fl.FirefoxError, match=r"^firefox did not listen within 0.2 s: no output$"):
            fl.wait_bidi_url(silent, 0.2)
    finally:
        silent.proc.kill()
        silent.proc.wait()


def _named(*argv: str) -> subprocess.Popen[bytes]:
    """A process whose command line carries `argv` (a shell sleeping under that name), once it has exec'd:
    until then /proc/<pid>/cmdline is still this interpreter's."""
    proc = subprocess.Popen(["sh", "-c", "sleep 30", *argv])
    deadline = time.monotonic() + 5
    while b"sleep 30" not in Path(f"/proc/{proc.pid}/cmdline").read_bytes() and time.monotonic() < deadline:
        time.sleep(0.01)
    return proc


def test_is_firefox_checks_the_profile_before_any_signal(tmp_path: Path) -> None:
    profile = tmp_path / "firefox-x" / "profile"
    proc = _named("sh", "--profile", str(profile))
    try:
        assert fl.is_firefox(proc.pid, profile)
        assert not fl.is_firefox(proc.pid, tmp_path / "other")
    finally:
        proc.kill()
        proc.wait()
    assert not fl.is_firefox(proc.pid, profile)


def test_turn_over_tls_urls_go_by_name_the_rest_stay() -> None:
    names = (("turn.netsim.test", "198.18.0.2"),)
    servers: list[IceServer] = [
        {"urls": "stun:198.18.0.2:3478"},
        {"urls": "turns:198.18.0.2:443?transport=tcp", "username": "u", "credential": "c"},
        {"urls": ["turn:198.18.0.2:3478?transport=udp", "turns:198.18.0.9:5349"]},
    ]
    out = named_servers(servers, names)
    assert out[0] == servers[0]
    assert out[1] == {"urls": "turns:turn.netsim.test:443?transport=tcp", "username": "u", "credential": "c"}
    assert out[2]["urls"] == ["turn:198.18.0.2:3478?transport=udp", "turns:198.18.0.9:5349"]


def test_firefox_is_a_stack_with_its_adapter(tmp_path: Path) -> None:
    assert "firefox" in PEER_STACKS
    adapter = make_adapter("firefox", None)  # type: ignore[arg-type]
    try:
        assert isinstance(adapter, FirefoxAdapter) and adapter.name == "firefox"
        place = PeerPlace("lab-a", tmp_path, "ws://198.18.0.3:443", None, True, (("turn.x", "198.18.0.2"),))
        spec = firefox_spec(place)
        assert spec.page_url == "http://198.18.0.3:443/app/peer.html"
        assert (spec.hide_host, spec.names, spec.ca_file) == (True, (("turn.x", "198.18.0.2"),), None)
        assert spec.workdir == tmp_path / "browsers"
    finally:
        adapter.close()


# --- real browsers in real labs (root) -------------------------------------------------------------------

root = pytest.mark.root


class StackLab:
    """A standard lab whose hosts' browsers of the `hold` stacks are held open for all sessions run in it."""

    def __init__(self, nat_a: str, nat_b: str, hold: tuple[str, ...] = ("firefox",)) -> None:
        from netsim.lab.lab import Lab
        from netsim.lab.topology import standard_topology
        from netsim.peers.launcher import Launcher

        self.lab = Lab(standard_topology(nat_a, nat_b))
        self.launcher = Launcher()
        self.hold = hold
        self.held: list[tuple[Any, Any]] = []  # (pool, browser)

    def __enter__(self) -> StackLab:
        from netsim.peers.browser import page_directory
        from netsim.peers.chromium_pool import browser_spec
        from netsim.session.options import SessionOptions
        from netsim.session.run import peer_places

        self.lab.__enter__()
        url = self.lab.start_signaling(static_dir=page_directory())
        places = peer_places(self.lab, url, SessionOptions())
        for stack in self.hold:
            pool = self.launcher.adapter(stack).pool  # type: ignore[attr-defined]
            make = firefox_spec if stack == "firefox" else browser_spec
            specs = [make(p) for p in places.values()]
            pool.start(specs)
            self.held += [(pool, pool.browser(spec)) for spec in specs]
        return self

    def browser(self, stack: str, side: str) -> Any:
        return [b for _, b in self.held if b.stack == stack][0 if side == "a" else 1]

    def session(self, peer_a: str, peer_b: str, **kwargs: Any) -> dict[str, Any]:
        from netsim.session.options import SessionOptions
        from netsim.session.run import run_session

        kwargs.setdefault("deadline_s", 8.0)  # generous under load: these tests assert outcomes, not speed
        opts = SessionOptions(peer_a=peer_a, peer_b=peer_b, **kwargs)  # type: ignore[arg-type]
        rec = dict(run_session(self.lab, opts, launcher=self.launcher))
        print(f"\n{peer_a} x {peer_b} {kwargs}: " + json.dumps(_brief(rec), default=str))
        return rec

    def __exit__(self, *exc: object) -> None:
        browsers = [b for _, b in self.held]
        pids = [b.pid for b in browsers if b.pid is not None]
        dirs = [getattr(b, "directory", None) or b.profile for b in browsers]
        try:
            for pool, b in self.held:
                pool.release(b)
            self.launcher.close()
        finally:
            self.lab.__exit__(None, None, None)
        for pid in pids:  # closed by us, not only killed by the teardown
            assert not Path(f"/proc/{pid}").exists() or _zombie(pid), f"browser {pid} left running"
        assert not any(d.exists() for d in dirs), "browser directory left behind"
        left = [pid for d in dirs for pid in fl.strays(d) if not _zombie(pid)]
        assert not left, f"processes naming a browser's directory left running: {left}"


def _check_connected(rec: dict[str, Any], peers: tuple[str, str]) -> None:
    """Both sides connected (the Chromium tests' checks), and each Firefox side's version, prefs and
    pair families."""
    _check_common(rec, peers)
    for side, stack in zip("ab", peers, strict=True):
        peer = rec[side]
        assert all(p["family"] == "ipv4" for p in peer["pairs"]), peer["pairs"]
        if stack == "firefox":
            assert peer["version"] == fl.application_version(fl.firefox_binary()), peer["version"]
            prefs = peer["settings"]["prefs"]
            assert prefs[fl.HIDE_HOST_PREF] is False and prefs["dom.ipc.processCount"] == 1
            assert rec["versions"]["firefox"] == peer["version"]


@root
@pytest.mark.usefixtures("require_firefox", "no_leftovers")
def test_bidi_drives_a_real_firefox_inside_the_namespace(tmp_path: Path) -> None:
    """Launch, BiDi session from inside the host's namespace, evaluate, close: by pid, nothing left."""
    from netsim.lab.lab import Lab
    from netsim.lab.topology import standard_topology
    from netsim.peers.bidi import BidiSession

    with Lab(standard_topology("full-cone", "full-cone")) as lab:
        directory = Path(lab.workdir) / "ff"
        directory.mkdir()
        profile = fl.make_profile(directory, fl.prefs(False), None)
        launched = fl.launch(
            lab.netns("a"), fl.firefox_binary(), directory, profile, {"x.test": "198.18.0.2"}
        )
        try:

            async def drive() -> tuple[Any, ...]:
                session = await BidiSession.connect(fl.wait_bidi_url(launched), lab.netns("a"))
                ctx = await session.top_context()
                got = await session.evaluate(
                    ctx, "new Promise(r => setTimeout(() => r([1, 'two', null]), 50))"
                )
                caps = session.capabilities
                await session.close_browser()
                return got, caps

            got, caps = asyncio.run(drive())
            assert got == [1, "two", None]
            assert caps["moz:processID"] == launched.pid and caps["moz:headless"] is True
            assert caps["browserVersion"] == fl.application_version(fl.firefox_binary())
            assert launched.proc.wait(10) == 0
        finally:
            if launched.proc.poll() is None:
                os.kill(launched.pid, signal.SIGKILL)
                launched.proc.wait()


@root
@pytest.mark.usefixtures("require_firefox", "no_leftovers")
def test_firefox_pair_direct_and_relay_with_needs_relay() -> None:
    with StackLab("full-cone", "symmetric") as sl:
        rec = sl.session("firefox", "firefox", turn="none")
        _check_connected(rec, ("firefox", "firefox"))
        assert rec["verdict"] == "direct" and rec["needs_relay"] is False, _brief(rec)
    with StackLab("port-restricted-cone", "symmetric") as sl:
        rec = sl.session("firefox", "firefox", deadline_s=5.0)
        _check_connected(rec, ("firefox", "firefox"))
        assert rec["verdict"] == "relay" and rec["needs_relay"] is True, _brief(rec)
        assert rec["needs_relay_run"]["verdict"] == "failed"


@root
# Once in CI's parallel phase, glare with b first over a relay opened the data channel but no echo came back
# within 8 s; it has not failed alone. Not understood yet (a rollback race in Firefox?): run alone meanwhile.
@pytest.mark.alone
@pytest.mark.usefixtures("require_firefox", "no_leftovers")
def test_turn_over_tls_by_name_with_the_lab_ca_and_glare_both_orders() -> None:
    with StackLab("port-restricted-cone", "symmetric") as sl:
        rec = sl.session("firefox", "firefox", turn="tls", policy="relay", needs_relay=False)
        _check_connected(rec, ("firefox", "firefox"))
        assert rec["verdict"] == "relay"
        for side in "ab":
            assert rec[side]["local_type"] == "relay" and rec[side]["turn_transport"] == "tls", _brief(rec)
            assert any(
                u.startswith("turns:turn.netsim.test:") for u in rec[side]["ice_urls"] if isinstance(u, str)
            )
        for first in ("a", "b"):
            rec = sl.session("firefox", "firefox", glare=True, glare_first=first, needs_relay=False)
            _check_connected(rec, ("firefox", "firefox"))
            a, b = rec["a"]["negotiation"], rec["b"]["negotiation"]
            assert (a["offerer"], b["rollbacks"], a["rollbacks"]) == (True, 1, 0), (first, a, b)
            sent_first = 1 if first == "b" else 0
            assert (b["offers_sent"], a["ignored_offers"]) == (sent_first, sent_first), (first, a, b)


@root
@pytest.mark.usefixtures("require_firefox", "require_chromium", "no_leftovers")
def test_firefox_with_chromium_and_aiortc_both_orders() -> None:
    pairs = [("firefox", "chromium"), ("chromium", "firefox"), ("firefox", "aiortc"), ("aiortc", "firefox")]
    with StackLab("port-restricted-cone", "port-restricted-cone", hold=("firefox", "chromium")) as sl:
        for peers in pairs:
            rec = sl.session(*peers)
            _check_connected(rec, peers)
            assert rec["verdict"] == "direct" and rec["needs_relay"] is False, _brief(rec)


@root
@pytest.mark.usefixtures("require_firefox", "no_leftovers")
def test_a_firefox_killed_mid_call_keeps_the_connect_says_why_and_leaves_nothing() -> None:
    """Killed 2 s into a held call (its record snapshotted as connected): the session keeps its verdict,
    the call drops with the browser's death as its cause, the next session gets a fresh browser."""
    import threading

    with StackLab("full-cone", "full-cone") as sl:
        victim = sl.browser("firefox", "b")
        pid, tree_of = victim.pid, victim.directory

        def kill_once_connected() -> None:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not list((Path(sl.lab.workdir) / "peers").glob("*.up")):
                time.sleep(0.02)
            time.sleep(2.0)  # past the first snapshot of its record (every second once connected)
            os.kill(pid, signal.SIGKILL)

        killer = threading.Thread(target=kill_once_connected)
        killer.start()
        rec = sl.session("firefox", "firefox", hold_s=8.0, interval_s=0.5, needs_relay=False)
        killer.join()
        b = rec["b"]
        assert b["state"] == "connected" and b["reason"] == "browser crashed: firefox exited (signal 9)", (
            b["state"],
            b["reason"],
        )
        assert rec["verdict"] in ("direct", "direct-host") and rec["connect_s"] is not None, _brief(rec)
        assert rec["call"]["outcome"] == "dropped" and "browser crashed" in str(rec["call"]["cause"])
        # Killed before it connected: a failed record with the reason, a fault of the lab.
        victim = sl.browser("firefox", "a")
        os.kill(victim.pid, signal.SIGKILL)
        rec = sl.session("firefox", "firefox", turn="none")
        assert rec["a"]["state"] == "failed" and rec["a"]["reason"].startswith(
            "browser crashed: firefox exited"
        )
        # The next session gets fresh browsers on both hosts.
        rec = sl.session("firefox", "firefox", turn="none")
        _check_connected(rec, ("firefox", "firefox"))
    assert not Path(f"/proc/{pid}").exists() or _zombie(pid)
    assert not tree_of.exists() and not fl.strays(tree_of)


def test_strays_are_the_processes_naming_the_browsers_directory(tmp_path: Path) -> None:
    """Firefox's crash helper double-forks out of the browser's tree; its argv names the browser's TMPDIR."""
    proc = _named("crashhelper", "1234", str(tmp_path / "firefox-ab12" / "tmpdir"))
    try:
        assert fl.strays(tmp_path / "firefox-ab12") == [proc.pid]
        assert fl.strays(tmp_path / "firefox-cd34") == []
    finally:
        proc.kill()
        proc.wait()
