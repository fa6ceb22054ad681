"""rtnetlink requests inside one namespace, in-process and batched (no `ip` fork per request).

`Rtnl` makes links, addresses, routes and permanent neighbour entries inside one namespace through a raw
rtnetlink socket opened there, many requests per system call: the lab's whole wiring is a few sendmsg calls
instead of a library round trip per request.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
from collections.abc import Iterator

from netsim.lab.netns import socket_in

NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10  # acks of failed requests leave the request out (only its header comes back)
NETLINK_EXT_ACK = 11  # ... and carry the kernel's error message
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLMSGERR_ATTR_MSG = 1
NLM_F_REQUEST, NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x200, 0x400
NLM_F_DUMP = 0x300
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_NEWADDR, RTM_NEWROUTE, RTM_NEWNEIGH = 16, 17, 18, 20, 24, 28
RTM_DELNEIGH, RTM_GETNEIGH = 29, 30
NETLINK_NETFILTER = 12
CT_DELETE = (1 << 8) | 2  # NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_DELETE: no tuple given = flush
IFLA_PROTINFO, IFLA_BRPORT_STATE, BR_STATE_FORWARDING = 12, 1, 3
NLA_TYPE_MASK = 0x3FFF  # without the nested and byte-order flags
IFF_UP = 0x1
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_FD = 1, 3, 10, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
IFA_F_NODAD = 0x02
RTA_DST, RTA_GATEWAY = 1, 5
RT_TABLE_MAIN, RTPROT_STATIC, RTN_UNICAST = 254, 4, 1
NDA_DST, NDA_LLADDR, NUD_PERMANENT, NUD_NOARP = 1, 2, 0x80, 0x40
_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port id
_NDMSG = struct.Struct("=BxxxiHBB")  # ndmsg: family, link index, state, flags, type
# Requests per sendmsg: the kernel handles a whole datagram before we read, and every request's ack (an
# skb of ~700 bytes' truesize) must fit the socket's receive buffer (~200 KiB) or acks are dropped.
BATCH_MAX = 128


def attr(kind: int, payload: bytes) -> bytes:
    """One netlink attribute (type-length-value, padded to 4 bytes); nest by passing attributes as payload."""
    size = 4 + len(payload)
    return struct.pack("=HH", size, kind) + payload + bytes(-size % 4)


def ifinfo(index: int, *, up: bool) -> bytes:
    """struct ifinfomsg for link `index` (0: the kernel picks one); `up` sets IFF_UP, else leaves it down."""
    return struct.pack("=BxHiII", socket.AF_UNSPEC, 0, index, IFF_UP if up else 0, IFF_UP)


def _name(ifname: str, mac: bytes | None = None) -> bytes:
    """IFLA_IFNAME, and IFLA_ADDRESS when a MAC address is given (a link keeps a MAC set at creation)."""
    named = attr(IFLA_IFNAME, ifname.encode() + b"\0")
    return named if mac is None else named + attr(IFLA_ADDRESS, mac)


class Rtnl:
    """Requests to one namespace's rtnetlink socket, queued and sent together by `commit()`.

    The kernel handles a batch's requests in order and acks each one, so a later request may use a link an
    earlier one made. Link indexes are given by the caller (a fresh namespace has only lo, index 1), so no
    request has to wait for the answer of another.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.sock = socket_in(name, socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        self.sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        self.sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
        self._batch: list[tuple[int, bytes]] = []  # (sequence number, message) not sent yet
        self._pending: dict[int, str] = {}  # sequence number -> what the request does, for errors
        self._seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, kind: int, flags: int, body: bytes, what: str) -> None:
        self._seq += 1
        flags |= NLM_F_REQUEST | NLM_F_ACK
        self._batch.append(
            (self._seq, _HEADER.pack(_HEADER.size + len(body), kind, flags, self._seq, 0) + body)
        )
        self._pending[self._seq] = what

    def bridge(self, ifname: str, index: int, *, mac: bytes | None = None) -> None:
        """A bridge named `ifname` with link index `index`, up; with `mac` its MAC address stays that one
        (otherwise the kernel gives it the lowest of its ports', which changes as ports come)."""
        info = attr(IFLA_LINKINFO, attr(IFLA_INFO_KIND, b"bridge"))
        body = ifinfo(index, up=True) + _name(ifname, mac) + info
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body, f"add bridge {ifname}")

    def veth(
        self,
        ifname: str,
        index: int,
        *,
        master: int,
        peer: str,
        peer_index: int,
        peer_netns: int,
        peer_mac: bytes | None = None,
    ) -> None:
        """A veth pair: `ifname` here, up, as a port of bridge `master`; its peer `peer` (MAC `peer_mac`, or a
        random one) made directly in the namespace open at fd `peer_netns` (never in this process's own
        namespace), still down: the kernel refuses (ENOTCONN) to bring a peer up before the pair is joined,
        so the peer's namespace does that."""
        netns_fd = attr(IFLA_NET_NS_FD, struct.pack("=I", peer_netns))
        peer_info = ifinfo(peer_index, up=False) + _name(peer, peer_mac) + netns_fd
        data = attr(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer_info))
        info = attr(IFLA_LINKINFO, attr(IFLA_INFO_KIND, b"veth") + data)
        body = ifinfo(index, up=True) + _name(ifname) + attr(IFLA_MASTER, struct.pack("=I", master)) + info
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body, f"add veth {ifname} (peer {peer})")

    def up(self, index: int) -> None:
        self.request(RTM_NEWLINK, 0, ifinfo(index, up=True), f"set link {index} up")

    def delete_link(self, index: int, ifname: str) -> None:
        """Delete link `index` (named `ifname` in errors); its addresses and routes go with it."""
        self.request(RTM_DELLINK, 0, ifinfo(index, up=False), f"delete link {ifname}")

    def address(self, index: int, cidr: str) -> None:
        """An address (`ip addr add CIDR dev INDEX`: no broadcast address); an IPv6 one `nodad`, usable at
        once instead of after a second or two of duplicate address detection."""
        iface = ipaddress.ip_interface(cidr)
        packed = iface.ip.packed
        v6 = iface.version == 6
        family, flags = (socket.AF_INET6, IFA_F_NODAD) if v6 else (socket.AF_INET, 0)
        body = struct.pack("=BBBBI", family, iface.network.prefixlen, flags, 0, index)
        body += attr(IFA_LOCAL, packed) + attr(IFA_ADDRESS, packed)
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body, f"add address {cidr}")

    def route(self, dst: str, gateway: str) -> None:
        """A route to `dst` (CIDR, either family) via an on-link `gateway`, main table, `proto static`."""
        net = ipaddress.ip_network(dst)
        family = socket.AF_INET6 if net.version == 6 else socket.AF_INET
        body = struct.pack(
            "=BBBBBBBBI", family, net.prefixlen, 0, 0, RT_TABLE_MAIN, RTPROT_STATIC, 0, RTN_UNICAST, 0
        )
        if net.prefixlen:
            body += attr(RTA_DST, net.network_address.packed)
        body += attr(RTA_GATEWAY, ipaddress.ip_address(gateway).packed)
        self.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, body, f"add route {dst} via {gateway}")

    def neighbour(self, index: int, ip: str, mac: bytes) -> None:
        """A permanent neighbour entry, either family (`ip neigh add IP lladdr MAC dev INDEX nud permanent`).

        Permanent entries made over netlink are exempt from the neighbour table's garbage collection and
        from its gc_thresh3 cap (Linux >= 5.0, net/core/neighbour.c: neigh_add passes exempt_from_gc to
        neigh_alloc), which is one table for every namespace: a lab that resolves its neighbours this way
        takes nothing from it. Like any entry it goes when its link goes down or changes its MAC address.
        """
        # inet_aton and bytes.hex: a big lab makes tens of thousands of these
        if ":" in ip:
            body = _NDMSG.pack(socket.AF_INET6, index, NUD_PERMANENT, 0, RTN_UNICAST)
            body += attr(NDA_DST, socket.inet_pton(socket.AF_INET6, ip)) + attr(NDA_LLADDR, mac)
        else:
            body = _NDMSG.pack(socket.AF_INET, index, NUD_PERMANENT, 0, RTN_UNICAST)
            body += attr(NDA_DST, socket.inet_aton(ip)) + attr(NDA_LLADDR, mac)
        what = f"add permanent neighbour {ip} lladdr {mac.hex(':')} on link {index}"
        self.request(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_EXCL, body, what)

    def commit(self, ignore: tuple[int, ...] = ()) -> None:
        """Send the queued requests, up to BATCH_MAX per system call, and wait for every ack; OSError names
        the first request the kernel refused (with an errno not in `ignore`), the namespace and the kernel's
        reason."""
        failed: tuple[int, str, int, str] | None = None
        batch, self._batch = self._batch, []
        for start in range(0, len(batch), BATCH_MAX):
            chunk = batch[start : start + BATCH_MAX]
            self.sock.sendall(b"".join(message for _, message in chunk))
            while chunk[-1][0] in self._pending:  # acks come in request order
                data = self.sock.recv(65536)
                for seq, error, message in _acks(data):
                    what = self._pending.pop(seq, None)
                    if (
                        error
                        and error not in ignore
                        and what is not None
                        and (failed is None or seq < failed[0])
                    ):
                        failed = (seq, what, error, message)
        if failed is not None:
            _, what, error, message = failed
            detail = f" ({message})" if message else ""
            raise OSError(error, f"netlink: {what} in namespace {self.name}: {os.strerror(error)}{detail}")

    def flush_learned_neighbours(self) -> int:
        """Delete the neighbour entries the namespace learned, either family (permanent and NOARP ones
        stay); returns how many. An entry that expired between the dump and its delete is not an error."""
        dump = self._dump(RTM_GETNEIGH, _NDMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0), "list neighbours")
        for payload in [payload for kind, payload in dump if kind == RTM_NEWNEIGH]:
            family, index, state, _, _ = _NDMSG.unpack_from(payload)
            if state & (NUD_PERMANENT | NUD_NOARP):
                continue
            dst = next((v for k, v in _attrs(payload[_NDMSG.size :]) if k == NDA_DST), None)
            if dst is not None:
                body = _NDMSG.pack(family, index, 0, 0, 0) + attr(NDA_DST, dst)
                self.request(RTM_DELNEIGH, 0, body, f"delete neighbour {dst.hex()} on link {index}")
        count = len(self._batch)
        self.commit(ignore=(errno.ENOENT,))
        return count

    def _dump(self, kind: int, body: bytes, what: str) -> Iterator[tuple[int, bytes]]:
        """(type, payload) of every message a dump request (`what` it does, for errors) answers with."""
        self.commit()
        self._seq += 1
        self.sock.sendall(
            _HEADER.pack(_HEADER.size + len(body), kind, NLM_F_REQUEST | NLM_F_DUMP, self._seq, 0) + body
        )
        while True:
            for got, payload in _messages(self.sock.recv(65536)):
                if got == NLMSG_DONE:
                    return
                if got == NLMSG_ERROR:
                    (error,) = struct.unpack_from("=i", payload)
                    raise OSError(-error, f"netlink: {what} in namespace {self.name}: {os.strerror(-error)}")
                yield got, payload

    def bridge_port_states(self) -> dict[int, int]:
        """{link index: STP state} of every bridge port in the namespace (3: forwarding). A port starts
        forwarding only once the kernel's link watcher has seen its carrier, shortly after both ends are up.
        """
        states: dict[int, int] = {}
        body = struct.pack("=BxHiII", socket.AF_BRIDGE, 0, 0, 0, 0)
        for kind, payload in self._dump(RTM_GETLINK, body, "list bridge ports"):
            if kind == RTM_NEWLINK and (state := _port_state(payload)) is not None:
                states[struct.unpack_from("=i", payload, 4)[0]] = state
        return states


