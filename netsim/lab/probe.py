"""NAT classification: coturn's turnutils_natdiscovery as an independent check, and the project's own probe.

The own probe uses real UDP sockets made in the lab's namespaces: the host's, and the server's for the remote
end (ports from 40000 on, apart from coturn's). It measures what natdiscovery cannot: whether a
simultaneous open (hole punch) keeps the mapping, whether hairpinned packets come from the sender's external
address (RFC 4787 REQ-9), and how long an idle mapping stays open.
"""

from __future__ import annotations

import itertools
import re
import secrets
import socket
import subprocess
import time
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

from netsim.lab import netns
from netsim.services import stun
from netsim.vocab import ADM, APDM, EIM, STUN_PORT

if TYPE_CHECKING:
    from netsim.lab.lab import Lab

PROBE_PORTS = range(40000, 41000)
WAIT_S = 0.5  # a lab path answers in well under a millisecond; this only bounds a negative answer
STUN_TIMEOUT_S = 1.0
NATDISCOVERY_TIMEOUT_S = 60.0
LIFETIME_UPPER_S = 65.0

Address = tuple[str, int]

_NAMES = {"Endpoint Independent": EIM, "Address Dependent": ADM, "Address and Port Dependent": APDM}
_VERDICT = re.compile(
    r"NAT with (Endpoint Independent|Address and Port Dependent|Address Dependent) (Mapping|Filtering)"
)
_ports = itertools.cycle(PROBE_PORTS)


# ---- natdiscovery ------------------------------------------------------------------------------------------


def parse_natdiscovery(output: str) -> dict[str, str | None]:
    """Mapping and filtering from natdiscovery's text ("NAT with ... Mapping!"); None where it found none."""
    found: dict[str, str | None] = {"mapping": None, "filtering": None}
    for behaviour, what in _VERDICT.findall(output):
        found[what.lower()] = _NAMES[behaviour]
    return found


def natdiscovery(host_ns: str, server_ip: str) -> dict[str, Any]:
    """Run `turnutils_natdiscovery -m -f` in the host's namespace against the lab's RFC 5780 coturn."""
    argv = ["turnutils_natdiscovery", "-m", "-f", "-p", str(STUN_PORT), server_ip]
    try:
        done = netns.run(host_ns, argv, capture_output=True, text=True, timeout=NATDISCOVERY_TIMEOUT_S)
        output = done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        output = _text(exc.stdout) + _text(exc.stderr)
    return {**parse_natdiscovery(output), "output": output}


def _text(data: bytes | str | None) -> str:
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return data or ""


# ---- sockets -----------------------------------------------------------------------------------------------


