"""Job throughput and latency: N jobs of `true` through run_event on the local satellite.

    .venv/bin/python bench/jobs.py [--jobs 1000] [--concurrency 16] [--sequential 20]

Prints accepted jobs/s, completed jobs/s, request-to-completion p50/p99 (server `completed`
stamp minus the client's submit time), run_event accept p50/p99, and one-at-a-time latency
on an idle system.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).parent))
from _conductor import conductor  # noqa: E402

SCRIPT = "#!/bin/sh\ntrue\n"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered))) - 1))]


async def prepare(url: str) -> tuple[dict[str, str], str]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        sid = (await client.post("/api/user/login", json={"username": "admin", "password": "admin"})).cookies[
            "session_id"]
        headers = {"X-Session-ID": sid}
        for _ in range(300):
            rows = (await client.post("/api/app/get_active_servers/v1", json={}, headers=headers)).json()["rows"]
            if rows:
                break
            await asyncio.sleep(0.2)
        else:
            raise SystemExit("no satellite came online")
        made = await client.post("/api/app/create_event/v1", headers=headers, json={
            "title": "bench jobs", "enabled": True, "category": "general", "plugin": "shellplug",
            "targets": ["main"], "algo": "random", "params": {"script": SCRIPT},
            "triggers": [{"type": "manual", "enabled": True}]})
        return headers, str(made.json()["event"]["id"])


async def burst(url: str, headers: dict[str, str], event_id: str, count: int, concurrency: int) -> None:
    submitted: dict[str, float] = {}
    accept: list[float] = []
    limits = httpx.Limits(max_connections=concurrency + 4)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        remaining = count

        async def submit() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                start = time.time()
                resp = await client.post("/api/app/run_event/v1", json={"id": event_id}, headers=headers)
                accept.append(time.time() - start)
                submitted[resp.json()["id"]] = start

        began = time.time()
        await asyncio.gather(*(submit() for _ in range(concurrency)))
        accepted_at = time.time()
        completed: dict[str, float] = {}
        while len(completed) < len(submitted) and time.time() - began < 600:
            await asyncio.sleep(0.25)
            rows = (await client.post("/api/app/search_jobs/v1", headers=headers, json={
                "query": f"event:{event_id}", "limit": count + 10, "select": "id,completed,code"})).json()["rows"]
            completed.update({r["id"]: float(r["completed"]) for r in rows if r.get("completed")})
    latencies = [completed[j] - submitted[j] for j in completed if j in submitted]
    span = max(completed.values()) - began if completed else float("nan")
    print(f"jobs: {count} submitted at concurrency {concurrency}, {len(completed)} completed")
    print(f"accepted: {count / (accepted_at - began):.0f} jobs/s; run_event accept "
          f"p50 {pct(accept, 50) * 1000:.1f} ms, p99 {pct(accept, 99) * 1000:.1f} ms")
    print(f"completed: {len(completed) / span:.0f} jobs/s (makespan {span:.2f} s)")
    print(f"request->complete: p50 {pct(latencies, 50) * 1000:.0f} ms, p99 {pct(latencies, 99) * 1000:.0f} ms")


async def sequential(url: str, headers: dict[str, str], event_id: str, count: int) -> None:
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        for _ in range(count):
            start = time.time()
            resp = await client.post("/api/app/run_event/v1/wait", json={"id": event_id}, headers=headers)
            job = resp.json()["job"]
            latencies.append(float(job["completed"]) - start)
    print(f"one job at a time (idle): p50 {statistics.median(latencies) * 1000:.1f} ms, "
          f"max {max(latencies) * 1000:.1f} ms over {count}")


async def main_async(args: argparse.Namespace) -> None:
    with conductor(local_satellite=True) as (url, pid):
        headers, event_id = await prepare(url)
        await sequential(url, headers, event_id, 5)  # warm-up
        await sequential(url, headers, event_id, args.sequential)
        await burst(url, headers, event_id, args.jobs, args.concurrency)
        rss = sum(p.memory_info().rss for p in [psutil.Process(pid)]) / 2**20
        print(f"conductor RSS after load: {rss:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--sequential", type=int, default=20)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
