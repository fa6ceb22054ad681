"""A lab: the topology made real as network namespaces, veth links and NAT routers, with coturn.

Every lab has a unique id (its namespace prefix) and a registry entry (netsim.lab.registry) naming its
namespaces and the process that owns it, so that `netsim cleanup` can remove labs whose owner died, and only
those.
"""

from __future__ import annotations

import collections
import contextlib
import ipaddress
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from netsim.lab import fw6, impair, nat, nat64, netns, registry
from netsim.lab.guard import Background, signals_held, sigterm_as_exit
from netsim.lab.nat import NatSpec
from netsim.lab.registry import LabError, LabInputError
from netsim.lab.topology import NodePlan, Topology, plan, site_fw6
from netsim.lab.waits import http_ok, read_line_until
from netsim.lab.wiring import INET, Netlink, Wiring, finish, is_nat, make_links, neighbours, wait_forwarding
from netsim.pause import pause_point
from netsim.services.coturn import Coturn
from netsim.vocab import SIGNALING_PORT

__all__ = ["INET", "Lab", "LabError"]


PREFIX_ENV = "NETSIM_LAB_PREFIX"  # e.g. one prefix per CI job or developer on a shared machine


def _new_id() -> str:
    # pid keeps ids of concurrent processes apart; the random part covers pid reuse after a crash.
    prefix = os.environ.get(PREFIX_ENV, "ns")
    if not (prefix.isascii() and prefix.isalnum() and prefix[:1].isalpha() and len(prefix) <= 8):
        raise LabInputError(f"{PREFIX_ENV}={prefix!r}: expected 1-8 letters or digits, a letter first")
    return f"{prefix}{os.getpid():x}{secrets.token_hex(2)}"


