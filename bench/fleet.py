"""Fleet ingestion: N simulated satellites sending QuickMon samples every second to one conductor.

    .venv/bin/python bench/fleet.py [--agents 500] [--seconds 30] [--base-url URL --secret KEY]

All agents live in this one process and speak the real protocol through ``sundial.protocol``
(hello, join with the server auth token, echoback, quickmon). Each sample is a real one taken
from this machine once, with ``mem.used`` replaced by the send time in milliseconds, so the
newest row returned by ``get_quickmon_data`` tells how old the newest sample of each server is.

Prints the conductor's CPU (% of one core) and RSS idle (the baseline of the same run) and
under load, the simulator's own CPU, and the age of the newest sample per server (p50/p99/max;
a sample every second means ~500 ms is the floor).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder comes first on sys.path, and bench/secrets.py would shadow the
# standard library's `secrets` (which websockets uses): take the folder out before any import.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import importlib.util  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
import orjson  # noqa: E402
import psutil  # noqa: E402
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

from sundial import protocol as p  # noqa: E402
from sundial.satellite.metrics import MetricsCollector  # noqa: E402

_spec = importlib.util.spec_from_file_location("_conductor", _HERE / "_conductor.py")
assert _spec is not None and _spec.loader is not None
_conductor = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_conductor)
conductor = _conductor.conductor

SECRET = "bench-fleet-secret"


class SimAgent:
    """One simulated satellite: handshake, echo answers, a quickmon frame every second."""

    def __init__(self, index: int, url: str, secret: str, template: dict[str, Any]) -> None:
        self.server_id = f"bench{index:05d}"
        self.hostname = f"bench-{index:05d}.example"
        self.url, self.secret, self.template = url, secret, template
        self.offset = (index * 7919 % 1000) / 1000.0  # spread sends over the second, like the real stagger
        self.sent = 0
        self.joined = asyncio.Event()
        self.failed = ""

    async def run(self, stop: asyncio.Event) -> None:
        try:
            async with connect(self.url, max_size=p.MAX_FRAME_BYTES, ping_interval=None, proxy=None,
                               open_timeout=60, compression=None) as ws:
                await ws.send(p.encode_frame("hello", {"hostname": self.hostname, "id": self.server_id,
                                                       "info": {"platform": "linux"}}))
                sender = asyncio.create_task(self._send_forever(ws, stop))
                try:
                    await self._read_forever(ws, stop)
                finally:
                    sender.cancel()
        except (OSError, ConnectionClosed, TimeoutError) as exc:
            self.failed = self.failed or f"{type(exc).__name__}: {exc}"

    async def _read_forever(self, ws: ClientConnection, stop: asyncio.Event) -> None:
        async for raw in ws:
            frame = p.decode_frame(raw)
            if frame.cmd == "echo":
                await ws.send(p.encode_frame("echoback", frame.data))
            elif frame.cmd == "hello":
                await ws.send(p.encode_frame("join", {"token": p.server_auth_token(self.server_id, self.secret)}))
            elif frame.cmd == "joined":
                self.joined.set()
            elif frame.cmd == "auth_failure":
                self.failed = str(frame.data)
                return
            if stop.is_set():
                return

    async def _send_forever(self, ws: ClientConnection, stop: asyncio.Event) -> None:
        await self.joined.wait()
        next_at = math.floor(time.time()) + self.offset
        while not stop.is_set():
            next_at += 1.0
            await asyncio.sleep(max(0.0, next_at - time.time()))
            sample = dict(self.template)
            sample["mem"] = {**self.template["mem"], "used": int(time.time() * 1000)}
            await ws.send(orjson.dumps({"cmd": "quickmon", "data": sample}).decode())
            self.sent += 1


class Probe:
    """CPU seconds and RSS of a process between two points in time."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.mark()

    def mark(self) -> None:
        times = self.proc.cpu_times()
        self.cpu, self.wall = times.user + times.system, time.monotonic()

    def cpu_percent(self) -> float:
        times = self.proc.cpu_times()
        return 100.0 * (times.user + times.system - self.cpu) / max(1e-9, time.monotonic() - self.wall)

    def rss_mb(self) -> float:
        return self.proc.memory_info().rss / 1e6


