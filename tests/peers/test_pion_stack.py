"""The Pion peer without a lab (no root): its build from the packaged sources, version detection, the
settings it records against Pion's sources, and the Go program's own handling of its config, of an
unreachable signaling server and of SIGTERM (on 127.0.0.1: no candidate is gathered, no packet leaves the
loopback). The tests fail, not skip, where Go or the Pion package is missing: .ci/setup installs them."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netsim.peers import pion_stack
from netsim.peers.pion_stack import GOCODE, PionBuildError, package_version, upstream
from netsim.peers.protocol import PROTOCOL, PeerConfig, check_record
from tests.peers.configs import peer_config

AGENT_CONFIG = GOCODE / "src/github.com/pion/ice/v2/agent_config.go"


def config(**changes: Any) -> PeerConfig:
    """A complete protocol config (tests/peers/configs.py) for a polite peer that never offers, whose
    signaling server is unreachable unless the test gives one: any field changed by keyword."""
    values: dict[str, Any] = {
        "user": "a-test",
        "target": "b-test",
        "polite": True,
        "signaling_url": "ws://127.0.0.1:1",
        "token": "t",
        "deadline_s": 2.0,
    }
    return peer_config(**{**values, **changes})


@pytest.fixture(scope="module")
def exe() -> Path:
    """The built peer (built now if out of date: the first build takes 15-60 s)."""
    try:
        return pion_stack.build()
    except PionBuildError as exc:
        pytest.fail(f"{exc}; .ci/setup installs Go and the Pion package", pytrace=False)


def run_peer(
    exe: Path, cfg: dict[str, Any] | str, tmp_path: Path, timeout: float = 20
) -> tuple[int, Any, str]:
    """Run the binary on a config file; (exit status, its last stdout line as JSON, stderr)."""
    path = tmp_path / "config.json"
    path.write_text(cfg if isinstance(cfg, str) else json.dumps(cfg))
    done = subprocess.run(
        [str(exe)],
        env={**os.environ, "NETSIM_PEER_CONFIG": str(path)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    return done.returncode, json.loads(lines[-1]) if lines else None, done.stderr


# --- version and build ---------------------------------------------------------------------------------


def test_upstream_version_drops_epoch_and_debian_revision() -> None:
    assert upstream("3.1.56-2") == "3.1.56"
    assert upstream("1:3.1.56-2+deb12u1") == "3.1.56"
    assert upstream("2.3.1") == "2.3.1"
    assert upstream(None) is None


def test_package_version_from_dpkg_agrees_with_the_changelog(monkeypatch: pytest.MonkeyPatch) -> None:
    found = package_version(pion_stack.WEBRTC_PACKAGE)
    assert found is not None and re.fullmatch(r"3\.\d+\.\d+-\S+", found), found
    monkeypatch.setenv("PATH", "/nonexistent")  # no dpkg-query: the package's changelog answers
    assert package_version(pion_stack.WEBRTC_PACKAGE) == found
    assert package_version("netsim-no-such-package") is None


def test_build_is_skipped_when_up_to_date_and_named_binaries_are_checked(
    exe: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = exe.stat().st_mtime_ns
    t0 = time.monotonic()
    assert pion_stack.build() == exe and exe.stat().st_mtime_ns == built
    assert time.monotonic() - t0 < 5  # a hash of the inputs, no compiler
    assert (pion_stack.build_dir() / "stamp").read_text() == pion_stack.stamp()
    monkeypatch.setenv("NETSIM_PION", "/nonexistent/netsim-pion")
    with pytest.raises(PionBuildError, match=r"NETSIM_PION=/nonexistent/netsim-pion: not an executable"):
        pion_stack.binary()
    monkeypatch.setenv("NETSIM_PION", str(exe))
    assert pion_stack.binary() == exe


def test_stamp_follows_the_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for path in pion_stack.sources():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    monkeypatch.setattr(pion_stack, "SOURCE_DIR", tmp_path)
    before = pion_stack.stamp()
    with (tmp_path / "main.go").open("a") as f:
        f.write("\n// changed\n")
    assert pion_stack.stamp() != before


def test_missing_go_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pion_stack, "build_dir", lambda: tmp_path)
    monkeypatch.setattr(pion_stack, "go_binary", lambda: None)
    with pytest.raises(PionBuildError, match=r"needs Go: `go` is not on PATH \(run \.ci/setup"):
        pion_stack.build(force=True)
    adapter = pion_stack.UnavailableAdapter("pion", "pion: not here")
    rec = adapter.open(None).run(config()).wait(0)  # type: ignore[arg-type]
    assert rec["state"] == "failed" and rec["reason"] == "pion: not here"
    check_record(rec, stack="pion", cfg=config(user=rec["user"]))


def test_recorded_settings_are_pions_defaults(exe: Path, tmp_path: Path) -> None:
    """The acceptance waits and ICE timeouts the record states are those of the packaged pion/ice."""
    source = AGENT_CONFIG.read_text()

    def default(name: str) -> float:
        value = re.search(rf"default{name}\s*=\s*(.+)", source)
        assert value is not None, name
        expr = value.group(1).split("//")[0].strip()
        number = re.fullmatch(r"(\d+)(?:\s*\*\s*time\.(Millisecond|Second))?", expr)
        assert number is not None, expr
        scale = {"Millisecond": 0.001, "Second": 1.0, None: 1e-9}[number.group(2)]
        return int(number.group(1)) * scale

    _, rec, _ = run_peer(exe, "{}", tmp_path)
    settings = rec["settings"]
    for key, name in [
        ("host_acceptance_min_wait_s", "HostAcceptanceMinWait"),
        ("srflx_acceptance_min_wait_s", "SrflxAcceptanceMinWait"),
        ("prflx_acceptance_min_wait_s", "PrflxAcceptanceMinWait"),
        ("relay_acceptance_min_wait_s", "RelayAcceptanceMinWait"),
        ("ice_disconnected_timeout_s", "DisconnectedTimeout"),
        ("ice_failed_timeout_s", "FailedTimeout"),
        ("ice_keepalive_s", "KeepaliveInterval"),
    ]:
        assert settings[key] == pytest.approx(default(name)), key
    assert rec["version"] == pion_stack.version() == upstream(package_version(pion_stack.WEBRTC_PACKAGE))
    assert settings["ice"] == upstream(package_version(pion_stack.ICE_PACKAGE))
    assert settings["go"].startswith("go1.") and settings["rollback"] is False


# --- the Go program and its config -----------------------------------------------------------------------


def test_a_config_missing_keys_is_refused_with_a_valid_record(exe: Path, tmp_path: Path) -> None:
    cfg = config().to_json()
    del cfg["settle_s"], cfg["t0"]
    status, rec, err = run_peer(exe, cfg, tmp_path)
    assert status == 2 and "config: missing settle_s, t0" in err
    assert rec["state"] == "failed" and rec["reason"] == "config: missing settle_s, t0"
    check_record(rec, stack="pion", cfg=config(user="a-test"))


def test_another_protocol_version_is_refused(exe: Path, tmp_path: Path) -> None:
    status, rec, _ = run_peer(exe, {**config().to_json(), "protocol": 2}, tmp_path)
    assert status == 2 and rec["reason"] == "config: protocol 2, this peer speaks 1"
    assert rec["protocol"] == PROTOCOL  # the record is still protocol 1's, so netsim can read it


def test_unreachable_signaling_fails_the_session_with_a_record(exe: Path, tmp_path: Path) -> None:
    cfg = config(signaling_url=f"ws://127.0.0.1:{_closed_port()}").to_json()
    status, rec, _ = run_peer(exe, cfg, tmp_path)
    assert status == 0
    assert rec["state"] == "failed", rec
    assert rec["reason"].startswith("signaling connection failed:"), rec["reason"]
    checked = check_record(rec, stack="pion", cfg=config(user="a-test"))
    assert checked["pairs"] == [] and checked["marks"]["start"] == pytest.approx(cfg["t0"], abs=1e-5)


@pytest.fixture
def signaling() -> Iterator[tuple[str, str]]:
    """A signaling server on 127.0.0.1 (its URL and secret); nobody else connects to it."""
    from netsim.services.signaling import create_app
    from netsim.services.signaling_server import run_in_thread

    secret = "pion-test-secret"
    with run_in_thread(create_app(secret)) as url:
        yield url.replace("http://", "ws://", 1), secret


def test_sigterm_stops_the_peer_with_its_record_within_2_s(
    exe: Path, tmp_path: Path, signaling: tuple[str, str]
) -> None:
    """Signed in, the target never comes: SIGTERM ends it (stopped) with a record, well within 2 s."""
    from netsim.services.signaling import make_token

    url, secret = signaling
    cfg = config(signaling_url=url, token=make_token(secret, "a-test"), deadline_s=30.0)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg.to_json()))
    proc = subprocess.Popen(
        [str(exe)],
        env={**os.environ, "NETSIM_PEER_CONFIG": str(path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        time.sleep(1.0)  # signed in by then (the record's mark says when)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=5)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    rec = check_record(json.loads(out.decode().strip().splitlines()[-1]), stack="pion", cfg=cfg)
    assert took < 2.0 and proc.returncode == 0
    assert rec["state"] == "failed" and rec["reason"] == "stopped"
    assert "signed_in" in rec["marks"] and cfg.t0 < rec["marks"]["signed_in"] < t0
    assert {"what": "peer", "state": "stopped"}.items() <= rec["states"][-1].items()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_config_keys_are_the_protocols() -> None:
    """The Go peer's list of required keys is PeerConfig's (a key added to the protocol must reach it)."""
    source = (pion_stack.SOURCE_DIR / "config.go").read_text()
    block = source.split("var configKeys = []string{", 1)[1].split("}", 1)[0]
    assert re.findall(r'"(\w+)"', block) == [f.name for f in dataclasses.fields(PeerConfig)]


def test_go_sources_are_gofmt_clean_and_small() -> None:
    gofmt = Path(pion_stack.go_binary() or "go").resolve().with_name("gofmt")  # beside the go it builds with
    done = subprocess.run([str(gofmt), "-l", str(pion_stack.SOURCE_DIR)], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout == "", done.stdout + done.stderr
    for path in pion_stack.sources():
        assert len(path.read_text().splitlines()) <= 400, path  # the repository's file limit