def _bound(stack: ExitStack, ns: str, ip: str = "0.0.0.0", port: int | None = None) -> socket.socket:
    """A UDP socket in `ns` (IPv6 when `ip` is), closed with the stack; a probe port when none is given (0:
    any port)."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    sock = stack.enter_context(netns.socket_in(ns, family))
    if port is not None:
        sock.bind((ip, port))
        return sock
    for _ in range(len(PROBE_PORTS)):
        try:
            sock.bind((ip, next(_ports)))
            return sock
        except OSError:
            continue
    raise OSError(f"no free probe port in {PROBE_PORTS} on {ip} in {ns}")


def _token() -> bytes:
    return b"netsim-probe-" + secrets.token_hex(8).encode()


def _expect(sock: socket.socket, token: bytes, wait_s: float = WAIT_S) -> Address | None:
    """Who sent `token` to `sock` within `wait_s`, skipping any other datagram; None if nobody did."""
    deadline = time.monotonic() + wait_s
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data, sender = sock.recvfrom(2048)
        except TimeoutError:
            return None
        except ConnectionRefusedError:
            continue  # an ICMP error for something sent earlier
        if data == token:
            return sender[0], sender[1]
    return None


def _echo(src: socket.socket, dst: socket.socket, to: Address) -> Address | None:
    """Send a fresh token from `src` to `to` and return the source address `dst` saw it come from."""
    token = _token()
    src.sendto(token, to)
    return _expect(dst, token)


def _local(sock: socket.socket) -> Address:
    host, port = sock.getsockname()[:2]
    return str(host), int(port)


# ---- the own probe -----------------------------------------------------------------------------------------


def udp_works(host_ns: str, stun_server: Address) -> bool:
    """Does a STUN binding request from the host get answered at all?"""
    with ExitStack() as stack:
        return stun.binding(_bound(stack, host_ns, port=0), stun_server, STUN_TIMEOUT_S) is not None


def mapping_behaviour(
    host_ns: str, server_ns: str, server_ips: tuple[str, str], host_ip: str = "0.0.0.0"
) -> str | None:
    """RFC 4787 mapping: compare the external address seen by ip1:p1, ip1:p2 and ip2:p1 for one socket
    (bound to `host_ip`: "::" to probe IPv6)."""
    with ExitStack() as stack:
        host = _bound(stack, host_ns, host_ip, port=0)
        first = _bound(stack, server_ns, server_ips[0])
        port = _local(first)[1]
        same_ip = _bound(stack, server_ns, server_ips[0])
        other_ip = _bound(stack, server_ns, server_ips[1], port)
        seen = [_echo(host, remote, _local(remote)) for remote in (first, same_ip, other_ip)]
    if None in seen:
        return None
    if seen[0] == seen[1] == seen[2]:
        return EIM
    if seen[0] == seen[1]:
        return ADM  # every port of one remote IP shares a mapping
    return APDM


def filtering_behaviour(
    host_ns: str, server_ns: str, server_ips: tuple[str, str], host_ip: str = "0.0.0.0"
) -> str | None:
    """RFC 4787 filtering: after the host sent to ip1:p1, may ip2 (EIF) or ip1:p2 (ADF) reach its mapping?"""
    with ExitStack() as stack:
        host = _bound(stack, host_ns, host_ip, port=0)
        contacted = _bound(stack, server_ns, server_ips[0])
        mapped = _echo(host, contacted, _local(contacted))
        if mapped is None or _echo(contacted, host, mapped) is None:
            return None
        if _echo(_bound(stack, server_ns, server_ips[1]), host, mapped) is not None:
            return EIM
        if _echo(_bound(stack, server_ns, server_ips[0]), host, mapped) is not None:
            return ADM
        return APDM


def hole_punch(host_ns: str, server_ns: str, server_ips: tuple[str, str]) -> bool:
    """Simultaneous open as ICE does it: the remote first, then the host, then the remote again.

    The host learns its mapping from STUN on ip1; the peer sits on ip2, so its first packet is unsolicited.
    Punching works if the host's packet leaves from the STUN-learned mapping and the peer's next packet to
    that mapping gets through. A NAT that keeps conntrack state for the unsolicited packet gives the host's
    next flow to that peer a new external port: it still classifies right, but punching fails.
    """
    with ExitStack() as stack:
        host = _bound(stack, host_ns, port=0)
        mapped = stun.binding(host, (server_ips[0], STUN_PORT), STUN_TIMEOUT_S)
        if mapped is None:
            return False
        peer = _bound(stack, server_ns, server_ips[1])
        _echo(peer, host, mapped)  # may be dropped: it must not spoil the mapping either way
        seen = _echo(host, peer, _local(peer))
        return seen == mapped and _echo(peer, host, mapped) == _local(peer)


def hairpin(first_ns: str, second_ns: str, stun_server: Address, *, same_port: bool = True) -> bool:
    """RFC 4787 REQ-9: a packet from one LAN host to another's mapping arrives from the sender's external
    address, not its private one: the sender's STUN-learned ip:port, or only its external IP when
    `same_port` is false (a port-dependent mapping makes a new mapping for the new destination).

    The two sockets must be on different hosts: Linux drops a routed packet whose source and destination
    are the same host, so one host cannot hairpin to itself through the router.
    """
    with ExitStack() as stack:
        first, second = _bound(stack, first_ns, port=0), _bound(stack, second_ns, port=0)
        first_mapped = stun.binding(first, stun_server, STUN_TIMEOUT_S)
        second_mapped = stun.binding(second, stun_server, STUN_TIMEOUT_S)
        if first_mapped is None or second_mapped is None:
            return False
        _echo(first, second, second_mapped)  # opens first's filter towards second, as a peer would
        seen = _echo(second, first, first_mapped)
    if seen is None:
        return False
    return seen == second_mapped if same_port else seen[0] == second_mapped[0]


def port_preserved(host_ns: str, stun_server: Address) -> bool | None:
    """Does the mapping keep the host's local port? None if STUN got no answer."""
    with ExitStack() as stack:
        host = _bound(stack, host_ns, port=0)
        mapped = stun.binding(host, stun_server, STUN_TIMEOUT_S)
        return None if mapped is None else mapped[1] == _local(host)[1]


