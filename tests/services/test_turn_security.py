"""What coturn in a real lab lets a relay reach, whom it authenticates, and how much one user may take.

One lab (an open site `a` with the public host 198.19.1.2, a symmetric site `b` whose host is the TURN client,
the server with signaling) serves the whole module; every test uses its own REST user. See docs/turn.md.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from aioice.stun import Method

from netsim.lab import netns
from netsim.lab.lab import Lab
from netsim.lab.topology import RELAY_ADDRESS, SERVER_ADDRESSES, standard_topology
from netsim.services import coturn
from netsim.services.stun import TCP_TRANSPORT, TurnClient
from netsim.vocab import AUX_PORT, SIGNALING_PORT, STUN_PORT, TURN_TLS_PORT

pytestmark = pytest.mark.root

PUBLIC_PEER = "198.19.1.2"  # host `a` on the open site
FORBIDDEN = 403
UNAUTHORIZED = 401
QUOTA_REACHED = 486
FAMILY_MISMATCH = 443  # an IPv6 peer on the lab's IPv4-only relay; the deny list stands behind it

DENIED_V4 = {
    "loopback": "127.0.0.1",
    "this-network": "0.0.0.0",
    "this-network-other": "0.1.2.3",
    "lab-lan": "10.2.0.2",
    "cgn": "100.64.1.2",
    "private-172": "172.16.0.1",
    "private-192": "192.168.1.1",
    "clat-host": "192.0.0.4",  # RFC 7335: checking it once tore down the caller's allocation
    "link-local": "169.254.1.1",
    "multicast": "224.0.0.1",
    "multicast-scoped": "239.255.255.250",
    "broadcast": "255.255.255.255",
    "internet-broadcast": "198.18.255.255",
    "server-first": SERVER_ADDRESSES[0],
    "server-second": SERVER_ADDRESSES[1],
}
DENIED_V6 = {
    "v6-loopback": "::1",
    "v4-mapped-loopback": "::ffff:127.0.0.1",
    "v4-mapped-server": "::ffff:198.18.0.2",
    "v6-link-local": "fe80::1",
}


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(standard_topology("open", "symmetric")) as lab:
        lab.start_signaling()
        yield lab


@pytest.fixture
def clients(lab: Lab) -> Iterator[_Clients]:
    with ExitStack() as stack:
        yield _Clients(lab, stack)


class _Clients:
    """TURN clients on host `b` (behind the symmetric NAT) whose sockets live until the test ends."""

    def __init__(self, lab: Lab, stack: ExitStack) -> None:
        self.lab, self.stack = lab, stack
        assert lab.coturn is not None
        self.coturn = lab.coturn
        self.server = (self.coturn.ips[0], STUN_PORT)

    def new(self, user: str, tcp: bool = False, credentials: tuple[str, str] | None = None) -> TurnClient:
        username, password = credentials or coturn.rest_credentials(self.coturn.secret, user, 60)
        sock = self.socket("b", socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
        if tcp:
            sock.settimeout(2)
            sock.connect(self.server)
        client = TurnClient(sock, self.server, username, password)
        self.stack.callback(client.release)  # before the socket closes: frees the quota and the port now
        return client

    def allocated(self, user: str, tcp: bool = False) -> TurnClient:
        client = self.new(user, tcp)
        reply = client.allocate(TCP_TRANSPORT) if tcp else client.allocate()
        assert reply.ok, reply
        return client

    def socket(self, node: str, kind: int) -> socket.socket:
        return self.stack.enter_context(netns.socket_in(self.lab.netns(node), kind=kind))


@pytest.mark.parametrize("peer", list(DENIED_V4.values()), ids=list(DENIED_V4))
def test_udp_relay_refuses_a_denied_peer(clients: _Clients, peer: str) -> None:
    client = clients.allocated("udp-denied")
    assert client.create_permission(peer).code == FORBIDDEN
    assert client.channel_bind((peer, 9)).code == FORBIDDEN


@pytest.mark.parametrize("peer", list(DENIED_V6.values()), ids=list(DENIED_V6))
def test_udp_relay_refuses_an_ipv6_peer(clients: _Clients, peer: str) -> None:
    reply = clients.allocated("udp-v6").create_permission(peer)
    assert reply.code in (FORBIDDEN, FAMILY_MISMATCH), reply


def test_udp_relay_reaches_a_public_peer_and_never_the_server(clients: _Clients) -> None:
    port = 40001
    listeners = {}
    for ip, node in ((PUBLIC_PEER, "a"), (SERVER_ADDRESSES[0], "server"), (SERVER_ADDRESSES[1], "server")):
        listeners[ip] = clients.socket(node, socket.SOCK_DGRAM)
        listeners[ip].bind((ip, port))
        listeners[ip].settimeout(0.5)
    client = clients.allocated("udp-reach")
    assert client.create_permission(PUBLIC_PEER).ok
    for ip in listeners:
        client.send((ip, port), b"through the relay to " + ip.encode())
    data, sender = listeners[PUBLIC_PEER].recvfrom(2048)
    assert (data, sender[0]) == (b"through the relay to " + PUBLIC_PEER.encode(), RELAY_ADDRESS)
    for ip in SERVER_ADDRESSES:
        with pytest.raises(TimeoutError):
            listeners[ip].recvfrom(2048)


def test_relay_to_relay_on_this_server(clients: _Clients) -> None:
    """Symmetric x symmetric: one peer's relay sends to the other's, both on this server's relay address."""
    first, second = clients.allocated("r2r-1"), clients.allocated("r2r-2")
    assert first.relayed is not None and second.relayed is not None
    assert first.relayed[0] == second.relayed[0] == RELAY_ADDRESS
    assert first.create_permission(RELAY_ADDRESS).ok and second.create_permission(RELAY_ADDRESS).ok
    first.send(second.relayed, b"relay to relay")
    assert second.receive(timeout=2) == (first.relayed, b"relay to relay")