def login(url: str) -> dict[str, str]:
    resp = httpx.post(url + "/api/user/login", json={"username": "admin", "password": "admin"}, timeout=30)
    return {"X-Session-ID": resp.cookies["session_id"]}


async def newest_ages(client: httpx.AsyncClient, headers: dict[str, str]) -> tuple[list[float], float]:
    """Age (ms) of each bench server's newest sample, and how long the API call took."""
    began = time.time()
    resp = await client.post("/api/app/get_quickmon_data/v1", json={}, headers=headers)
    took = time.time() - began
    now_ms = time.time() * 1000
    ages = [now_ms - rows[-1]["_qm_mem_used"] for sid, rows in resp.json()["servers"].items()
            if sid.startswith("bench") and rows]
    return ages, took


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


async def bench(url: str, secret: str, pid: int | None, agents: int, seconds: float) -> None:
    ws_url = url.replace("http://", "ws://").replace("https://", "wss://") + "/"
    template = MetricsCollector("bench").quick_sample()
    headers = login(url)
    probe = Probe(pid) if pid else None
    me = Probe(psutil.Process().pid)
    await asyncio.sleep(5)
    idle_cpu, idle_rss = (probe.cpu_percent(), probe.rss_mb()) if probe else (float("nan"), float("nan"))
    stop = asyncio.Event()
    sims = [SimAgent(i, ws_url, secret, template) for i in range(agents)]
    began = time.monotonic()
    tasks = []
    for batch in range(0, agents, 50):
        tasks += [asyncio.create_task(s.run(stop)) for s in sims[batch:batch + 50]]
        await asyncio.sleep(0.2)
    await asyncio.wait_for(asyncio.gather(*(s.joined.wait() for s in sims)), 180)
    print(f"{agents} agents joined in {time.monotonic() - began:.1f} s")
    await asyncio.sleep(5)  # warm-up: every agent has a full second behind it
    if probe:
        probe.mark()
    me.mark()
    sent_before, window_start = sum(s.sent for s in sims), time.monotonic()
    ages: list[float] = []
    calls: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await asyncio.sleep(random.uniform(2.5, 3.5))
            got, took = await newest_ages(client, headers)
            ages += got
            calls.append(took)
    load_cpu = probe.cpu_percent() if probe else float("nan")
    load_rss = probe.rss_mb() if probe else float("nan")
    sim_cpu = me.cpu_percent()
    rate = (sum(s.sent for s in sims) - sent_before) / (time.monotonic() - window_start)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    failed = [s for s in sims if s.failed]
    print(f"{'':32} {'idle':>10} {'under load':>12}")
    print(f"{'conductor CPU (% of one core)':32} {idle_cpu:10.1f} {load_cpu:12.1f}")
    print(f"{'conductor RSS (MB)':32} {idle_rss:10.1f} {load_rss:12.1f}")
    print(f"quickmon frames/s sent: {rate:.0f}   simulator CPU: {sim_cpu:.0f}%   failed agents: {len(failed)}")
    print(f"newest-sample age (ms) over {len(ages)} readings: p50 {pct(ages, 0.5):.0f}  p99 {pct(ages, 0.99):.0f}"
          f"  max {max(ages, default=float('nan')):.0f}  (floor ~500: one sample a second)")
    print(f"get_quickmon_data for all servers: median {statistics.median(calls) * 1000:.0f} ms")
    if probe and idle_cpu > 0:
        print(f"CPU ratio load/idle: {load_cpu / idle_cpu:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--base-url", help="use a running conductor instead of starting one")
    parser.add_argument("--secret", default=SECRET, help="its secret key (with --base-url)")
    parser.add_argument("--pid", type=int, help="its pid, for CPU and memory figures (with --base-url)")
    args = parser.parse_args()
    if args.base_url:
        asyncio.run(bench(args.base_url.rstrip("/"), args.secret, args.pid, args.agents, args.seconds))
        return
    with conductor(f"secret_key={SECRET}", "ping_freq_sec=5") as (url, pid):
        asyncio.run(bench(url, SECRET, pid, args.agents, args.seconds))


if __name__ == "__main__":
    main()
