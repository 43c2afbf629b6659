"""Scheduler burst: N events due on the same minute, from the minute boundary to "all launched".

    .venv/bin/python bench/scheduler.py [--events 10000] [--stagger-ms 50] [--concurrency 8]

Starts a throw-away conductor (SQLite, no satellite), creates the events through the real
API (`create_event`, each with a `single` trigger on one future minute), waits for that
minute and reads the scheduler's own timings of the tick (`get_scheduler_status`):

* plan: boundary -> launches planned; stored: boundary -> last slot+job transaction
  committed; launched: boundary -> last job handed to the job manager (adopt);
* skew p50/p99: per job, hand-over time minus the boundary.

It then checks the slots against the events: every event launched exactly once. Without a
satellite every job ends "No available servers" at once, so the job manager's finishing
writes compete with the scheduler, as they would on a busy conductor.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).parent))
from _conductor import conductor  # noqa: E402

BODY = {"enabled": True, "category": "general", "plugin": "shellplug", "targets": ["main"], "algo": "random",
        "params": {"script": "#!/bin/sh\ntrue\n"}}


def session(url: str) -> dict[str, str]:
    resp = httpx.post(url + "/api/user/login", json={"username": "admin", "password": "admin"})
    return {"X-Session-ID": resp.cookies["session_id"]}


async def create_events(client: httpx.AsyncClient, count: int, epoch: int, concurrency: int,
                        start: int = 0) -> list[str]:
    ids: list[str] = []
    queue = iter(range(start, start + count))

    async def worker() -> None:
        for index in queue:
            body = {**BODY, "title": f"burst {index}", "triggers": [{"type": "single", "enabled": True,
                                                                     "epoch": epoch}]}
            data = (await client.post("/api/app/create_event/v1", json=body)).json()
            if data.get("code") != 0:
                raise RuntimeError(f"create_event failed: {data}")
            ids.append(data["event"]["id"])

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ids


async def tick_of(client: httpx.AsyncClient, minute: int, expected: int, wait_s: float) -> dict[str, Any]:
    deadline = time.time() + wait_s
    while time.time() < deadline:
        status = (await client.post("/api/app/get_scheduler_status/v1", json={})).json()
        tick = next((t for t in status.get("ticks", []) if t["minute"] == minute), None)
        if tick and tick["adopted"] >= tick["stored"] and tick["stored"] + tick["duplicates"] >= expected:
            return tick
        await asyncio.sleep(0.5)
    raise RuntimeError(f"the tick of minute {minute} did not finish within {wait_s} s")


async def run(url: str, pid: int, events: int, concurrency: int) -> None:
    headers = session(url)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=900) as client:
        began = time.time()
        probe = await create_events(client, min(200, events), 2_000_000_000, concurrency)  # a rate sample
        rate = len(probe) / (time.time() - began)
        for event_id in probe:
            await client.post("/api/app/delete_event/v1", json={"id": event_id})
        target = math.ceil((time.time() + events / rate * 1.3 + 10) / 60) * 60
        print(f"creating {events} events at ~{rate:.0f}/s, all due at minute {target} "
              f"({target - time.time():.0f} s from now)")
        began = time.time()
        ids = await create_events(client, events, target, concurrency, start=1000)
        created = time.time()
        print(f"created {len(ids)} events in {created - began:.1f} s ({len(ids) / (created - began):.0f}/s); "
              f"{target - created:.1f} s before the boundary")
        if created > target - 1:
            raise SystemExit("event creation overran the target minute; rerun (the rate guess was too high)")
        process = psutil.Process(pid)
        cpu_before = process.cpu_times()
        await asyncio.sleep(max(0.0, target - time.time()))
        tick = await tick_of(client, target, len(ids), wait_s=300)
        cpu_after = process.cpu_times()
        print_tick(tick, len(ids))
        await wait_drained(client, target, wait_s=900)
    cpu = cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system
    print(f"conductor CPU from the boundary until the status reply: {cpu:.1f} s; "
          f"RSS {process.memory_info().rss / 2**20:.0f} MiB")


async def wait_drained(client: httpx.AsyncClient, boundary: int, wait_s: float) -> None:
    """Seconds from the boundary until the job manager has finished every job (None: gave up)."""
    deadline = time.time() + wait_s
    while time.time() < deadline:
        active = (await client.post("/api/app/get_active_jobs/v1", json={})).json()
        if not active.get("rows"):
            seconds = time.time() - boundary
            print(f"job manager finished all jobs {seconds:.1f} s after the boundary (no satellite: aborted)")
            return
        await asyncio.sleep(1.0)
    print(f"job manager still busy {wait_s:.0f} s after the tick")



def print_tick(tick: dict[str, Any], events: int) -> None:
    exact = tick["stored"] == events and tick["duplicates"] == 0 and tick["refused"] == 0
    print(f"events due: {events}; launched: {tick['stored']} (refused {tick['refused']}, "
          f"duplicates {tick['duplicates']}) -> exactly once: {'yes' if exact else 'NO'}")
    print(f"boundary -> planned {tick['plan_s']:.3f} s, all stored {tick['stored_s']:.3f} s, "
          f"all launched (handed to the job manager) {tick['last_adopt_s']:.3f} s")
    print(f"launch skew p50 {tick['skew_p50_s']:.3f} s, p99 {tick['skew_p99_s']:.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument("--stagger-ms", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with conductor("max_jobs_per_min=0", f"scheduler_stagger_ms={args.stagger_ms}", "debug_level=3") as (url, pid):
        asyncio.run(run(url, pid, args.events, args.concurrency))


if __name__ == "__main__":
    main()
