"""Live channel latency: from a job printing a line to a `/api/live` subscriber receiving it.

    .venv/bin/python bench/live.py [--lines 200] [--interval 0.05] [--fanout 1,20]

A job on the local satellite prints `--lines` lines, each carrying the wall-clock time it was
printed (`python3`, flushed per line), one every `--interval` seconds. For each fan-out N, N
WebSocket clients subscribe to the job before it starts printing; every line each of them
receives live (not the initial tail) gives one sample: receive time minus print time (same
host, same clock). Prints p50/p99/max in milliseconds and the samples counted. The path
measured: child stdout → satellite → `job_log` frame → job manager (log append, publish) →
bus → socket writer → client. The satellite batches a job's output for up to 50 ms
(`log_flush_interval` in satellite/process.py) so a flood of output becomes a few frames; that
window is part of the figure, and what lies above it is the conductor's and the channel's share.
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
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import httpx  # noqa: E402
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402

sys.path.append(str(_HERE))
from _conductor import conductor  # noqa: E402

SCRIPT = """#!/bin/sh
sleep 1
python3 -u -c '
import sys, time
for i in range({lines}):
    print("t=%.6f" % time.time(), flush=True)
    time.sleep({interval})
'
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered))) - 1))]


async def prepare(url: str, lines: int, interval: float) -> tuple[str, str]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        sid = (await client.post("/api/user/login", json={"username": "admin", "password": "admin"})).cookies[
            "session_id"]
        headers = {"X-Session-ID": sid}
        for _ in range(300):
            if (await client.post("/api/app/get_active_servers/v1", json={}, headers=headers)).json()["rows"]:
                break
            await asyncio.sleep(0.2)
        else:
            raise SystemExit("no satellite came online")
        made = await client.post("/api/app/create_event/v1", headers=headers, json={
            "title": "bench live", "enabled": True, "category": "general", "plugin": "shellplug",
            "targets": ["main"], "algo": "random",
            "params": {"script": SCRIPT.format(lines=lines, interval=interval)},
            "triggers": [{"type": "manual", "enabled": True}]})
        return sid, str(made.json()["event"]["id"])


async def follow(ws: ClientConnection, samples: list[float]) -> None:
    """Collect one latency sample per live line until the job's final record arrives."""
    async for raw in ws:
        now = time.time()
        message = json.loads(raw)
        if message.get("type") == "final":
            return
        if message.get("type") == "log" and not message.get("initial"):
            for line in message["text"].splitlines():
                if line.startswith("t="):
                    samples.append((now - float(line[2:])) * 1000.0)


async def one_run(url: str, sid: str, event_id: str, fanout: int) -> list[float]:
    ws_url = url.replace("http://", "ws://") + "/api/live"
    headers = {"X-Session-ID": sid}
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        job_id = (await client.post("/api/app/run_event/v1", headers=headers, json={"id": event_id})).json()["id"]
    sockets = [await connect(ws_url, additional_headers=headers, max_size=None) for _ in range(fanout)]
    try:
        for ws in sockets:
            await ws.send(json.dumps({"cmd": "subscribe", "topic": f"job:{job_id}", "tail": 0}))
        samples: list[float] = []
        await asyncio.wait_for(asyncio.gather(*(follow(ws, samples) for ws in sockets)), 300)
        return samples
    finally:
        for ws in sockets:
            await ws.close()


async def main_async(args: argparse.Namespace) -> None:
    with conductor(local_satellite=True) as (url, _pid):
        sid, event_id = await prepare(url, args.lines, args.interval)
        await one_run(url, sid, event_id, 1)  # warm-up: first spawn, first socket
        for fanout in [int(n) for n in args.fanout.split(",") if n.strip()]:
            samples = await one_run(url, sid, event_id, fanout)
            if not samples:
                print(f"fan-out {fanout:>3}: no samples")
                continue
            print(f"fan-out {fanout:>3}: print→receive p50 {statistics.median(samples):6.2f} ms  "
                  f"p99 {pct(samples, 99):6.2f} ms  max {max(samples):6.2f} ms  ({len(samples)} samples)")
        print("(includes the satellite's log batching window of up to 50 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--fanout", default="1,20", help="comma-separated subscriber counts")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