def _port_state(link: bytes) -> int | None:
    """IFLA_BRPORT_STATE of an RTM_NEWLINK payload (ifinfomsg, then attributes), if it is a bridge port."""
    for kind, value in _attrs(link[16:]):
        if kind == IFLA_PROTINFO:
            for inner, state in _attrs(value):
                if inner == IFLA_BRPORT_STATE:
                    return state[0]
    return None


def _messages(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(type, payload) of each netlink message in a datagram."""
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, kind, _, _, _ = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size:
            return
        yield kind, data[offset + _HEADER.size : offset + length]
        offset += (length + 3) & ~3


def _attrs(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(type, payload) of each netlink attribute."""
    offset = 0
    while offset + 4 <= len(data):
        size, kind = struct.unpack_from("=HH", data, offset)
        if size < 4:
            return
        yield kind & NLA_TYPE_MASK, data[offset + 4 : offset + size]
        offset += (size + 3) & ~3


def _acks(data: bytes) -> Iterator[tuple[int, int, str]]:
    """(sequence, errno, kernel message) of each ack in a datagram."""
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, kind, flags, seq, _ = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size:
            return
        if kind == NLMSG_ERROR:
            (error,) = struct.unpack_from("=i", data, offset + _HEADER.size)
            # capped ack: the error code and the request's header, then attributes (NLM_F_ACK_TLVS)
            tlvs = data[offset + _HEADER.size + 4 + _HEADER.size : offset + length]
            message = _ack_message(tlvs) if flags & NLM_F_ACK_TLVS else ""
            yield seq, -error, message
        offset += (length + 3) & ~3


def _ack_message(tlvs: bytes) -> str:
    for kind, value in _attrs(tlvs):
        if kind == NLMSGERR_ATTR_MSG:
            return value.rstrip(b"\0").decode(errors="replace")
    return ""


def flush_conntrack(name: str) -> None:
    """Delete every conntrack entry of namespace `name` (what `conntrack -F` does), by one netfilter netlink
    request."""
    with socket_in(name, socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER) as sock:
        body = struct.pack("=BBH", socket.AF_UNSPEC, 0, 0)  # nfgenmsg: family, version, resource id
        sock.sendall(
            _HEADER.pack(_HEADER.size + len(body), CT_DELETE, NLM_F_REQUEST | NLM_F_ACK, 1, 0) + body
        )
        error = next((e for _, e, _ in _acks(sock.recv(65536))), 0)
        if error:
            raise OSError(error, f"netlink: flush conntrack in namespace {name}: {os.strerror(error)}")


def flush_neighbours(name: str) -> int:
    """Delete the neighbour entries namespace `name` learned (permanent ones stay); returns how many."""
    with Rtnl(name) as rtnl:
        return rtnl.flush_learned_neighbours()
