"""coturn (turnserver) as the lab's STUN/TURN server: config, certificate, REST credentials, lifecycle."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import ipaddress
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from netsim.lab import netns
from netsim.services import stun
from netsim.vocab import AUX_PORT, RELAY_PORTS, STUN_PORT, TURN_TLS_PORT

REALM = "netsim.lab"
# Peers a relay must never reach (docs/turn.md): "this network", loopback, the lab's private and carrier
# ranges (a relayed send to a private host candidate makes coturn drop the whole allocation), link-local,
# multicast and broadcast, v4-mapped IPv6 (CVE-2026-27624). The server's own listening addresses are added
# per lab. The lab's public addresses (198.18.0.0/15) stay allowed: NAT routers and open sites live there.
DENIED_PEERS = (
    "0.0.0.0-0.255.255.255",
    "10.0.0.0-10.255.255.255",
    "100.64.0.0-100.127.255.255",
    "127.0.0.0-127.255.255.255",
    "169.254.0.0-169.254.255.255",
    "172.16.0.0-172.31.255.255",
    # IETF protocol assignments (RFC 6890): a clat host's IPv4 is 192.0.0.4 (RFC 7335), a host candidate
    # no relay can reach; permitted, a relayed send to it tore down the caller's allocation.
    "192.0.0.0-192.0.0.255",
    "192.168.0.0-192.168.255.255",
    "198.18.255.255",  # the lab internet's broadcast address
    "224.0.0.0-255.255.255.255",
    "::1",
    "::ffff:0.0.0.0-::ffff:255.255.255.255",
    "fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "ff00::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    # IPv6 special ranges (RFC 6890): discard-only, NAT64 prefixes (the well-known ones and the lab's
    # network-specific one: a peer there is an IPv4 address in disguise), Teredo, ORCHID, 6to4. Never a bare
    # "::": coturn reads it as every address.
    "64:ff9b::-64:ff9b::ffff:ffff",
    "64:ff9b:1::-64:ff9b:1:ffff:ffff:ffff:ffff:ffff",
    "100::-100::ffff:ffff:ffff:ffff",
    "2001::-2001:0:ffff:ffff:ffff:ffff:ffff:ffff",
    "2001:10::-2001:2f:ffff:ffff:ffff:ffff:ffff:ffff",
    "2001:db8:64::-2001:db8:64::ffff:ffff",
    "2002::-2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
)
# Quotas (docs/turn.md). coturn counts allocations per REST user (the part after "<expiry>:"), and peers get
# one user each: a browser allocates over UDP, TCP and TLS and again after an ICE restart (6), so 32 leaves
# room while one greedy user can no longer take every relay port (then everyone gets 508).
USER_QUOTA = 32
# 100 concurrent pairs x 2 peers x 6 allocations; far below the 10,000 relay ports, so ports never run out.
TOTAL_QUOTA = 1200
# Bytes per second per TURN session, each direction: 10 Mbit/s, several times what a lab session sends.
MAX_BPS = 1_250_000
# REST credentials: coturn checks the expiry only when a session first authenticates (established allocations
# refresh on the cached key), so the lifetime only needs to cover a session's start. Sessions connect within
# seconds and last minutes; 10 minutes covers the slowest start with margin, and nothing issues more than 1 h.
CREDENTIAL_TTL_S = 600
MAX_CREDENTIAL_TTL_S = 3600
# How long the first readiness probe waits for its answer; each next one waits 1.5 times longer (at most
# READY_POLL_MAX_S), so that a loaded server, slower to answer than the wait, is still heard. turnserver
# answers ~20 ms after it starts and a probe sent before it listens is lost: 50 ms probes made ready ~52 ms.
READY_POLL_S = 0.01
READY_POLL_MAX_S = 0.25


class CoturnError(RuntimeError):
    pass


def rest_password(secret: str, username: str) -> str:
    """coturn use-auth-secret password for `username`: base64 of HMAC-SHA1(secret, username)."""
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def rest_credentials(
    secret: str, user: str, ttl_s: int = CREDENTIAL_TTL_S, now: float | None = None
) -> tuple[str, str]:
    """Short-lived REST credentials: username "<expiry>:<user>" and its password.

    `ttl_s` must be in 1..MAX_CREDENTIAL_TTL_S: coturn accepts any expiry ahead of it (even 32-bit-wrapped
    ones), so the only limit on a credential's life is the one applied here.
    """
    if not 0 < ttl_s <= MAX_CREDENTIAL_TTL_S:
        raise ValueError(f"ttl_s: {ttl_s!r} is not in 1..{MAX_CREDENTIAL_TTL_S} seconds")
    expiry = int((time.time() if now is None else now) + ttl_s)
    username = f"{expiry}:{user}"
    return username, rest_password(secret, username)


# The TURN server's lab host name, in its certificate: Firefox does TURN over TLS only to a host name (an IP
# literal never connects), resolved inside its host's namespace (netsim.peers.firefox_launch).
TURN_HOST = "turn.netsim.test"
CA_FILE = "turn-ca.pem"
CERT_FILE = "turn-cert.pem"
KEY_FILE = "turn-key.pem"  # 0600: the private key


def write_certificate(
    directory: Path, ips: tuple[str, ...], names: tuple[str, ...] = (TURN_HOST,)
) -> tuple[Path, Path]:
    """The lab's CA (CA_FILE) and a server certificate it signs, with IP and DNS SANs; returns (the chain
    file coturn presents: server certificate then CA, its key). Peers trust the CA (`Coturn.ca_file`):
    aiortc through SSL_CERT_FILE, Firefox from its profile (it refuses a self-signed CA certificate as a
    server's), Chromium by the CA's SPKI pin, which it matches in the presented chain."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def build(subject: str, issuer: str, public: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
        )

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        build("netsim lab CA", "netsim lab CA", ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    sans: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    sans += [x509.DNSName(name) for name in names]
    cert = (
        build("netsim lab TURN", "netsim lab CA", key.public_key())
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (directory / CA_FILE).write_bytes(ca.public_bytes(pem))
    cert_path, key_path = directory / CERT_FILE, directory / KEY_FILE
    cert_path.write_bytes(cert.public_bytes(pem) + ca.public_bytes(pem))
    private = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    write_private(key_path, private.decode())
    return cert_path, key_path


def render_config(
    ips: tuple[str, str],
    secret: str,
    cert: Path,
    key: Path,
    log_file: Path,
    pid_file: Path,
    relay_ip: str | None = None,
    ips6: tuple[str, ...] = (),
    relay_ip6: str | None = None,
) -> str:
    """turnserver.conf for one lab: listening on `ips`, relaying from `relay_ip` (default: `ips[0]`); in a
    lab with IPv6 also on `ips6`, relaying IPv6 from `relay_ip6` when a client asks for it (RFC 6156: the
    relay is IPv4 unless the allocation requests another family, whatever family the client came over).

    Every listening address is a denied peer, so nothing on the server host (signaling, coturn's own ports)
    is reachable through a relay. The relay address stays an allowed peer for relay-to-relay, which is why it
    must be an address of its own: with `relay_ip` None, relay-to-relay on this server is refused.
    """
    relay = relay_ip or ips[0]
    relays = [relay, *([relay_ip6] if relay_ip6 else [])]
    own = dict.fromkeys((*ips, *ips6))
    denied = [*DENIED_PEERS, *(ip for ip in own if ip not in (relay_ip, relay_ip6))]
    lines = [
        "# rendered by netsim for one lab; see netsim/services/coturn.py and docs/turn.md",
        *(f"listening-ip={ip}" for ip in (*ips, *ips6)),  # two of a family enable RFC 5780 NAT discovery
        *(f"relay-ip={ip}" for ip in relays),
        f"listening-port={STUN_PORT}",
        f"tls-listening-port={TURN_TLS_PORT}",
        f"aux-server={ips[0]}:{AUX_PORT}",
        *([f"aux-server=[{ips6[0]}]:{AUX_PORT}"] if ips6 else []),
        f"min-port={RELAY_PORTS[0]}",
        f"max-port={RELAY_PORTS[1]}",
        "use-auth-secret",
        f"static-auth-secret={secret}",
        f"realm={REALM}",
        f"user-quota={USER_QUOTA}",
        f"total-quota={TOTAL_QUOTA}",
        f"max-bps={MAX_BPS}",
        "fingerprint",
        f"cert={cert}",
        f"pkey={key}",
        "no-tlsv1",
        "no-tlsv1_1",
        "no-cli",
        "no-multicast-peers",
        *(f"denied-peer-ip={r}" for r in denied),
        *(f"allowed-peer-ip={ip}" for ip in (relay_ip, relay_ip6) if ip),  # relay-to-relay on this server
        f"log-file={log_file}",
        "simple-log",
        f"pidfile={pid_file}",
        "verbose",
    ]
    return "\n".join(lines) + "\n"


def write_private(path: Path, text: str) -> None:
    """Write a secret-bearing file readable by its owner only (0600 from creation, no window at 0644)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # O_CREAT's mode applies only to a new file
    with os.fdopen(fd, "w") as f:
        f.write(text)


def ready_waits() -> Iterator[float]:
    """How long each readiness probe waits for its answer: READY_POLL_S, then 1.5 times longer each time, at
    most READY_POLL_MAX_S."""
    wait = READY_POLL_S
    while True:
        yield wait
        wait = min(wait * 1.5, READY_POLL_MAX_S)


@dataclass
class Coturn:
    """A turnserver running in the lab's server namespace."""

    netns_name: str
    ips: tuple[str, str]  # listening addresses (RFC 5780 needs two)
    workdir: Path
    secret: str = field(default_factory=lambda: secrets.token_hex(16))
    relay_ip: str | None = None  # an address of the server where nothing listens; None: relay from ips[0]
    process: subprocess.Popen[bytes] | None = None
    ips6: tuple[str, ...] = ()  # IPv6 listening addresses, in a lab with IPv6
    relay_ip6: str | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "turnserver.log"

    @property
    def ca_file(self) -> Path:
        return self.workdir / CA_FILE

    def start(self, timeout_s: float = 10.0) -> float:
        """Start turnserver and wait until it answers a STUN binding; returns seconds to ready."""
        # A restart keeps the certificate: peers that pinned or trusted it (Chromium's SPKI pin) still do.
        cert, key = self.workdir / CERT_FILE, self.workdir / KEY_FILE
        if not (cert.is_file() and key.is_file() and self.ca_file.is_file()):
            cert, key = write_certificate(self.workdir, (*self.ips, *self.ips6))
        conf = self.workdir / "turnserver.conf"
        pid_file = self.workdir / "turnserver.pid"
        write_private(
            conf,
            render_config(
                self.ips,
                self.secret,
                cert,
                key,
                self.log_path,
                pid_file,
                self.relay_ip,
                ips6=self.ips6,
                relay_ip6=self.relay_ip6,
            ),
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
        waits = ready_waits()
        try:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    raise CoturnError(f"turnserver exited with {self.process.returncode}: {self.log_tail()}")
                if stun.binding(sock, (self.ips[0], STUN_PORT), timeout=next(waits)) is not None:
                    return
            raise CoturnError(f"turnserver did not answer STUN within the timeout: {self.log_tail()}")
        finally:
            sock.close()

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        # SIGKILL at once: coturn keeps nothing worth flushing, and its graceful exit cost ~120 ms per lab.
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

    def ice_servers(self, turn: str, user: str, ttl_s: int = CREDENTIAL_TTL_S) -> list[dict[str, str]]:
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