def lifetime_delays(upper_s: float) -> list[float]:
    """Idle times to try: half seconds up to 10 s, then coarser, never above `upper_s`."""
    fine = [0.5 * k for k in range(1, 21)]
    coarse = [12.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0, 50.0, 60.0, 75.0, 90.0, 120.0, 180.0, 240.0, 300.0]
    return [d for d in fine + coarse if d <= upper_s]


def lifetime_bracket(
    host_ns: str, server_ns: str, server_ip: str, upper_s: float = LIFETIME_UPPER_S
) -> tuple[float, float | None] | None:
    """[low, high): the longest idle time tried that still got in (0.0 if even the shortest failed) and the
    first that did not (None if the longest one still got in: the lifetime is at least `upper_s`).

    One host socket per trial, all opened at once, so the search costs about the lifetime itself. None when
    a mapping could not even be made (nothing measured).
    """
    delays = lifetime_delays(upper_s)
    with ExitStack() as stack:
        remote = _bound(stack, server_ns, server_ip)
        trials: list[tuple[float, socket.socket, Address]] = []
        for delay in delays:
            host = _bound(stack, host_ns, port=0)
            mapped = _echo(host, remote, _local(remote))
            if mapped is None:
                return None
            trials.append((delay, host, mapped))
        start = time.monotonic()
        alive = 0.0
        for delay, host, mapped in trials:
            time.sleep(max(0.0, start + delay - time.monotonic()))
            if _echo(remote, host, mapped) is None:
                return alive, delay  # mappings only get older: the rest are closed too
            alive = delay
        return alive, None


def mapping_lifetime(
    host_ns: str, server_ns: str, server_ip: str, upper_s: float = LIFETIME_UPPER_S
) -> float | None:
    """How long an idle mapping stays open to its remote: the bracket's lower end; None if even the
    shortest idle time failed, `upper_s` (a lower bound) if the longest one still got in."""
    bracket = lifetime_bracket(host_ns, server_ns, server_ip, upper_s)
    return bracket[0] if bracket is not None and bracket[0] > 0 else None


