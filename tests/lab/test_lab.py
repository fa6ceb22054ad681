"""The lab builder on a real kernel: namespaces, links, NAT path, services, capture, teardown (root)."""

from __future__ import annotations

import json
import re
import signal
import socket
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from netsim.lab import netns, registry
from netsim.lab.lab import INET, Lab, LabError
from netsim.lab.nat import NatError, preset
from netsim.lab.topology import Site, Topology, from_dict, standard_topology
from netsim.lab.wiring import MESH_MAX
from netsim.services import stun

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("no_leftovers")]

ChildLab = tuple[subprocess.Popen[str], str, list[str]]  # see the child_lab fixture


def _root_state() -> tuple[str, str, str]:
    def out(*argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True).stdout

    return out("ip", "-o", "link"), out("ip", "route"), out("nft", "list", "ruleset")


def _udp_roundtrip(lab: Lab, src: str, dst: str, dst_ip: str, port: int = 9999) -> tuple[str, int] | None:
    server = netns.socket_in(lab.netns(dst))
    client = netns.socket_in(lab.netns(src))
    with server, client:
        server.bind((dst_ip, port))
        server.settimeout(1)
        client.settimeout(1)
        client.sendto(b"ping", (dst_ip, port))
        try:
            _, seen = server.recvfrom(64)
            server.sendto(b"pong", seen)
            client.recvfrom(64)
        except TimeoutError:
            return None
        return seen


def test_standard_lab_nodes_addresses_and_nat_path() -> None:
    root_before = _root_state()
    with Lab(standard_topology("port-restricted-cone", "symmetric"), coturn=False) as lab:
        names = set(netns.list_names())
        assert {lab.netns(n) for n in ("server", "nat-a", "nat-b", "a", "b")} <= names
        addrs = subprocess.run(
            netns.command(lab.netns("a"), ["ip", "-o", "-4", "addr", "show", "eth0"]),
            capture_output=True,
            text=True,
        ).stdout
        assert "10.1.0.2/24" in addrs
        # The server sees host a's packets from nat-a's public address: the NAT is on the path.
        seen = _udp_roundtrip(lab, "a", "server", "198.18.0.2")
        assert seen is not None and seen[0] == "198.18.1.1"

        def node(name: str, *addresses: str) -> dict[str, object]:
            return {"netns": f"{lab.id}-{name}", "addresses": list(addresses)}

        assert lab.describe() == {
            "lab": lab.id,
            "topology": "standard",
            "nodes": {
                "server": node("server", "198.18.0.2", "198.18.0.3", "198.18.0.4"),
                "nat-a": node("nat-a", "198.18.1.1", "10.1.0.1"),
                "nat-b": node("nat-b", "198.18.2.1", "10.2.0.1"),
                "a": node("a", "10.1.0.2"),
                "b": node("b", "10.2.0.2"),
            },
        }
        entry = registry.lookup(lab.id)
        assert {k: entry[k] for k in lab.describe()} == lab.describe()
        assert entry["namespaces"] == [
            f"{lab.id}-{n}" for n in ("inet", "server", "nat-a", "a", "nat-b", "b")
        ]
    assert _root_state() == root_before
    with pytest.raises(LabError, match=f"^no lab '{lab.id}'"):
        registry.lookup(lab.id)


def test_ipv6_is_off_and_nothing_routes_out_of_the_lab() -> None:
    lab_ranges = ("10.", "100.64.", "198.18.", "198.19.")
    with Lab(standard_topology("full-cone", "open"), coturn=False) as lab:
        for node in ("server", "nat-a", "nat-b", "a", "b"):
            ns = lab.netns(node)
            v6 = netns.run(ns, ["ip", "-6", "-o", "addr"], capture_output=True, text=True).stdout
            assert v6.strip() == "", (node, v6)
            routes = netns.run(ns, ["ip", "-4", "route"], capture_output=True, text=True).stdout
            for line in routes.splitlines():
                if line.startswith("default"):
                    assert line.split()[2].startswith(lab_ranges), (node, line)
        # Routers and servers have no default route: an outside address is unroutable where traffic leaves.
        for node in ("server", "nat-a", "nat-b"):
            out = netns.run(
                lab.netns(node), ["ip", "route", "get", "192.0.2.1"], capture_output=True, text=True
            )
            assert out.returncode != 0 and "unreachable" in out.stderr, (node, out.stdout)


