"""coturn (turnserver) as the lab's STUN/TURN server: config, certificate, REST credentials, lifecycle."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import ipaddress
import secrets
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from netsim.lab import netns
from netsim.services import stun

STUN_PORT = 3478
TLS_PORT = 5349
AUX_PORT = 443  # TCP 443 gets through the udp-blocked firewall; coturn tells TLS from plain TCP itself
RELAY_PORTS = (50000, 59999)
REALM = "netsim.lab"
# Peers a relay must never reach: loopback, "this network", v4-mapped IPv6 (CVE-2026-27624), and the lab's
# private ranges (a relayed send to a private host candidate makes coturn drop the whole allocation).
DENIED_PEERS = (
    "0.0.0.0-0.255.255.255",
    "127.0.0.0-127.255.255.255",
    "10.0.0.0-10.255.255.255",
    "100.64.0.0-100.127.255.255",
    "172.16.0.0-172.31.255.255",
    "192.168.0.0-192.168.255.255",
    "::1",
    "::ffff:0.0.0.0-::ffff:255.255.255.255",
)


class CoturnError(RuntimeError):
    pass


def rest_credentials(secret: str, user: str, ttl_s: int = 3600, now: float | None = None) -> tuple[str, str]:
    """coturn use-auth-secret credentials: username "<expiry>:<user>", password b64 HMAC-SHA1 of it."""
    expiry = int((time.time() if now is None else now) + ttl_s)
    username = f"{expiry}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def write_certificate(directory: Path, ips: tuple[str, ...]) -> tuple[Path, Path]:
    """A self-signed certificate with IP SANs; peers trust it through SSL_CERT_FILE (it is its own CA)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "netsim lab TURN")])
    now = datetime.datetime.now(datetime.UTC)
    sans = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "turn-cert.pem", directory / "turn-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def render_config(
    ips: tuple[str, str], secret: str, cert: Path, key: Path, log_file: Path, pid_file: Path
) -> str:
    lines = [
        "# rendered by netsim for one lab; see netsim/coturn.py",
        *(f"listening-ip={ip}" for ip in ips),  # two addresses enable RFC 5780 NAT discovery
        f"relay-ip={ips[0]}",
        f"listening-port={STUN_PORT}",
        f"tls-listening-port={TLS_PORT}",
        f"aux-server={ips[0]}:{AUX_PORT}",
        f"min-port={RELAY_PORTS[0]}",
        f"max-port={RELAY_PORTS[1]}",
        "use-auth-secret",
        f"static-auth-secret={secret}",
        f"realm={REALM}",
        "fingerprint",
        f"cert={cert}",
        f"pkey={key}",
        "no-tlsv1",
        "no-tlsv1_1",
        "no-cli",
        "no-multicast-peers",
        *(f"denied-peer-ip={r}" for r in DENIED_PEERS),
        f"allowed-peer-ip={ips[0]}",  # relay-to-relay on this server
        f"log-file={log_file}",
        "simple-log",
        f"pidfile={pid_file}",
        "verbose",
    ]
    return "\n".join(lines) + "\n"


@dataclass
class Coturn:
    """A turnserver running in the lab's server namespace."""

    netns_name: str
    ips: tuple[str, str]
    workdir: Path
    secret: str = field(default_factory=lambda: secrets.token_hex(16))
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "turnserver.log"

    @property
    def ca_file(self) -> Path:
        return self.workdir / "turn-cert.pem"

    def start(self, timeout_s: float = 10.0) -> float:
        """Start turnserver and wait until it answers a STUN binding; returns seconds to ready."""
        cert, key = write_certificate(self.workdir, self.ips)
        conf = self.workdir / "turnserver.conf"
        conf.write_text(
            render_config(self.ips, self.secret, cert, key, self.log_path, self.workdir / "turnserver.pid")
        )
        t0 = time.monotonic()
        self.process = netns.popen(
            self.netns_name,
            ["turnserver", "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_ready(t0 + timeout_s)
        return time.monotonic() - t0

    def _wait_ready(self, deadline: float) -> None:
        sock = netns.socket_in(self.netns_name)
        try:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    raise CoturnError(f"turnserver exited with {self.process.returncode}: {self.log_tail()}")
                if stun.binding(sock, (self.ips[0], STUN_PORT), timeout=0.05) is not None:
                    return
            raise CoturnError(f"turnserver did not answer STUN within the timeout: {self.log_tail()}")
        finally:
            sock.close()

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def log_since(self, offset: int) -> str:
        """The log written after byte `offset` (a session's excerpt)."""
        try:
            with self.log_path.open("rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def ice_servers(self, turn: str, user: str, ttl_s: int = 3600) -> list[dict[str, str]]:
        """STUN first, then one TURN URL for `turn` (udp, tcp, tls, tcp443, tls443 or none)."""
        ip = self.ips[0]
        servers: list[dict[str, str]] = [{"urls": f"stun:{ip}:{STUN_PORT}"}]
        urls = {
            "udp": f"turn:{ip}:{STUN_PORT}?transport=udp",
            "tcp": f"turn:{ip}:{AUX_PORT}?transport=tcp",
            "tls": f"turns:{ip}:{AUX_PORT}?transport=tcp",
        }
        if turn == "none":
            return servers
        if turn not in urls:
            raise ValueError(f"turn: unknown TURN transport {turn!r} (choose udp, tcp, tls or none)")
        username, password = rest_credentials(self.secret, user, ttl_s)
        servers.append({"urls": urls[turn], "username": username, "credential": password})
        return servers
