"""The Chromium peer: launch pieces (no root) and real sessions of every stack pairing in labs (root).

Tests that need Chromium fail (not skip) when it is missing: .ci/setup installs it. Each root test builds one
lab and runs all three stack pairings in it, holding both hosts' browsers for the whole lab, so a browser
is launched once per host per lab (about 130 MiB and real CPU each).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from netsim.peers import browser, chromium
from netsim.peers.adapter import PeerPlace
from netsim.peers.browser import (
    STOP_GRACE_S,
    ChromiumError,
    chromium_binary,
    launch_flags,
    page_directory,
    page_origin,
    process_tree,
    pss_kib,
    spki_pin,
    wrapper_env,
    wrapper_path,
)
from netsim.peers.chromium_pool import ChromiumAdapter, browser_spec
from netsim.peers.protocol import SETTLE_EXTRA_S, RawPeerRecord
from netsim.session.configs import linger_s

STACK_PAIRS = [("chromium", "chromium"), ("chromium", "aiortc"), ("aiortc", "chromium")]
RAW_KEYS = set(RawPeerRecord.__annotations__) - {"call"}  # the protocol's record, and the adapter's launch


# --- no root ---------------------------------------------------------------------------------------------


def test_missing_binary_names_it_and_the_way_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETSIM_CHROMIUM", "/nonexistent/chromium-xyz")
    with pytest.raises(
        ChromiumError, match=r"chromium binary not found: '/nonexistent/chromium-xyz'.*NETSIM_"
    ):
        chromium_binary()
    monkeypatch.setenv("NETSIM_CHROMIUM", "/bin/true")
    assert chromium_binary() == "/bin/true"


def test_launch_flags_mdns_and_per_instance_trust() -> None:
    assert "--disable-features=WebRtcHideLocalIpsWithMdns" in launch_flags(False, None)
    hidden = launch_flags(True, "PIN=")
    assert not any("WebRtcHideLocalIpsWithMdns" in f for f in hidden)
    assert "--ignore-certificate-errors-spki-list=PIN=" in hidden
    assert not any(f.startswith("--ignore-certificate-errors") for f in launch_flags(False, None))


def test_ipv4_only_twin_launches_with_ipv6_disabled_by_field_trial(tmp_path: Path) -> None:
    spec = chromium.BrowserSpec("ns", "http://x:443", False, None, tmp_path)
    assert chromium.IPV4_ONLY_FLAG == "--force-fieldtrials=WebRTC-IPv6Default/Disabled/"
    assert chromium.IPV4_ONLY_FLAG not in chromium.browser_flags(spec)
    twin = chromium.BrowserSpec("ns", "http://x:443", False, None, tmp_path, ipv4_only=True)
    assert chromium.browser_flags(twin) == [*chromium.browser_flags(spec), chromium.IPV4_ONLY_FLAG]


def test_page_origin_is_the_signaling_servers() -> None:
    assert page_origin("ws://198.18.0.3:443") == "http://198.18.0.3:443"
    assert page_origin("wss://lab.example:8443/") == "https://lab.example:8443"
    with pytest.raises(ValueError, match=r"signaling_url: expected ws://host:port, got 'http://x'"):
        page_origin("http://x")


def test_page_is_package_data() -> None:
    page = page_directory()
    assert '<script type="module" src="main.js">' in (page / "peer.html").read_text()
    js = (page / "main.js").read_text()
    assert "window.netsimPeer" in js and "window.netsimStop" in js


def test_spki_pin_matches_openssl(tmp_path: Path) -> None:
    from netsim.services.coturn import write_certificate

    cert, _ = write_certificate(tmp_path, ("198.18.0.2",))
    der = subprocess.run(
        f"openssl x509 -in {cert} -pubkey -noout | openssl pkey -pubin -outform der",
        shell=True,
        check=True,
        capture_output=True,
    ).stdout
    import hashlib

    assert spki_pin(cert) == base64.b64encode(hashlib.sha256(der).digest()).decode()


def test_wrapper_merges_disable_features_and_records_pid_and_flags(tmp_path: Path) -> None:
    """The package's wrapper (never written at run time), with nsenter replaced so it runs unprivileged."""
    script = wrapper_path().read_text()
    assert 'exec nsenter "--net=$NETSIM_NETNS_PATH" -- "$NETSIM_CHROMIUM_BIN" "$@"' in script
    runnable = tmp_path / "w.sh"
    runnable.write_text(script.replace('nsenter "--net=$NETSIM_NETNS_PATH" -- ', ""))
    with tempfile.TemporaryDirectory(prefix="nsx-") as short:  # a socket path's length is limited
        env = wrapper_env("nsX", "/bin/echo", tmp_path / "pid", tmp_path / "flags", Path(short) / "t")
        assert env["NETSIM_NETNS_PATH"] == "/run/netns/nsX" and env["TMPDIR"] == f"{short}/t"
    out = subprocess.run(
        ["sh", str(runnable), "--headless", "--disable-features=A,B", "two words", "--disable-features=C"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.stdout.split("\n")[0] == "--headless two words --disable-features=A,B,C"
    assert (tmp_path / "flags").read_text().splitlines() == [
        "--headless",
        "two words",
        "--disable-features=A,B,C",
    ]
    assert int((tmp_path / "pid").read_text()) > 0


def test_a_temporary_directory_too_long_for_chromiums_socket_is_refused_clearly(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 80) / "tmp"
    with pytest.raises(
        ChromiumError, match="too long for Chromium's socket path.*shorter NETSIM_RUNTIME_DIR"
    ):
        wrapper_env("nsX", "/bin/echo", tmp_path / "pid", tmp_path / "flags", deep)


def test_linger_covers_the_settle_wait_only_with_a_browser() -> None:
    assert linger_s(("aiortc", "aiortc"), 1.0) == 2.0
    assert linger_s(("aiortc", "chromium"), 1.0) == 2.0 + 1.0 + SETTLE_EXTRA_S


def test_process_tree_and_pss_of_a_real_tree() -> None:
    proc = subprocess.Popen(["sh", "-c", "sleep 30 & wait"])
    try:
        for _ in range(100):
            tree = process_tree(proc.pid)
            if len(tree) == 2:
                break
            time.sleep(0.01)
        assert tree[0] == proc.pid and len(tree) == 2
        assert pss_kib(tree) > 0
        browser.kill_tree(proc.pid)
        assert proc.wait(5) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.wait()


def test_is_browser_checks_the_profile_before_any_signal(tmp_path: Path) -> None:
    profile = tmp_path / "chromium-x" / "data"
    proc = subprocess.Popen(["sh", "-c", "sleep 30", "sh", f"--user-data-dir={profile}"])
    try:
        # Until the child has exec'd, /proc/<pid>/cmdline is still this interpreter's: wait for the exec.
        deadline = time.monotonic() + 5
        cmdline = Path(f"/proc/{proc.pid}/cmdline")
        while b"sleep 30" not in cmdline.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert browser.is_browser(proc.pid, profile)
        assert not browser.is_browser(proc.pid, tmp_path / "other" / "data")
    finally:
        proc.kill()
        proc.wait()
    assert not browser.is_browser(proc.pid, profile)  # gone (its pid may be reused by anyone)


# --- real browsers in real labs (root) -------------------------------------------------------------------

root = pytest.mark.root


class BrowserLab:
    """A standard lab whose two hosts' browsers are held open for all sessions run in it."""

    def __init__(self, nat_a: str, nat_b: str, hide_host: bool = False) -> None:
        from netsim.lab.lab import Lab
        from netsim.lab.topology import standard_topology
        from netsim.peers.launcher import Launcher

        self.lab = Lab(standard_topology(nat_a, nat_b))
        self.launcher = Launcher()
        self.hide_host = hide_host
        self.held: list[chromium.Browser] = []

    def __enter__(self) -> BrowserLab:
        self.lab.__enter__()
        url = self.lab.start_signaling(static_dir=page_directory())
        ca = self.lab.coturn.ca_file if self.lab.coturn is not None else None
        places = [PeerPlace(self.lab.netns(h), Path(self.lab.workdir), url, ca, self.hide_host) for h in "ab"]
        adapter = self.adapter()
        adapter.prepare(places)
        self.held = [adapter.pool.browser(browser_spec(p)) for p in places]
        return self

    def adapter(self) -> ChromiumAdapter:
        adapter = self.launcher.adapter("chromium")
        assert isinstance(adapter, ChromiumAdapter)
        return adapter

    def session(self, peer_a: str, peer_b: str, **kwargs: Any) -> dict[str, Any]:
        from netsim.session.options import SessionOptions
        from netsim.session.run import run_session

        kwargs.setdefault("deadline_s", 8.0)  # generous under load: these tests assert outcomes, not speed
        opts = SessionOptions(peer_a=peer_a, peer_b=peer_b, hide_host=self.hide_host, **kwargs)  # type: ignore[arg-type]
        rec = dict(run_session(self.lab, opts, launcher=self.launcher))
        print(f"\n{peer_a} x {peer_b} {kwargs}: " + json.dumps(_brief(rec), default=str))
        return rec

    def __exit__(self, *exc: object) -> None:
        pids = [b.pid for b in self.held if b.pid is not None]
        profiles = [b.profile for b in self.held]
        try:
            for b in self.held:
                self.adapter().pool.release(b)
            self.launcher.close()
        finally:
            self.lab.__exit__(None, None, None)
        for pid in pids:  # closed by us, not only killed by the teardown
            assert not Path(f"/proc/{pid}").exists() or _zombie(pid), f"browser {pid} left running"
        assert not any(p.exists() for p in profiles), "browser profile left behind"


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _brief(rec: dict[str, Any]) -> dict[str, Any]:
    keep = ("verdict", "relay_side", "needs_relay", "reason", "connect_s")
    sides = {
        s: {k: rec[s].get(k) for k in ("peer", "state", "local_type", "remote_type", "reason")} for s in "ab"
    }
    return {**{k: rec.get(k) for k in keep}, **sides}


def _check_connected(rec: dict[str, Any], peers: tuple[str, str]) -> None:
    assert rec["verdict"] != "failed", rec["reason"]
    for side, stack in zip("ab", peers, strict=True):
        peer = rec[side]
        assert peer["peer"] == stack and peer["state"] == "connected", peer.get("reason")
        assert peer["pairs"] and peer["first"] is not None and peer["settled"] is not None
        assert all(p["t"] is not None and 0 <= p["t"] < 15 for p in peer["pairs"]), peer["pairs"]
        assert peer["echo"]["received"] >= 1 and peer["echo"]["received"] <= peer["echo"]["sent"]
        if stack == "chromium":
            assert peer["browser"]["version"] and "--remote-debugging-pipe" in peer["browser"]["flags"]
    assert {rec["a"]["role"], rec["b"]["role"]} == {"controlling", "controlled"}
    assert rec["a"]["negotiation"]["offerer"] and not rec["b"]["negotiation"]["offerer"]


@root
@pytest.mark.usefixtures("require_chromium", "no_leftovers")
def test_open_x_open_connects_host_to_host_without_mdns() -> None:
    with BrowserLab("open", "open") as bl:
        for peers in STACK_PAIRS:
            rec = bl.session(*peers, needs_relay=False)
            _check_connected(rec, peers)
            assert rec["verdict"] == "direct-host", _brief(rec)
            for side in "ab":
                assert rec[side]["hide_host"] is False
                assert not any(".local" in c for c in rec[side]["candidates"]["local"])


@root
@pytest.mark.usefixtures("require_chromium", "no_leftovers")
def test_hide_host_keeps_chromiums_mdns_names() -> None:
    with BrowserLab("open", "open", hide_host=True) as bl:
        rec = bl.session("chromium", "chromium", needs_relay=False)
        _check_connected(rec, ("chromium", "chromium"))
        assert rec["a"]["browser"]["mdns"] is True and rec["a"]["hide_host"] is True
        hosts = [c for c in rec["a"]["candidates"]["local"] if " typ host" in c]
        assert hosts and all(".local " in c for c in hosts), hosts


@root
@pytest.mark.usefixtures("require_chromium", "no_leftovers")
def test_port_restricted_pair_connects_and_glare_resolves_both_orders() -> None:
    with BrowserLab("port-restricted-cone", "port-restricted-cone") as bl:
        for peers in STACK_PAIRS:
            rec = bl.session(*peers)
            _check_connected(rec, peers)
            assert rec["needs_relay"] is False, _brief(rec)
            for first in ("a", "b"):
                rec = bl.session(*peers, glare=True, glare_first=first, needs_relay=False)
                _check_connected(rec, peers)
                a, b = rec["a"]["negotiation"], rec["b"]["negotiation"]
                assert (a["offerer"], b["rollbacks"], a["rollbacks"]) == (True, 1, 0), (first, a, b)
                # a first: b rolls back before sending its own; b first: a ignores b's offer (docs/peers.md)
                sent_first = 1 if first == "b" else 0
                assert (b["offers_sent"], a["ignored_offers"]) == (sent_first, sent_first), (first, a, b)


@root
@pytest.mark.usefixtures("require_chromium", "no_leftovers")
def test_port_restricted_x_symmetric_needs_the_relay() -> None:
    with BrowserLab("port-restricted-cone", "symmetric") as bl:
        for peers in STACK_PAIRS:
            rec = bl.session(*peers, deadline_s=5.0)
            _check_connected(rec, peers)
            assert rec["verdict"] == "relay" and rec["needs_relay"] is True, _brief(rec)


@root
@pytest.mark.usefixtures("require_chromium", "no_leftovers")
@pytest.mark.parametrize("turn", ["tcp", "tls"])
def test_udp_blocked_connects_over_turn_on_443(turn: str) -> None:
    with BrowserLab("udp-blocked", "port-restricted-cone") as bl:
        for peers in STACK_PAIRS:
            rec = bl.session(*peers, turn=turn, needs_relay=False, deadline_s=14.0)
            _check_connected(rec, peers)
            assert rec["verdict"] == "relay", _brief(rec)
            blocked = rec["a"]
            if blocked["local_type"] == "relay":  # aiortc always names its side's relay; Chromium too
                assert blocked["turn_transport"] == turn, blocked


@root
@pytest.mark.usefixtures("require_chromium", "no_leftovers")
def test_symmetric_pair_without_turn_fails_at_the_deadline() -> None:
    with BrowserLab("symmetric", "symmetric") as bl:
        for peers in STACK_PAIRS:
            t0 = time.monotonic()
            rec = bl.session(*peers, turn="none", deadline_s=3.0)
            assert rec["verdict"] == "failed" and rec["needs_relay"] is True, _brief(rec)
            assert "not connected within 3 s" in rec["reason"], rec["reason"]
            assert time.monotonic() - t0 < 3.0 + 8.0


@root
@pytest.mark.usefixtures("require_chromium", "no_leftovers")
def test_raw_record_has_the_aiortc_peers_keys() -> None:
    from netsim.lab.lab import Lab
    from netsim.lab.topology import standard_topology
    from netsim.peers.launcher import Launcher
    from netsim.session.options import SessionOptions
    from netsim.session.run import start_peers, wait_peers

    with Lab(standard_topology("full-cone", "full-cone")) as lab, Launcher() as launcher:
        opts = SessionOptions(peer_a="chromium", peer_b="aiortc", needs_relay=False, deadline_s=8.0)
        a, b = wait_peers(
            start_peers(lab, launcher, lab.start_signaling(static_dir=page_directory()), opts), 20.0
        )
        assert a["state"] == b["state"] == "connected", (a.get("reason"), b.get("reason"))
        assert set(a) == RAW_KEYS and set(b) == RAW_KEYS
        assert (
            a["stack"] == "chromium" and a["version"] and "--remote-debugging-pipe" in a["settings"]["flags"]
        )
        assert b["stack"] == "aiortc" and all(p["family"] == "ipv4" for p in a["pairs"] + b["pairs"])
        assert a["launch"]["spawn_to_signed_in_ms"] > a["launch"]["ready_ms"] > 0


@root
@pytest.mark.usefixtures("require_chromium", "no_leftovers")
def test_missing_binary_fails_the_session_with_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETSIM_CHROMIUM", "/nonexistent/chromium-xyz")
    with BrowserLabNoHold("open", "open") as lab:
        rec = lab.session("chromium", "aiortc", deadline_s=2.0, needs_relay=False)
    assert rec["verdict"] == "failed"
    assert "chromium binary not found: '/nonexistent/chromium-xyz'" in rec["a"]["reason"]
    assert "not connected within 2 s" in rec["b"]["reason"]


@root
@pytest.mark.usefixtures("require_chromium", "no_leftovers")
@pytest.mark.parametrize("fault", ["crash", "hang"])
def test_browser_crash_or_hang_mid_session(fault: str) -> None:
    from netsim.lab.lab import Lab
    from netsim.lab.topology import standard_topology
    from netsim.peers.launcher import Launcher
    from netsim.session.options import SessionOptions
    from netsim.session.run import start_peers, wait_peers

    with Lab(standard_topology("symmetric", "symmetric")) as lab, Launcher() as launcher:
        # No TURN: the session cannot connect, so the fault always hits it mid-session.
        opts = SessionOptions(
            peer_a="chromium", peer_b="chromium", turn="none", needs_relay=False, deadline_s=6
        )
        procs = start_peers(lab, launcher, lab.start_signaling(static_dir=page_directory()), opts)
        adapter = launcher.adapter("chromium")
        assert isinstance(adapter, ChromiumAdapter)
        browsers = list(adapter.pool.browsers.values())
        pids = [b.pid for b in browsers]
        assert len(browsers) == 2 and all(pids)
        victim = browsers[0].pid
        assert victim is not None
        profile = browsers[0].profile
        time.sleep(1.0)
        os.kill(victim, signal.SIGKILL if fault == "crash" else signal.SIGSTOP)
        t0 = time.monotonic()
        a, b = wait_peers(procs, 10.0 if fault == "crash" else 2.0)
        waited = time.monotonic() - t0
        reasons = {a.get("reason") or "", b.get("reason") or ""}
        assert a["state"] == b["state"] == "failed"
        want = "browser exited" if fault == "crash" else "browser hung"
        assert any(want in r or "crashed" in r for r in reasons), reasons
        assert waited < 10.0 + STOP_GRACE_S + 2
        launcher.close()
        for pid in pids:
            assert pid is not None and (not Path(f"/proc/{pid}").exists() or _zombie(pid)), pid
        assert not profile.exists()


class BrowserLabNoHold(BrowserLab):
    """A lab whose browsers are not started up front (the session starts them, or fails to)."""

    def __enter__(self) -> BrowserLab:
        self.lab.__enter__()
        self.lab.start_signaling(static_dir=page_directory())
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.launcher.close()
        finally:
            self.lab.__exit__(None, None, None)


_NOEXEC_SESSION = """
import json, os
from pathlib import Path
from netsim.lab.lab import Lab
from netsim.lab.topology import standard_topology
from netsim.peers.browser import page_directory
from netsim.peers.launcher import Launcher
from netsim.session.options import SessionOptions
from netsim.session.run import start_peers, wait_peers

runtime = Path(os.environ["NETSIM_RUNTIME_DIR"])
out = {"noexec": bool(os.statvfs(runtime).f_flag & os.ST_NOEXEC)}
with Lab(standard_topology("open", "open")) as lab, Launcher() as launcher:
    out["lab"] = lab.id
    opts = SessionOptions(peer_a="chromium", peer_b="aiortc", needs_relay=False, deadline_s=10.0)
    procs = start_peers(lab, launcher, lab.start_signaling(static_dir=page_directory()), opts)
    browser = next(iter(launcher.adapter("chromium").pool.browsers.values()))
    environ = dict(
        kv.split("=", 1) for kv in Path(f"/proc/{browser.pid}/environ").read_text().split("\\0") if "=" in kv
    )
    out["tmpdir"] = environ.get("TMPDIR", "")
    out["profile"] = str(browser.profile)
    a, b = wait_peers(procs, 20.0)
    out["states"] = [a["state"], b["state"]]
    out["reasons"] = [a["reason"], b["reason"]]
print(json.dumps(out))
"""


@root
@pytest.mark.usefixtures("require_chromium", "no_leftovers")
def test_a_browser_peer_runs_with_the_runtime_directory_noexec() -> None:
    """Nothing the lab executes is written under the runtime directory: a browser session works with it on
    a tmpfs mounted noexec (in a private mount namespace: the host's mounts are never touched), and the
    browser's temporary files go inside its profile, not /tmp. (A short path: Chromium's singleton socket
    lives in its temporary directory, and a unix socket's path has at most 107 bytes.)"""
    with tempfile.TemporaryDirectory(prefix="nsx-") as short:
        _noexec_session(Path(short))


def _noexec_session(runtime: Path) -> None:
    shell = f'mount -t tmpfs -o noexec,nosuid,nodev,size=256m netsim-noexec "{runtime}" && exec "$0" -c "$1"'
    env = {**os.environ, "NETSIM_RUNTIME_DIR": str(runtime)}
    out = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            shell,
            sys.executable,
            _NOEXEC_SESSION,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.splitlines()[-1])
    assert got["noexec"] is True
    assert got["states"] == ["connected", "connected"], got["reasons"]
    assert got["tmpdir"].startswith(got["profile"] + "/"), got
    assert not [n for n in os.listdir("/run/netns") if n.startswith(got["lab"])]  # the lab is gone