def test_open_site_is_reachable_from_the_internet() -> None:
    with Lab(standard_topology("open", "symmetric"), coturn=False) as lab:
        a_ip = lab.address("a")
        assert a_ip.startswith("198.19.")
        assert _udp_roundtrip(lab, "server", "a", a_ip) is not None
        seen = _udp_roundtrip(lab, "a", "server", "198.18.0.2")
        assert seen is not None and seen[0] == a_ip  # no translation at an open site


def test_double_nat_translates_twice() -> None:
    topo = from_dict(
        {
            "carrier": [{"name": "cgn", "nat": "port-restricted-cone"}],
            "site": [{"name": "r1", "nat": "full-cone", "hosts": ["h1"], "behind": "cgn"}],
        }
    )
    with Lab(topo, coturn=False) as lab:
        seen = _udp_roundtrip(lab, "h1", "server", "198.18.0.2")
        assert seen is not None and seen[0] == "198.18.101.1"


def test_coturn_answers_stun_through_the_nat_and_tls_verifies() -> None:
    with Lab(standard_topology("port-restricted-cone", "open")) as lab:
        assert lab.coturn is not None and lab.coturn.process is not None
        pid = lab.coturn.process.pid
        sock = netns.socket_in(lab.netns("a"))
        with sock:
            mapped = stun.binding(sock, ("198.18.0.3", 3478), timeout=2)
        assert mapped is not None and mapped[0] == "198.18.1.1"
        ctx = ssl.create_default_context(cafile=str(lab.coturn.ca_file))
        for port in (443, 5349):
            raw = netns.socket_in(lab.netns("a"), socket.AF_INET, socket.SOCK_STREAM)
            raw.settimeout(3)
            raw.connect(("198.18.0.2", port))
            with ctx.wrap_socket(raw, server_hostname="198.18.0.2") as tls:
                assert tls.version() in ("TLSv1.2", "TLSv1.3")
        conf = (lab.workdir / "turnserver.conf").read_text()
        for denied in (
            "127.0.0.0-127.255.255.255",
            "10.0.0.0-10.255.255.255",
            "::ffff:0.0.0.0-::ffff:255.255.255.255",
        ):
            assert f"denied-peer-ip={denied}" in conf
        assert lab.coturn.log_path.exists()
    assert not Path(f"/proc/{pid}").exists() or "turnserver" not in Path(f"/proc/{pid}/cmdline").read_text()


def test_exception_inside_the_lab_tears_it_down() -> None:
    with pytest.raises(RuntimeError, match="boom"), Lab(standard_topology("symmetric", "open")) as lab:
        names = list(lab.namespaces.values())
        raise RuntimeError("boom")
    assert not any(netns.exists(n) for n in names)
    assert not lab.workdir.exists()


def test_a_taken_lab_id_is_refused_and_its_lab_left_alone(tmp_path: Path) -> None:
    taken = tmp_path / "nstaken"
    taken.mkdir()
    (taken / "lab.json").write_text("{}")
    lab = Lab(standard_topology("open", "open"), coturn=False, lab_id="nstaken", runtime_dir=tmp_path)
    with pytest.raises(LabError, match=r"^lab id 'nstaken' is taken \(a lab directory .*/nstaken exists\)$"):
        with lab:
            pass
    assert (taken / "lab.json").read_text() == "{}"


