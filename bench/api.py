"""API throughput: echo and an authenticated list verb at concurrency 1 and 32, then
get_events with a large catalogue (`--events`, default 10,000; 0 skips it).

    .venv/bin/python bench/api.py [--requests 2000] [--events 10000] [--base-url URL --api-key KEY]

Prints requests/s and p50/p99 latency per case (request to last byte; the client does not
parse the body), plus the conductor's RSS.
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


async def run_case(url: str, path: str, headers: dict[str, str], total: int, concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    remaining = total
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                start = time.perf_counter()
                resp = await client.post(path, json={}, headers=headers)
                latencies.append(time.perf_counter() - start)
                resp.raise_for_status()

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {"rps": total / elapsed, "p50_ms": statistics.median(latencies) * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000}


def api_key(url: str) -> str:
    resp = httpx.post(url + "/api/user/login", json={"username": "admin", "password": "admin"})
    sid = resp.cookies["session_id"]
    made = httpx.post(url + "/api/app/create_api_key/v1", json={"title": "bench", "privileges": {"admin": True}},
                      headers={"X-Session-ID": sid}).json()
    return str(made["plain_key"])


async def create_events(url: str, key: str, count: int) -> None:
    """`count` idle events (manual trigger only) in a fresh category, 16 requests at a time."""
    headers = {"X-API-Key": key}
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        cat = f"bench{int(time.time())}"
        await client.post("/api/app/create_category/v1", json={"id": cat, "title": cat}, headers=headers)
        numbers = iter(range(count))

        async def worker() -> None:
            for n in numbers:
                body = {"title": f"bench event {n}", "enabled": True, "category": cat, "plugin": "shellplug",
                        "targets": ["main"], "algo": "random", "params": {"script": "#!/bin/sh\ntrue\n"},
                        "triggers": [{"type": "manual", "enabled": True}], "notes": "bench"}
                (await client.post("/api/app/create_event/v1", json=body, headers=headers)).raise_for_status()

        await asyncio.gather(*(worker() for _ in range(16)))


async def bench_events(url: str, key: str, total: int, events: int) -> None:
    began = time.perf_counter()
    await create_events(url, key, events)
    print(f"created {events} events in {time.perf_counter() - began:.1f} s")
    headers = {"X-API-Key": key}
    for concurrency in (1, 8):
        result = await run_case(url, "/api/app/get_events/v1", headers, min(total, 200), concurrency)
        name = f"get_events ({events} events)"
        print(f"{name:28} {concurrency:>4} {result['rps']:>8.0f} {result['p50_ms']:>8.2f} {result['p99_ms']:>8.2f}")


async def bench(url: str, key: str, total: int, pid: int | None, events: int = 0) -> None:
    cases = [("echo", "/api/app/echo/v1", {}), ("get_categories (API key)", "/api/app/get_categories/v1",
                                                  {"X-API-Key": key})]
    await run_case(url, "/api/app/ping/v1", {}, 200, 8)  # warm-up
    print(f"{'case':28} {'conc':>4} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for name, path, headers in cases:
        for concurrency in (1, 32):
            result = await run_case(url, path, headers, total, concurrency)
            print(f"{name:28} {concurrency:>4} {result['rps']:>8.0f} {result['p50_ms']:>8.2f} {result['p99_ms']:>8.2f}")
    if events:
        await bench_events(url, key, total, events)
    if pid:
        print(f"conductor RSS after load: {psutil.Process(pid).memory_info().rss / 2**20:.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--base-url")
    parser.add_argument("--api-key")
    parser.add_argument("--events", type=int, default=10000, help="events created for the get_events case")
    args = parser.parse_args()
    if args.base_url:
        asyncio.run(bench(args.base_url, args.api_key or api_key(args.base_url), args.requests, None, args.events))
        return
    with conductor() as (url, pid):
        print(f"conductor RSS idle: {psutil.Process(pid).memory_info().rss / 2**20:.1f} MiB")
        asyncio.run(bench(url, api_key(url), args.requests, pid, args.events))


if __name__ == "__main__":
    main()
