"""coturn config rendering and REST credentials (no root: nothing is started here)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import time
from pathlib import Path

import pytest

from netsim.services import coturn
from netsim.vocab import RELAY_PORTS, STUN_PORT

IPS = ("198.18.0.2", "198.18.0.3")
RELAY = "198.18.0.4"


def _config(relay_ip: str | None = RELAY) -> list[str]:
    text = coturn.render_config(
        IPS, "s3cret", Path("/c.pem"), Path("/k.pem"), Path("/l"), Path("/p"), relay_ip
    )
    return text.splitlines()


def _values(lines: list[str], key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in lines if line.startswith(key + "=")]


def test_relay_address_apart_from_the_listening_ones() -> None:
    lines = _config()
    assert _values(lines, "listening-ip") == list(IPS)
    assert _values(lines, "relay-ip") == [RELAY]
    assert _values(lines, "allowed-peer-ip") == [RELAY]
    assert _values(lines, "denied-peer-ip") == [*coturn.DENIED_PEERS, *IPS]


def test_without_a_relay_address_every_listening_address_is_denied_and_none_allowed() -> None:
    lines = _config(None)
    assert _values(lines, "relay-ip") == [IPS[0]]
    assert _values(lines, "allowed-peer-ip") == []
    assert set(IPS) <= set(_values(lines, "denied-peer-ip"))


@pytest.mark.parametrize(
    "needed",
    [
        "0.0.0.0-0.255.255.255",
        "127.0.0.0-127.255.255.255",
        "10.0.0.0-10.255.255.255",
        "100.64.0.0-100.127.255.255",
        "192.0.0.0-192.0.0.255",  # a clat host's 192.0.0.4
        "169.254.0.0-169.254.255.255",
        "224.0.0.0-255.255.255.255",
        "198.18.255.255",
        "::1",
        "::ffff:0.0.0.0-::ffff:255.255.255.255",
    ],
)
def test_denied_peers_cover(needed: str) -> None:
    assert needed in coturn.DENIED_PEERS


def test_no_denied_range_swallows_the_lab_internet() -> None:
    """A bare "::" once made coturn deny every IPv4 peer too; public lab addresses must stay reachable."""
    assert "::" not in coturn.DENIED_PEERS
    v4 = [r.split("-") for r in coturn.DENIED_PEERS if ":" not in r]
    public = [int.from_bytes(bytes(map(int, ip.split("."))), "big") for ip in ("198.18.0.4", "198.19.1.2")]
    for bounds in v4:
        low, high = (int.from_bytes(bytes(map(int, b.split("."))), "big") for b in (bounds[0], bounds[-1]))
        assert not any(low <= ip <= high for ip in public), bounds


def test_quotas_and_bandwidth_cap() -> None:
    lines = _config()
    assert _values(lines, "user-quota") == [str(coturn.USER_QUOTA)]
    assert _values(lines, "total-quota") == [str(coturn.TOTAL_QUOTA)]
    assert _values(lines, "max-bps") == [str(coturn.MAX_BPS)]
    assert 0 < coturn.USER_QUOTA <= 32
    assert coturn.TOTAL_QUOTA >= 100 * 2 * 6  # 100 pairs, 2 peers, UDP/TCP/TLS twice (ICE restart)
    assert coturn.TOTAL_QUOTA < RELAY_PORTS[1] - RELAY_PORTS[0]  # ports never run out first


def test_rest_credentials() -> None:
    username, password = coturn.rest_credentials("s3cret", "peer-a", ttl_s=600, now=1_700_000_000.5)
    assert username == "1700000600:peer-a"
    expected = base64.b64encode(hmac.new(b"s3cret", username.encode(), hashlib.sha1).digest()).decode()
    assert password == expected == coturn.rest_password("s3cret", username)


@pytest.mark.parametrize("ttl_s", [0, -1, coturn.MAX_CREDENTIAL_TTL_S + 1, 10 * 365 * 86400])
def test_rest_credentials_are_short_lived(ttl_s: int) -> None:
    with pytest.raises(ValueError, match=f"ttl_s: {ttl_s}"):
        coturn.rest_credentials("s3cret", "peer-a", ttl_s=ttl_s)


def test_ice_servers_issue_the_default_lifetime(tmp_path: Path) -> None:
    server = coturn.Coturn("unused-netns", IPS, tmp_path, secret="s3cret", relay_ip=RELAY)
    stun_server, turn = server.ice_servers("udp", "peer-a")
    assert stun_server == {"urls": f"stun:{IPS[0]}:{STUN_PORT}"}
    expiry = int(turn["username"].split(":")[0])
    assert 0 < expiry - time.time() <= coturn.CREDENTIAL_TTL_S <= coturn.MAX_CREDENTIAL_TTL_S


def test_readiness_probes_start_short_and_grow_to_hear_a_slow_server() -> None:
    waits = list(itertools.islice(coturn.ready_waits(), 20))
    assert waits[0] == coturn.READY_POLL_S <= 0.01  # a server up in ~20 ms is heard within ~30 ms
    assert waits == sorted(waits) and max(waits) == waits[-1] == coturn.READY_POLL_MAX_S
    # A server that takes 100 ms to answer (a loaded machine) is heard by the 7th probe, within 0.5 s.
    first_long = next(i for i, w in enumerate(waits) if w >= 0.1)
    assert first_long <= 6 and sum(waits[:first_long]) < 0.5


def test_write_private_makes_0600_even_over_a_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "turnserver.conf"
    path.write_text("old")
    path.chmod(0o644)
    coturn.write_private(path, "static-auth-secret=x\n")
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_text() == "static-auth-secret=x\n"


def test_certificate_is_a_server_certificate_issued_by_the_lab_ca(tmp_path: Path) -> None:
    """Firefox refuses a self-signed CA certificate as a server's (CA_CERT_USED_AS_END_ENTITY) and does
    TURN over TLS only to a host name: the lab's CA issues a leaf with the TURN host name."""
    from cryptography import x509

    from netsim.services.coturn import CA_FILE, TURN_HOST, write_certificate

    chain, key = write_certificate(tmp_path, ("198.18.0.2", "198.18.0.3"))
    leaf, ca_in_chain = x509.load_pem_x509_certificates(chain.read_bytes())
    (ca,) = x509.load_pem_x509_certificates((tmp_path / CA_FILE).read_bytes())
    assert ca_in_chain == ca
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    leaf.verify_directly_issued_by(ca)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [TURN_HOST]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["198.18.0.2", "198.18.0.3"]
    assert key.stat().st_mode & 0o777 == 0o600