def test_a_node_that_is_not_in_the_lab_is_named(tmp_path: Path) -> None:
    with Lab(standard_topology("open", "open"), coturn=False, runtime_dir=tmp_path) as lab:
        with pytest.raises(
            LabError, match=rf"^no node 'c' in lab {re.escape(lab.id)} \(nodes: server, nat-a, a, nat-b, b\)$"
        ):
            lab.netns("c")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signals_tear_the_lab_down(
    tmp_path: Path, sig: signal.Signals, child_lab: Callable[[Path], ChildLab]
) -> None:
    proc, _, names = child_lab(tmp_path)
    proc.send_signal(sig)
    proc.wait(timeout=15)
    assert not any(netns.exists(n) for n in names)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("in_process", [True, False])
def test_signaling_is_reachable_from_hosts_through_their_nats(in_process: bool) -> None:
    with Lab(standard_topology("symmetric", "udp-blocked"), coturn=False) as lab:
        url = lab.start_signaling(in_process=in_process)
        assert url == "ws://198.18.0.3:443"
        for host in ("a", "b"):
            assert _http_get(lab.netns(host), "198.18.0.3", 443, "/healthz").startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("in_process", [True, False])
def test_signaling_serves_a_static_directory_given_at_start_or_later(
    tmp_path: Path, in_process: bool
) -> None:
    """The browser peers' page comes over HTTP from the signaling server (the caller names the directory);
    a server already running in-process takes it later, one running as a process says it cannot."""
    (tmp_path / "hello.html").write_text("hi")
    with Lab(standard_topology("open", "open"), coturn=False) as lab:
        if in_process:
            lab.start_signaling()
            lab.start_signaling(static_dir=tmp_path)
        else:
            lab.start_signaling(in_process=False, static_dir=tmp_path)
        assert _http_get(lab.netns("a"), "198.18.0.3", 443, "/app/hello.html").startswith(b"HTTP/1.1 200")
    with Lab(standard_topology("open", "open"), coturn=False) as lab:
        lab.start_signaling(in_process=False)
        with pytest.raises(LabError, match="signaling runs as a process without"):
            lab.start_signaling(static_dir=tmp_path)


