"""NAT64 carriers and CLAT hosts (464XLAT, RFC 6877) with tayga, a userspace translator over a TUN device.

A NAT64 carrier translates IPv6 packets to the network-specific prefix NAT64_PREFIX into IPv4 from a dynamic
pool (stateless, tayga), and its NAT44 (the carrier's own NAT spec, rendered like any site's) maps the pool
to its WAN address: "NAT64 with symmetric mapping" is `nat = "symmetric"` on the carrier. A clat host runs a
second tayga that maps its private IPv4 address (192.0.0.4, RFC 7335) to its CLAT IPv6 address and every
other IPv4 address into the prefix, so IPv4 works on an IPv6-only host, through the carrier's NAT64.

Everything runs in the lab's namespaces (`tayga --mktun` makes the TUN there); the lab ends the processes and
the TUN goes with its namespace.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netsim.lab import nat, netns
from netsim.lab.plan6 import NAT64_PREFIX
from netsim.lab.registry import LabError

if TYPE_CHECKING:
    from netsim.lab.lab import Lab

NAT64_TUN = "nat64"
POOL = "192.168.255.0/24"  # the carrier's dynamic pool, NAT44'd to its WAN address
POOL_ADDRESS = "192.168.255.1"  # tayga's own (ICMP errors come from it)
CLAT_TUN = "clat"
CLAT_TAYGA = "192.0.0.1"  # RFC 7335's IPv4 service continuity prefix 192.0.0.0/29
CLAT_HOST = "192.0.0.4"
CLAT_MTU = 1260  # IPv6's 1280 minus the 20 bytes an IPv4 header is shorter
READY_TIMEOUT_S = 5.0


def tayga_config(tun: str, ipv4_addr: str, data_dir: Path, *extra: str) -> str:
    lines = [f"tun-device {tun}", f"ipv4-addr {ipv4_addr}", f"prefix {NAT64_PREFIX}", f"data-dir {data_dir}"]
    return "\n".join([*lines, *extra]) + "\n"


def _ip(ns: str, *argv: str) -> None:
    done = netns.run(ns, ["ip", *argv], capture_output=True, text=True)
    if done.returncode != 0:
        raise LabError(f"ip {' '.join(argv)} in {ns}: {done.stderr.strip()}")


def _tayga(ns: str, workdir: Path, name: str, config: str, setup: list[list[str]]) -> subprocess.Popen[Any]:
    """Make the TUN, set it up, then run tayga in the foreground (the lab ends it by pid)."""
    conf = workdir / f"tayga-{name}.conf"
    (workdir / f"tayga-{name}").mkdir(exist_ok=True)
    conf.write_text(config)
    made = netns.run(ns, ["tayga", "-c", str(conf), "--mktun"], capture_output=True, text=True)
    if made.returncode != 0:
        raise LabError(
            f"tayga --mktun in {ns}: {(made.stderr or made.stdout).strip()} (is /dev/net/tun there?)"
        )
    for argv in setup:
        _ip(ns, *argv)
    log = (workdir / f"tayga-{name}.log").open("wb")
    proc = netns.popen(ns, ["tayga", "-c", str(conf), "--nodetach"], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return proc


def start_nat64(lab: Lab, carrier: str) -> subprocess.Popen[Any]:
    """tayga on a NAT64 carrier, and its NAT44 of the pool to the WAN address."""
    ns = lab.netns(carrier)
    config = tayga_config(NAT64_TUN, POOL_ADDRESS, lab.workdir / f"tayga-{carrier}", f"dynamic-pool {POOL}")
    setup = [
        ["link", "set", NAT64_TUN, "up"],
        ["route", "add", POOL, "dev", NAT64_TUN],
        ["-6", "route", "add", NAT64_PREFIX, "dev", NAT64_TUN],
    ]
    proc = _tayga(ns, lab.workdir, carrier, config, setup)
    spec = next(c.nat for c in lab.topology.carriers if c.name == carrier)
    nat.apply(ns, spec, wan_if="wan", lan_if=NAT64_TUN, wan_ip=lab.addresses(carrier)[0], lan_cidr=POOL)
    return proc


def start_clat(lab: Lab, host: str) -> subprocess.Popen[Any]:
    """tayga on a clat host: its IPv4 (192.0.0.4) leaves as its CLAT IPv6 address into the NAT64 prefix."""
    ns, clat6 = lab.netns(host), lab.plan[host].clat6
    config = tayga_config(CLAT_TUN, CLAT_TAYGA, lab.workdir / f"tayga-{host}", f"map {CLAT_HOST} {clat6}")
    setup = [
        ["link", "set", CLAT_TUN, "up"],  # the TUN keeps 1500: IPv6 refuses a link under 1280
        ["addr", "add", f"{CLAT_HOST}/32", "dev", CLAT_TUN],
        ["route", "add", "default", "dev", CLAT_TUN, "src", CLAT_HOST, "mtu", str(CLAT_MTU)],
        ["-6", "route", "add", f"{clat6}/128", "dev", CLAT_TUN],
    ]
    return _tayga(ns, lab.workdir, host, config, setup)


def start_all(lab: Lab) -> list[subprocess.Popen[Any]]:
    """Every NAT64 carrier's translator, then every clat host's; waits until each one's process runs."""
    procs = [start_nat64(lab, c.name) for c in lab.topology.carriers if c.nat64]
    procs += [start_clat(lab, name) for name, node in lab.plan.items() if node.clat6]
    deadline = time.monotonic() + READY_TIMEOUT_S
    for proc in procs:
        while proc.poll() is None and time.monotonic() < deadline and not _running(proc):
            time.sleep(0.01)
        if proc.poll() is not None:
            raise LabError(f"tayga exited with {proc.returncode}: see the tayga-*.log files in {lab.workdir}")
    return procs


def _running(proc: subprocess.Popen[Any]) -> bool:
    """nsenter has exec'd tayga (a process named tayga, not nsenter any more)."""
    try:
        return Path(f"/proc/{proc.pid}/comm").read_text().strip() == "tayga"
    except OSError:
        return False