@pytest.mark.parametrize(
    "peer",
    [
        (SERVER_ADDRESSES[1], SIGNALING_PORT),
        (SERVER_ADDRESSES[0], AUX_PORT),
        (SERVER_ADDRESSES[0], STUN_PORT),
        (SERVER_ADDRESSES[1], STUN_PORT),
        (SERVER_ADDRESSES[0], TURN_TLS_PORT),
    ],
    ids=["signaling", "turn-443", "turn-3478-first", "turn-3478-second", "turns-5349"],
)
def test_tcp_relay_refuses_services_on_the_server(clients: _Clients, peer: tuple[str, int]) -> None:
    direct = clients.socket("server", socket.SOCK_STREAM)
    direct.settimeout(2)
    direct.connect(peer)  # something listens there: only the deny list stands between it and the relay
    assert clients.allocated("tcp-denied", tcp=True).connect(peer).code == FORBIDDEN


def test_tcp_relay_refuses_a_listener_on_the_server(clients: _Clients) -> None:
    listener = clients.socket("server", socket.SOCK_STREAM)
    listener.bind((SERVER_ADDRESSES[0], 40002))
    listener.listen()
    assert clients.allocated("tcp-listener", tcp=True).connect((SERVER_ADDRESSES[0], 40002)).code == FORBIDDEN


def test_tcp_relay_reaches_a_public_peer(clients: _Clients) -> None:
    listener = clients.socket("a", socket.SOCK_STREAM)
    listener.bind((PUBLIC_PEER, 40003))
    listener.listen()
    listener.settimeout(2)
    reply = clients.allocated("tcp-public", tcp=True).connect((PUBLIC_PEER, 40003))
    assert reply.ok and "CONNECTION-ID" in reply.attributes, reply
    conn, origin = listener.accept()
    conn.close()
    assert origin[0] == RELAY_ADDRESS


def _rest(secret: str, expiry: float, user: str = "cred") -> tuple[str, str]:
    username = f"{int(expiry)}:{user}"
    return username, coturn.rest_password(secret, username)


@pytest.mark.parametrize("case", ["expired", "wrong-secret", "missing", "no-expiry"])
def test_bad_credentials_get_401(clients: _Clients, case: str) -> None:
    secret, now = clients.coturn.secret, time.time()
    credentials = {
        "expired": _rest(secret, now - 5),
        "wrong-secret": _rest("not-the-secret", now + 60),
        "missing": ("", ""),
        "no-expiry": ("cred", coturn.rest_password(secret, "cred")),
    }[case]
    client = clients.new("unused", credentials=credentials)
    if case == "missing":
        client.username = client.password = None
    assert client.allocate().code == UNAUTHORIZED


def test_issued_credentials_are_accepted_and_stay_out_of_the_log(clients: _Clients) -> None:
    client = clients.new("issued")
    assert client.allocate().ok and client.create_permission(PUBLIC_PEER).ok
    assert client.password is not None
    log = clients.coturn.log_path.read_text()
    assert client.username in log  # the log names users (records quote it), but never a password
    assert client.password not in log and clients.coturn.secret not in log


@pytest.mark.parametrize("ahead_s", [10 * 365 * 86400, 2**32 + 60], ids=["ten-years-ahead", "wrapped-32-bit"])
def test_coturn_accepts_any_expiry_ahead_so_netsim_never_issues_one(clients: _Clients, ahead_s: int) -> None:
    """coturn has no maximum lifetime and reads the expiry modulo 2**32 (docs/turn.md): the secret and
    rest_credentials' cap are the only limits. If this starts failing, coturn changed: update docs/turn.md."""
    client = clients.new("far", credentials=_rest(clients.coturn.secret, time.time() + ahead_s))
    assert client.allocate().ok
    with pytest.raises(ValueError, match="ttl_s"):
        coturn.rest_credentials(clients.coturn.secret, "far", ahead_s)


def test_an_allocation_outlives_its_credential(clients: _Clients) -> None:
    """coturn checks the expiry only when a session authenticates: why a credential needs to cover a
    session's start, not its length (docs/turn.md)."""
    credentials = coturn.rest_credentials(clients.coturn.secret, "brief", ttl_s=1)
    client = clients.new("brief", credentials=credentials)
    assert client.allocate().ok
    time.sleep(max(0.0, int(credentials[0].split(":")[0]) + 1.1 - time.time()))
    assert client.create_permission(PUBLIC_PEER).ok
    assert client.request(Method.REFRESH, {"LIFETIME": 600}).ok
    assert clients.new("brief", credentials=credentials).allocate().code == UNAUTHORIZED


def test_a_greedy_user_is_refused_while_another_still_allocates(clients: _Clients) -> None:
    greedy = [clients.new("greedy") for _ in range(coturn.USER_QUOTA + 2)]
    codes = [c.allocate().code for c in greedy]
    assert codes == [None] * coturn.USER_QUOTA + [QUOTA_REACHED] * 2
    assert clients.new("modest").allocate().ok
    assert clients.new("greedy", tcp=True).allocate(TCP_TRANSPORT).code == QUOTA_REACHED


def test_secret_bearing_files_are_private(lab: Lab) -> None:
    assert lab.coturn is not None
    for name in ("turnserver.conf", "turn-key.pem"):
        assert (lab.workdir / name).stat().st_mode & 0o777 == 0o600, name
    secret = lab.coturn.secret.encode()
    for path in lab.workdir.iterdir():
        if path.is_file() and path.stat().st_mode & 0o077:
            assert secret not in path.read_bytes(), f"{path.name} is readable by others and holds the secret"
