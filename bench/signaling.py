"""Signaling forwarding benchmark: latency p50/p99 and messages per second, 100 clients on loopback.

    python bench/signaling.py [--clients 100] [--rate 2000] [--duration 10] [--flood 20000] [--json out.json]

The server runs in its own process (`python -m netsim signaling`, rate limit off), this process is
the load generator. Phase 1 offers a paced load (default 2,000 msg/s) of browser-shaped candidate frames,
client i -> client (i + N/2) mod N, each stamped with its send time; latency is receive time minus send time,
both read in this process. Phase 2 floods the server (every client sends as fast as it can) and reports the
forwarding throughput. Target (issue 3): p99 <= 5 ms at 2,000 msg/s on the 2-core lab machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from websockets.asyncio.client import ClientConnection, connect  # noqa: E402

from netsim.services.signaling import make_token  # noqa: E402

SECRET = "bench-secret"
TARGET_P99_MS = 5.0
TARGET_RATE = 2000.0
CANDIDATE = (
    "candidate:842163049 1 udp 1677729535 198.18.1.1 41000 typ srflx raddr 10.1.0.2 rport 41000 "
    "generation 0 ufrag EsAw network-cost 999"
)


def start_server() -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "netsim", "signaling", "--host", "127.0.0.1", "--port", "0"]
    cmd += ["--secret", SECRET, "--rate", "0", "--log-level", "warning"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("signaling: listening on "):
        proc.kill()
        raise RuntimeError(f"server did not start: {line!r}")
    return proc, line.split()[3].split("/ws/")[0]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    received: int = 0
    misrouted: int = 0
    flood_received: int = 0
    all_in: asyncio.Event = field(default_factory=asyncio.Event)
    expect: int = 0


def name(i: int) -> str:
    return f"c{i:03d}"


async def reader(ws: ClientConnection, me: int, n: int, stats: Stats) -> None:
    partner = name((me + n // 2) % n)  # pairs are symmetric: my partner is also my only sender
    async for raw in ws:
        now = time.perf_counter()
        msg = json.loads(raw)
        if msg["type"] != "candidate":
            continue
        if msg["sender"] != partner or msg["to"] != me:
            stats.misrouted += 1
        if "t" in msg:
            stats.latencies.append(now - msg["t"])
            stats.received += 1
        else:
            stats.flood_received += 1
        if stats.received + stats.flood_received >= stats.expect:
            stats.all_in.set()


def frame(src: int, n: int, stamp: bool) -> str:
    dst = (src + n // 2) % n
    obj: dict[str, Any] = {"type": "candidate", "target": name(dst), "candidate": CANDIDATE, "sdpMid": "0"}
    obj.update(sdpMLineIndex=0, to=dst)
    if stamp:
        obj["t"] = time.perf_counter()
    return json.dumps(obj, separators=(",", ":"))


async def connect_all(url: str, n: int) -> list[ClientConnection]:
    async def one(i: int) -> ClientConnection:
        ws = await connect(
            f"{url}/ws/{name(i)}?token={make_token(SECRET, name(i))}", proxy=None, max_queue=None
        )
        await ws.recv()  # welcome
        return ws

    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def paced(clients: list[ClientConnection], rate: float, duration: float) -> float:
    """Send rate*duration stamped frames on a fixed schedule; return the achieved send rate."""
    n, total = len(clients), int(rate * duration)
    start = time.perf_counter()
    for k in range(total):
        delay = start + k / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        src = k % n
        await clients[src].send(frame(src, n, stamp=True))
    return total / (time.perf_counter() - start)


async def flood(clients: list[ClientConnection], total: int, stats: Stats) -> float:
    """Every client sends its share as fast as it can; return forwarded frames per second."""
    n = len(clients)
    share = total // n

    async def sender(i: int) -> None:
        for _ in range(share):
            await clients[i].send(frame(i, n, stamp=False))

    start = time.perf_counter()
    await asyncio.gather(*(sender(i) for i in range(n)))
    await asyncio.wait_for(stats.all_in.wait(), 60)
    return share * n / (time.perf_counter() - start)


def pct(sorted_ms: list[float], q: float) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))]


async def bench(args: argparse.Namespace, url: str, server_pid: int) -> dict[str, Any]:
    n = args.clients
    clients = await connect_all(url, n)
    await asyncio.sleep(0.5)  # let the join presence storm (n^2/2 frames) pass
    stats = Stats(expect=int(args.rate * args.duration))
    readers = [asyncio.create_task(reader(ws, i, n, stats)) for i, ws in enumerate(clients)]

    cpu0, t0 = cpu_seconds(server_pid), time.perf_counter()
    achieved = await paced(clients, args.rate, args.duration)
    try:
        await asyncio.wait_for(stats.all_in.wait(), 10)
    except TimeoutError:
        pass
    paced_cpu = (cpu_seconds(server_pid) - cpu0) / (time.perf_counter() - t0)

    lat = sorted(x * 1000 for x in stats.latencies)
    sent = stats.expect
    stats.all_in.clear()
    stats.expect = stats.received + (args.flood // n) * n
    cpu0, t0 = cpu_seconds(server_pid), time.perf_counter()
    flood_rate = await flood(clients, args.flood, stats)
    flood_cpu = (cpu_seconds(server_pid) - cpu0) / (time.perf_counter() - t0)

    for task in readers:
        task.cancel()
    await asyncio.gather(*(ws.close() for ws in clients), return_exceptions=True)
    return {
        "clients": n,
        "offered_rate": args.rate,
        "achieved_rate": round(achieved, 1),
        "sent": sent,
        "delivered": len(lat),
        "lost": sent - len(lat),
        "misrouted": stats.misrouted,
        "p50_ms": round(pct(lat, 0.50), 3),
        "p90_ms": round(pct(lat, 0.90), 3),
        "p99_ms": round(pct(lat, 0.99), 3),
        "max_ms": round(lat[-1], 3),
        "server_cpu_paced": round(paced_cpu, 3),
        "flood_messages": (args.flood // n) * n,
        "flood_rate": round(flood_rate, 1),
        "server_cpu_flood": round(flood_cpu, 3),
    }


def report(r: dict[str, Any]) -> bool:
    ok = r["p99_ms"] <= TARGET_P99_MS and r["achieved_rate"] >= 0.98 * TARGET_RATE and r["lost"] == 0
    ok = ok and r["misrouted"] == 0
    print(
        f"signaling bench: {r['clients']} clients on loopback, server in a separate process; "
        f"python {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    print(
        f"paced: offered {r['offered_rate']:.0f} msg/s, achieved {r['achieved_rate']:.0f} msg/s, "
        f"delivered {r['delivered']}/{r['sent']}, misrouted {r['misrouted']}"
    )
    print(
        f"  forwarding latency p50 {r['p50_ms']:.2f} ms  p90 {r['p90_ms']:.2f} ms  "
        f"p99 {r['p99_ms']:.2f} ms  max {r['max_ms']:.2f} ms"
    )
    print(f"  server CPU {100 * r['server_cpu_paced']:.0f}% of one core")
    print(
        f"flood: {r['flood_messages']} messages, {r['flood_rate']:.0f} msg/s forwarded "
        f"(server CPU {100 * r['server_cpu_flood']:.0f}% of one core)"
    )
    verdict = "PASS" if ok else "FAIL"
    target = f"p99 <= {TARGET_P99_MS:g} ms at {TARGET_RATE:.0f} msg/s"
    measured = f"p99 {r['p99_ms']:.2f} ms at {r['achieved_rate']:.0f} msg/s"
    print(f"target: {target} -> measured {measured}, lost {r['lost']}: {verdict}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--rate", type=float, default=TARGET_RATE, help="offered msg/s in the paced phase")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of paced load")
    parser.add_argument("--flood", type=int, default=50000, help="messages in the flood phase")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    proc, url = start_server()
    try:
        try:
            import uvloop

            result = uvloop.run(bench(args, url, proc.pid))
        except ImportError:
            result = asyncio.run(bench(args, url, proc.pid))
    finally:
        proc.terminate()
        proc.wait(10)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if report(result) else 1


if __name__ == "__main__":
    sys.exit(main())