def classify6(host_ns: str, server_ns: str, server_ips: tuple[str, str]) -> dict[str, Any]:
    """The IPv6 firewall in front of a dual-stack host, in RFC 4787 terms: udp (a reply gets back at all),
    translated (whether the server sees another address than the host's own: never, without NAT66),
    mapping, filtering (None: UDP does not pass, or nothing filters), hole_punch (a simultaneous open as ICE
    does it: the peer's unsolicited packet first, then the host's, then the peer's again), unsolicited
    (whether a packet to a port the host never sent from gets in: RFC 6092's transparent mode)."""
    with ExitStack() as stack:
        host = _bound(stack, host_ns, "::", port=0)
        quiet = _bound(stack, host_ns, "::", port=0)
        peer = _bound(stack, server_ns, server_ips[1])
        own_port = _local(host)[1]
        server = _bound(stack, server_ns, server_ips[0])
        seen = _echo(host, server, _local(server))
        udp = seen is not None and _echo(server, host, seen) is not None
        result: dict[str, Any] = {"udp": udp, "translated": None, "mapping": None, "filtering": None}
        result["hole_punch"], result["unsolicited"] = False, None
        if not udp or seen is None:
            return result
        result["translated"] = seen[1] != own_port
        _echo(peer, host, seen)  # unsolicited: may be dropped, must not spoil the punch
        result["hole_punch"] = _echo(host, peer, _local(peer)) == seen and _echo(peer, host, seen) is not None
        result["unsolicited"] = _echo(server, quiet, (seen[0], _local(quiet)[1])) is not None
    result["mapping"] = mapping_behaviour(host_ns, server_ns, server_ips, "::")
    result["filtering"] = filtering_behaviour(host_ns, server_ns, server_ips, "::")
    return result


def bracket_text(low: float, high: float | None) -> str:
    """A measured lifetime as the bracket it was found in, e.g. '[15, 20) s' or '[300, inf) s'."""
    return f"[{low:g}, {'inf' if high is None else f'{high:g}'}) s"


def classify(lab: Lab, site_host: str = "a", measure_lifetime: bool = False) -> dict[str, Any]:
    """The own probe's verdict on the NAT in front of `site_host`.

    Keys: mapping, filtering (RFC 4787 names, None without UDP), udp, hole_punch, hairpin (None when the
    site has no second host to hairpin from), port_preservation, and lifetime_s with lifetime_bracket_s
    ([low, high) seconds; high null: at least low) when asked for; on a dual-stack site also ipv6
    (classify6: the IPv6 firewall's mapping and filtering).
    """
    host_ns = lab.netns(site_host)
    server = lab.topology.servers[0]
    server_ns = lab.netns(server)
    ips = lab.addresses(server)
    server_ips = (ips[0], ips[1])
    stun_server = (server_ips[0], STUN_PORT)
    neighbour = _neighbour(lab, site_host)
    result: dict[str, Any] = {"mapping": None, "filtering": None, "hairpin": None, "udp": False}
    result.update(hole_punch=False, port_preservation=None)
    result["udp"] = udp_works(host_ns, stun_server)
    if result["udp"]:
        result["mapping"] = mapping_behaviour(host_ns, server_ns, server_ips)
        result["filtering"] = filtering_behaviour(host_ns, server_ns, server_ips)
        result["hole_punch"] = hole_punch(host_ns, server_ns, server_ips)
        result["port_preservation"] = port_preserved(host_ns, stun_server)
        if neighbour is not None:
            same_port = result["mapping"] == EIM
            result["hairpin"] = hairpin(host_ns, lab.netns(neighbour), stun_server, same_port=same_port)
    elif neighbour is not None:
        result["hairpin"] = False
    six = lab.plan[server].addresses6
    if lab.plan[site_host].addresses6 and len(six) >= 2:  # a dual-stack site: its IPv6 firewall too
        result["ipv6"] = classify6(host_ns, server_ns, (six[0], six[1]))
    if measure_lifetime:
        # The lower end (kept as lifetime_s) and the bracket it was measured in: [low, high) seconds.
        bracket = lifetime_bracket(host_ns, server_ns, server_ips[0]) if result["udp"] else None
        result["lifetime_s"] = bracket[0] if bracket and bracket[0] > 0 else None
        result["lifetime_bracket_s"] = list(bracket) if bracket else None
    return result


def _neighbour(lab: Lab, host: str) -> str | None:
    """Another host on the same LAN, if the topology has one."""
    try:
        hosts = lab.topology.site_of(host).hosts
    except KeyError:
        return None  # not a host behind a site (a server, say)
    return next((h for h in hosts if h != host), None)