def _http_get(ns: str, ip: str, port: int, path: str) -> bytes:
    with netns.socket_in(ns, socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(3)
        sock.connect((ip, port))
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {ip}\r\n\r\n".encode())
        return sock.recv(64)


def test_capture_records_the_internet_segment(tmp_path: Path) -> None:
    from scapy.all import UDP, rdpcap

    pcap = tmp_path / "inet.pcap"
    with Lab(standard_topology("port-restricted-cone", "open"), coturn=False) as lab:
        with lab.capture(pcap):
            assert _udp_roundtrip(lab, "a", "server", "198.18.0.2", port=9999) is not None
            assert _pids(lab.namespaces[INET]) != []  # tcpdump
        assert _pids(lab.namespaces[INET]) == []  # stopped with the capture, not only at teardown
    packets = [p for p in rdpcap(str(pcap)) if UDP in p and 9999 in (p[UDP].sport, p[UDP].dport)]
    # The ping as it crossed the internet: already translated to nat-a's address; and the pong back.
    assert any(p["IP"].src == "198.18.1.1" and p[UDP].dport == 9999 for p in packets)
    assert any(p["IP"].dst == "198.18.1.1" and p[UDP].sport == 9999 for p in packets)
    assert not any(p["IP"].src.startswith("10.") for p in packets)  # private addresses never leave the site


def _pids(ns: str) -> list[str]:
    return subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()


def test_a_kept_lab_is_marked_kept_only_once_it_is_up(tmp_path: Path) -> None:
    lab = Lab(standard_topology("open", "open"), keep=True, coturn=False, runtime_dir=tmp_path)
    with lab:
        assert registry.lookup(lab.id, tmp_path)["keep"] is False  # killed now, `netsim cleanup` removes it
    try:
        assert registry.lookup(lab.id, tmp_path)["keep"] is True
    finally:
        registry.remove(registry.lookup(lab.id, tmp_path), tmp_path)


def test_a_kept_lab_whose_body_fails_is_removed(tmp_path: Path) -> None:
    lab = Lab(standard_topology("open", "open"), keep=True, coturn=False, runtime_dir=tmp_path)
    with pytest.raises(RuntimeError, match="signaling broke"), lab:
        raise RuntimeError("signaling broke")
    assert not any(netns.exists(n) for n in lab.namespaces.values())
    assert list(tmp_path.iterdir()) == []


def test_a_namespace_of_the_same_name_is_refused_and_left_alone(tmp_path: Path) -> None:
    lab = Lab(standard_topology("open", "open"), coturn=False, runtime_dir=tmp_path)
    other = lab.namespaces["a"]
    netns.create(other)  # as if another lab (in another registry) had the same id
    try:
        with pytest.raises(LabError, match=f"^namespace {other} exists already: it is not this lab's$"), lab:
            pass
        assert netns.exists(other)
        assert not netns.exists(lab.namespaces["server"])  # what it did make is gone
        assert list(tmp_path.iterdir()) == []
    finally:
        netns.delete(other)


def test_signals_during_teardown_act_once_it_is_done(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lab = Lab(standard_topology("open", "open"), coturn=False, runtime_dir=tmp_path)
    lab.__enter__()
    real_discard = registry.discard

    def discard_interrupted(namespaces: list[str], directory: Path) -> None:
        signal.raise_signal(signal.SIGINT)  # a second and third Ctrl-C in the middle of teardown
        signal.raise_signal(signal.SIGINT)
        real_discard(namespaces, directory)

    monkeypatch.setattr(registry, "discard", discard_interrupted)
    with pytest.raises(KeyboardInterrupt):
        lab.teardown()
    assert not any(netns.exists(n) for n in lab.namespaces.values())
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_router_whose_rules_nft_rejects_fails_the_build_by_name_and_leaves_nothing(tmp_path: Path) -> None:
    # Rules load in threads while the lab is wired: the error must still reach the caller, whole.
    bad = tmp_path / "bad.nft"
    bad.write_text("table inet netsim { chain c { nonsense } }\n")
    sites = (
        Site("nat-a", preset("full-cone"), ("a",)),
        Site("nat-b", preset("custom", rules_file=str(bad)), ("b",)),
    )
    runtime = tmp_path / "run"
    lab = Lab(Topology("bad-rules", sites=sites), coturn=False, runtime_dir=runtime)
    with pytest.raises(NatError) as caught, lab:
        pass
    assert str(caught.value).split("\n")[0] == f"{bad}:1:40: syntax error, unexpected '}}'"
    assert not any(netns.exists(n) for n in lab.namespaces.values())
    assert list(runtime.iterdir()) == []


def test_every_router_of_a_lab_with_more_sites_than_loader_threads_gets_its_rules() -> None:
    count = 12  # more routers than rules-loading threads: some wait their turn
    sites = tuple(Site(f"r{i}", preset("port-restricted-cone"), (f"h{i}",)) for i in range(1, count + 1))
    with Lab(Topology("many", sites=sites), coturn=False) as lab:
        for i in range(1, count + 1):
            tables = netns.run(lab.netns(f"r{i}"), ["nft", "list", "tables"], capture_output=True, text=True)
            assert "table inet netsim" in tables.stdout, f"r{i}"
        seen = _udp_roundtrip(lab, f"h{count}", "server", "198.18.0.2")
        assert seen is not None and seen[0] == f"198.18.{count}.1"


def _ip_json(lab: Lab, node: str, *argv: str) -> list[dict[str, object]]:
    out = netns.run(lab.netns(node), ["ip", "-j", *argv], capture_output=True, text=True, check=True)
    return list(json.loads(out.stdout or "[]"))


def _macs(lab: Lab) -> dict[str, str]:
    """Address -> MAC of the interface that holds it, over the whole lab."""
    found = {}
    for node in lab.plan:
        for link in _ip_json(lab, node, "addr"):
            for addr in link["addr_info"]:  # type: ignore[attr-defined]
                if addr["family"] == "inet":
                    found[addr["local"]] = str(link["address"])
    return found


def test_a_lab_with_static_neighbours_never_resolves_by_arp() -> None:
    with Lab(standard_topology("port-restricted-cone", "full-cone"), static_neighbours=True) as lab:
        macs = _macs(lab)
        with netns.socket_in(lab.netns("a")) as sock:
            mapped = stun.binding(sock, ("198.18.0.3", 3478), timeout=2)
        assert mapped is not None and mapped[0] == "198.18.1.1"  # through the NAT to coturn and back
        assert _udp_roundtrip(lab, "b", "server", "198.18.0.2") is not None
        with netns.socket_in(lab.netns("nat-a")) as sock:
            sock.sendto(b"x", ("198.18.2.1", 9))  # router to router: uses nat-a's entry for nat-b
        for node in lab.plan:
            entries = _ip_json(lab, node, "neigh")
            assert entries, node
            for e in entries:  # after the traffic too: every entry is one the lab made, none learned by ARP
                assert e["state"] == ["PERMANENT"] and e["lladdr"] == macs[str(e["dst"])], (node, e)
        assert {str(e["dst"]) for e in _ip_json(lab, "nat-a", "neigh")} == {
            "198.18.0.2",
            "198.18.0.3",
            "198.18.0.4",
            "198.18.2.1",
            "10.1.0.2",
        }


def test_a_lab_past_the_mesh_size_resolves_servers_statically_and_sites_by_arp() -> None:
    count = MESH_MAX  # with the server, one node more than a full mesh takes
    sites = tuple(Site(f"r{i}", preset("open"), (f"h{i}",)) for i in range(1, count + 1))
    with Lab(Topology("big", sites=sites), coturn=False, static_neighbours=True) as lab:
        assert _udp_roundtrip(lab, "h1", "server", "198.18.0.2") is not None
        wan = {str(e["dst"]): e["state"] for e in _ip_json(lab, "r1", "neigh", "show", "dev", "wan")}
        assert wan == {ip: ["PERMANENT"] for ip in ("198.18.0.2", "198.18.0.3", "198.18.0.4")}
        assert len(_ip_json(lab, "server", "neigh")) == count
        far = lab.address(f"h{count}")
        assert _udp_roundtrip(lab, "h1", f"h{count}", far) is not None  # router to router: ARP
        wan = {str(e["dst"]): e["state"] for e in _ip_json(lab, "r1", "neigh", "show", "dev", "wan")}
        assert wan[f"198.18.{count}.1"] != ["PERMANENT"]


def test_a_dual_stack_lab_serves_signaling_and_coturn_on_ipv6_too() -> None:
    from netsim.lab.plan6 import RELAY6, SERVER6

    with Lab(standard_topology("symmetric", "open", ipv6_a="dual")) as lab:
        lab.start_signaling()
        sock = netns.socket_in(lab.netns("a"), socket.AF_INET6, socket.SOCK_STREAM)
        with sock:
            sock.settimeout(2)
            sock.connect((SERVER6[1], 443))
            sock.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
            assert sock.recv(64).startswith(b"HTTP/1.1 200")
        assert lab.coturn is not None
        conf = (lab.workdir / "turnserver.conf").read_text()
        assert f"listening-ip={SERVER6[0]}" in conf and f"relay-ip={RELAY6}" in conf
        udp = netns.socket_in(lab.netns("a"), socket.AF_INET6)
        with udp:
            assert stun.binding(udp, (SERVER6[0], 3478), 2.0) is not None  # STUN over IPv6 through apdf