class Lab:
    """Build with `with Lab(topology) as lab:`; everything is removed on exit, errors and signals included."""

    def __init__(
        self,
        topology: Topology,
        *,
        keep: bool = False,
        coturn: bool = True,
        lab_id: str | None = None,
        runtime_dir: Path | None = None,
        static_neighbours: bool = False,
    ) -> None:
        self.topology = topology
        self.keep = keep
        self.want_coturn = coturn
        # Permanent neighbour entries between the members of every segment, made with the links: no ARP, and
        # nothing taken from the kernel's neighbour table, which every namespace shares (Rtnl.neighbour).
        self.static_neighbours = static_neighbours
        self.id = lab_id or _new_id()
        self.workdir = registry.lab_dir(self.id, runtime_dir)
        self.plan: dict[str, NodePlan] = plan(topology)
        self.namespaces: dict[str, str] = {INET: f"{self.id}-{INET}"}
        self.namespaces.update({n: f"{self.id}-{n}" for n in self.plan})
        self.coturn: Coturn | None = None
        self.signaling_url: str | None = None
        self.signaling_process: subprocess.Popen[Any] | None = None  # when it runs as a process of its own
        self.signaling_static: Path | None = None  # served at /app/ (the browser peers' page)
        self._signaling_app: Any = None  # the in-process app (a directory can be served later)
        self.signaling_secret = secrets.token_hex(16)
        self.timings: dict[str, float] = {}
        self._processes: list[subprocess.Popen[Any]] = []
        self._exit = contextlib.ExitStack()  # in-process services (signaling thread), closed at teardown
        self._claimed = False  # the lab's runtime directory was made by this lab: its id is ours to remove
        self._made: list[str] = []  # namespaces this lab made (teardown deletes only these)
        self._torn_down = False

    # ---- lifecycle -----------------------------------------------------------------------------------------

    def __enter__(self) -> Lab:
        sigterm_as_exit()
        try:
            self.build()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        # A kept lab is marked kept only once it is up and its `with` body succeeded: a lab that failed or
        # was interrupted half-way is removed now, or by `netsim cleanup` if its owner is killed.
        if exc_type is not None or not self.keep:
            self.teardown()
        else:
            self._register(keep=True)

    def build(self) -> None:
        """Claim the id, register, make namespaces, links, NAT rules and impairments, start coturn.

        The entry says "not kept" until `__exit__` of a kept lab: a lab whose owner dies while building is
        always removed by `netsim cleanup`.
        """
        t0 = time.perf_counter()
        if os.geteuid() != 0:
            raise LabInputError("building a lab needs root (network namespaces, nftables)")
        registry.ensure_runtime_dir(self.workdir.parent)
        with signals_held():  # an interrupt between claim and entry would leave an unlisted directory
            try:
                self.workdir.mkdir()  # claims the id: namespaces named after it are this lab's from here on
            except FileExistsError:
                taken = f"lab id {self.id!r} is taken (a lab directory {self.workdir} exists)"
                raise LabError(taken) from None
            self._claimed = True
            self._register(keep=False)
        # Routers come first and load their rules in threads while the other nodes are made: most of a load
        # is nft waiting for the kernel (an RCU grace period when its netlink socket closes).
        specs = self._nat_specs()
        with Background() as nat_loads:

            def ready(node: str) -> None:
                if node in specs:
                    nat_loads.submit(self._load_nat, node, specs[node])

            self._build_network(ready)
            pause_point("lab-build")
        self._apply_impairments()
        if any(c.nat64 for c in self.topology.carriers):
            self._processes.extend(nat64.start_all(self))
        self.timings["build_s"] = time.perf_counter() - t0
        if self.want_coturn:
            server = self.topology.servers[0]
            ips = self.plan[server].addresses
            six = self.plan[server].addresses6  # a lab with IPv6: coturn listens and relays on it too
            self.coturn = Coturn(
                self.namespaces[server],
                (ips[0], ips[1]),
                self.workdir,
                relay_ip=ips[2],
                ips6=tuple(six[:2]),
                relay_ip6=six[2] if six else None,
            )
            self.timings["coturn_ready_s"] = self.coturn.start()
            pause_point("coturn-start")
        self._register(keep=False)

    def teardown(self) -> None:
        """Stop services and processes, delete the namespaces and the runtime directory (entry included).

        SIGINT/SIGTERM are held while it runs (milliseconds) and act once it is done: a second Ctrl-C must
        not leave half a lab behind.
        """
        if self._torn_down:
            return
        with signals_held() as held:
            pause_point("teardown", until=lambda: bool(held))
            t0 = time.perf_counter()
            self._exit.close()
            if self.coturn is not None:
                self.coturn.stop()
            for proc in self._processes:
                netns.end(proc)
            self._processes.clear()
            if self._claimed:
                registry.discard(self._made, self.workdir)
            self._torn_down = True
            self.timings["teardown_s"] = time.perf_counter() - t0

    # ---- building ------------------------------------------------------------------------------------------

    def _build_network(self, ready: Callable[[str], None]) -> None:
        """Namespaces, links, addresses and routes, through one rtnetlink socket per namespace.

        Nodes are made in `_build_order`, each with its links: its own bridges, and its veth pairs, made from
        the bridge's side (enslaved and up) with the node's end created straight in its namespace. A router
        (or carrier) is finished, addresses and routes included, and handed to `ready(node)` as soon as the
        last link in its namespace exists: from then on its rules load while nothing else touches its
        namespace (loading holds the namespace's nf_tables mutex, which making a link there waits for, for
        an RCU grace period when nft's socket closes). The other nodes are finished at the end. Link indexes
        are chosen beforehand: nothing is looked up.
        """
        wiring = Wiring.of(self.plan)
        static = neighbours(self.plan, wiring) if self.static_neighbours else {}
        unmade = collections.Counter(v.port_node for veths in wiring.veths.values() for v in veths)
        with Netlink() as nl:
            for node in self._build_order():
                self._create_namespace(node)
                nl.open(node, self.namespaces[node])
                make_links(nl, wiring, node)
                unmade.subtract(v.port_node for v in wiring.veths.get(node, []))
                for done in {node, *(v.port_node for v in wiring.veths.get(node, []))}:
                    if done in nl.rtnl and is_nat(self.plan.get(done)) and unmade[done] == 0:
                        finish(nl.rtnl[done], self.plan.get(done), wiring.links, static.get(done, []))
                        ready(done)
            for node in self.namespaces:
                if not is_nat(self.plan.get(node)):
                    finish(nl.rtnl[node], self.plan.get(node), wiring.links, static.get(node, []))
            for node in wiring.bridges:
                wait_forwarding(nl.rtnl[node], wiring.ports(node))

    def _build_order(self) -> list[str]:
        """The internet; each carrier, then its sites; the other sites; the servers. A site is its router,
        then its hosts: each node comes after the one whose bridge it plugs into, and the nodes plugged into
        a NAT come right after it, so that its rules can start loading early."""
        order = [INET]
        for carrier in self.topology.carriers:
            order.append(carrier.name)
            order += [n for s in self.topology.sites if s.behind == carrier.name for n in (s.name, *s.hosts)]
        order += [n for s in self.topology.sites if s.behind is None for n in (s.name, *s.hosts)]
        return order + list(self.topology.servers)

    def _create_namespace(self, node: str) -> None:
        name = self.namespaces[node]
        with signals_held():  # `_made` must say exactly which namespaces are ours
            try:
                netns.create(name)
            except FileExistsError:
                raise LabError(f"namespace {name} exists already: it is not this lab's") from None
            self._made.append(name)
        # Before any link exists: `default` applies to the links made later. IPv6 only where it is planned.
        has6 = node in self.plan and bool(self.plan[node].addresses6)
        ipv6_off = "0" if self.topology.ipv6 or has6 else "1"
        sysctls = {f"net.ipv6.conf.{scope}.disable_ipv6": ipv6_off for scope in ("all", "default")}
        if has6:  # no duplicate address detection: a tentative link-local address delays neighbour discovery
            sysctls.update({f"net.ipv6.conf.{scope}.accept_dad": "0" for scope in ("all", "default")})
        if node in self.plan and self.plan[node].role in ("router", "carrier"):
            sysctls["net.ipv4.ip_forward"] = "1"
            if has6:  # `all` makes every interface a router's (and accept no router advertisements)
                sysctls["net.ipv6.conf.all.forwarding"] = "1"
        elif node in self.plan and self.plan[node].clat6:  # a CLAT host forwards between eth0 and its TUN
            sysctls["net.ipv6.conf.all.forwarding"] = "1"
        netns.write_sysctls(name, sysctls)

    def _apply_impairments(self) -> None:
        for site in self.topology.sites:
            if site.impair is not None and site.impair.active:
                self._processes.extend(impair.apply(self.namespaces[site.name], site.impair))

    def _nat_specs(self) -> dict[str, NatSpec]:
        specs = {s.name: s.nat for s in self.topology.sites}
        specs.update({c.name: c.nat for c in self.topology.carriers})
        return specs

    def _load_nat(self, name: str, spec: NatSpec) -> None:
        node = self.plan[name]
        if any(c.name == name and c.nat64 for c in self.topology.carriers):
            return  # its NAT44 is of the NAT64 pool, loaded with its translator (nat64.start_all)
        if node.addresses:  # an IPv6-only (clat) site's router has no IPv4 to translate
            self._load_nat44(name, spec)
        site = next((s for s in self.topology.sites if s.name == name), None)
        firewall = None if site is None else site_fw6(site)
        if firewall is not None:
            lan6 = next(i for i in node.ifaces if i.name == "lan" and ":" in i.address)
            lan_net6 = str(ipaddress.IPv6Interface(lan6.address).network)
            fw6.apply(self.namespaces[name], firewall, wan_if="wan", lan_if="lan", lan_net6=lan_net6)

    def _load_nat44(self, name: str, spec: NatSpec) -> None:
        node = self.plan[name]
        wan = next(i for i in node.ifaces if i.name == "wan")
        lan = next(i for i in node.ifaces if i.name == "lan")
        nat.apply(
            self.namespaces[name],
            spec,
            wan_if="wan",
            lan_if="lan",
            wan_ip=wan.address.split("/")[0],
            lan_cidr=str(_network(lan.address)),
        )

    # ---- using a lab ---------------------------------------------------------------------------------------

    def netns(self, node: str) -> str:
        try:
            return self.namespaces[node]
        except KeyError:
            raise LabInputError(
                f"no node {node!r} in lab {self.id} (nodes: {', '.join(self.plan)})"
            ) from None

    def addresses(self, node: str) -> list[str]:
        self.netns(node)
        return self.plan[node].addresses

    def address(self, node: str) -> str:
        return self.addresses(node)[0]

    def popen(self, node: str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start a process in a node's namespace; the lab ends it at teardown."""
        proc = netns.popen(self.netns(node), argv, **kwargs)
        self._processes.append(proc)
        return proc

    def run(self, node: str, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        return netns.run(self.netns(node), argv, **kwargs)

    def start_signaling(
        self, in_process: bool = True, timeout_s: float = 15.0, static_dir: Path | None = None
    ) -> str:
        """Run the signaling server (uvicorn) on the first server host; returns its ws:// URL.

        It listens on TCP 443 of the server's second address (coturn holds 443 on the first): like a web
        service, it stays reachable from behind the udp-blocked firewall, which lets only TCP 443 out.

        In-process, uvicorn serves from a thread on a listening socket made inside the server's namespace
        (a socket keeps its namespace), so peers reach it through their NATs without a 0.5 s interpreter
        start. `in_process=False` runs `netsim signaling` as a process in the namespace (for `netsim up`).
        """
        if self.signaling_url:
            if static_dir is not None and static_dir != self.signaling_static:
                self._serve_static(static_dir)
            return self.signaling_url
        server = self.topology.servers[0]
        ip = self.addresses(server)[1]  # the second listening address; the third is coturn's relay-ip
        if in_process:
            from netsim.services import signaling, signaling_server

            app = self._signaling_app = signaling.create_app(self.signaling_secret)
            if static_dir is not None:
                signaling_server.serve_static(app, static_dir)
            with netns.entered(self.netns(server)):
                six = tuple(self.plan[server].addresses6[1:2])  # in a lab with IPv6, on it too
                serving = signaling_server.run_in_thread(app, host=ip, port=SIGNALING_PORT, also=six)
                self._exit.enter_context(serving)
        else:
            self._start_signaling_process(server, ip, timeout_s, static_dir)
        self.signaling_static = static_dir
        self.signaling_url = f"ws://{ip}:{SIGNALING_PORT}"
        return self.signaling_url

    def _serve_static(self, directory: Path) -> None:
        """Serve a directory at /app/ on the signaling server already running in this process."""
        if self._signaling_app is None:
            raise LabError(f"signaling runs as a process without {directory}: start it with static_dir")
        from netsim.services import signaling_server

        signaling_server.serve_static(self._signaling_app, directory)
        self.signaling_static = directory

    def _start_signaling_process(self, server: str, ip: str, timeout_s: float, static: Path | None) -> None:
        log = (self.workdir / "signaling.log").open("wb")
        argv = [sys.executable, "-m", "netsim", "signaling", "--host", ip, "--port", str(SIGNALING_PORT)]
        argv += ["--static", str(static)] if static is not None else []
        # The secret goes in the environment, not argv: argv is readable by every user through ps.
        env = {**os.environ, "NETSIM_SIGNALING_SECRET": self.signaling_secret}
        self.signaling_process = self.popen(
            server, argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while not http_ok(self.netns(server), ip, SIGNALING_PORT, "/healthz"):
            if time.monotonic() > deadline:
                raise LabError(f"signaling server did not become ready: see {self.workdir / 'signaling.log'}")
            time.sleep(0.05)

    @contextlib.contextmanager
    def capture(self, path: Path, timeout_s: float = 5.0) -> Iterator[Path]:
        """tcpdump on the internet segment (every packet between sites and servers) into `path`."""
        # --immediate-mode: packets still in libpcap's ring block would be lost when tcpdump is stopped.
        argv = ["tcpdump", "-i", INET, "--immediate-mode", "-U", "-n", "-w", str(path)]
        proc = netns.popen(self.namespaces[INET], argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._processes.append(proc)
        assert proc.stderr is not None
        # tcpdump says "listening on ..." once the capture runs; nothing before that would be recorded.
        ready = read_line_until(proc.stderr, b"listening on", timeout_s)
        if not ready:
            netns.end(proc)
            raise LabError(f"tcpdump did not start on {INET} in lab {self.id}")
        try:
            yield path
        finally:
            netns.end(proc)
            proc.stderr.close()

    def describe(self) -> dict[str, Any]:
        """`{"lab": ID, "topology": NAME, "nodes": {NODE: {"netns": NS, "addresses": [...]}}}`, as `netsim up
        --json` prints it and the registry entry starts (a node with IPv6 also has "addresses6")."""
        nodes: dict[str, dict[str, Any]] = {}
        for n, p in self.plan.items():
            nodes[n] = {"netns": self.namespaces[n], "addresses": p.addresses}
            if p.addresses6:  # only in a lab with IPv6: an IPv4 lab describes itself as before
                nodes[n]["addresses6"] = p.addresses6
        return {"lab": self.id, "topology": self.topology.name, "nodes": nodes}

    def _register(self, *, keep: bool) -> None:
        namespaces = self.namespaces.values()
        registry.write_entry(self.workdir, self.describe(), namespaces=namespaces, keep=keep)


# ---- helpers -----------------------------------------------------------------------------------------------


def _network(cidr: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Interface(cidr).network
