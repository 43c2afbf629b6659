"""Job throughput and latency: N jobs of `true` through run_event on the local satellite.

    .venv/bin/python bench/jobs.py [--jobs 1000] [--concurrency 16] [--sequential 20] [--queued 10000]
                                   [--events 5000]

Prints accepted jobs/s, completed jobs/s, request-to-completion p50/p99 (server `completed`
stamp minus the client's submit time), run_event accept p50/p99, and one-at-a-time latency
on an idle system. Each also gets a breakdown of where a job's time went, as medians read from
the job records: submit→reply (accept), submit→launch sent (`started`), launch→"Spawned child
process" and spawn→"Child exited" (the satellite's meta lines, stamped when the conductor got
them), exit→`completed` (the satellite's finish plus the conductor's final record).

Two phases measure the job manager's bookkeeping at scale (0 skips them): ``--queued N`` accepts
N jobs into one event's queue behind a running job (max 1 concurrent) and aborts them one by
one; ``--events N`` creates N events and runs one job of `true` on each, timing the jobs from
the first submit to the last completion.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).parent))
from _conductor import conductor  # noqa: E402

SCRIPT = "#!/bin/sh\ntrue\n"
STAGES = ("reply", "launch", "spawned", "exited", "completed")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered))) - 1))]


def cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU seconds used so far by the conductor itself, and by its children (the local satellite
    with the job processes it has reaped): a per-job cost that other load on the host does not skew."""
    own = psutil.Process(pid).cpu_times()
    kids = 0.0
    for child in psutil.Process(pid).children():
        with contextlib.suppress(psutil.Error):
            times = child.cpu_times()
            kids += times.user + times.system + times.children_user + times.children_system
    return own.user + own.system, kids


def stage_marks(job: dict[str, Any], submitted: float, replied: float) -> dict[str, float]:
    """Epoch stamps of one job's stages (those it has), from its record and the client's clock."""
    marks = {"submit": submitted, "reply": replied, "launch": float(job.get("started") or 0),
             "completed": float(job.get("completed") or 0)}
    for row in job.get("activity") or []:
        msg = str(row.get("msg", ""))
        if msg.startswith("Spawned child process"):
            marks["spawned"] = float(row["epoch"])
        elif msg.startswith("Child exited"):
            marks["exited"] = float(row["epoch"])
    return {k: v for k, v in marks.items() if v}


def print_breakdown(samples: list[dict[str, float]]) -> None:
    """Median milliseconds per stage: reply and launch from submit, the rest from the stage before."""
    parts = []
    for stage, since in zip(STAGES, ("submit", "submit", "launch", "spawned", "exited"), strict=True):
        values = [m[stage] - m[since] for m in samples if stage in m and since in m]
        if values:
            parts.append(f"{since}->{stage} {statistics.median(values) * 1000:.1f}")
    print(f"  breakdown (median ms over {len(samples)}): " + ", ".join(parts))


async def fetch_marks(client: httpx.AsyncClient, headers: dict[str, str], times: dict[str, tuple[float, float]],
                      limit: int = 200) -> list[dict[str, float]]:
    """Stage marks for up to ``limit`` jobs spread evenly over the run."""
    ids = list(times)
    step = max(1, len(ids) // limit)
    out = []
    for job_id in ids[::step][:limit]:
        resp = await client.post("/api/app/get_job/v1", json={"id": job_id}, headers=headers)
        out.append(stage_marks(resp.json()["job"], *times[job_id]))
    return out


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


async def burst(url: str, headers: dict[str, str], event_id: str, count: int, concurrency: int, pid: int) -> None:
    submitted: dict[str, float] = {}
    replied: dict[str, float] = {}
    accept: list[float] = []
    limits = httpx.Limits(max_connections=concurrency + 4)
    broken = 0
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        remaining = count

        async def submit() -> None:
            nonlocal remaining, broken
            while remaining > 0:
                remaining -= 1
                start = time.time()
                try:
                    resp = await client.post("/api/app/run_event/v1", json={"id": event_id}, headers=headers)
                except httpx.TransportError:  # a pooled connection dropped under load: count it, go on
                    broken += 1
                    continue
                accept.append(time.time() - start)
                submitted[resp.json()["id"]] = start
                replied[resp.json()["id"]] = time.time()

        cpu_before = cpu_seconds(pid)
        began = time.time()
        await asyncio.gather(*(submit() for _ in range(concurrency)))
        accepted_at = time.time()
        completed: dict[str, float] = {}
        while len(completed) < len(submitted) and time.time() - began < 600:
            await asyncio.sleep(0.25)
            rows = (await client.post("/api/app/search_jobs/v1", headers=headers, json={
                "query": f"event:{event_id}", "limit": count + 10, "select": "id,completed,code"})).json()["rows"]
            completed.update({r["id"]: float(r["completed"]) for r in rows
                              if r.get("completed") and r["id"] in submitted})
        cpu = [(a - b) / count * 1000 for a, b in zip(cpu_seconds(pid), cpu_before, strict=True)]
        marks = await fetch_marks(client, headers, {j: (submitted[j], replied[j]) for j in completed})
    latencies = [completed[j] - submitted[j] for j in completed if j in submitted]
    span = max(completed.values()) - began if completed else float("nan")
    print(f"jobs: {count} submitted at concurrency {concurrency}, {len(completed)} completed"
          + (f", {broken} requests lost to dropped connections" if broken else ""))
    print(f"accepted: {len(submitted) / (accepted_at - began):.0f} jobs/s; run_event accept "
          f"p50 {pct(accept, 50) * 1000:.1f} ms, p99 {pct(accept, 99) * 1000:.1f} ms")
    print(f"completed: {len(completed) / span:.0f} jobs/s (makespan {span:.2f} s)")
    print(f"request->complete: p50 {pct(latencies, 50) * 1000:.0f} ms, p99 {pct(latencies, 99) * 1000:.0f} ms")
    print_breakdown(marks)
    print(f"CPU per job: conductor {cpu[0]:.2f} ms (its status polls included), satellite and job processes "
          f"{cpu[1]:.2f} ms; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


async def sequential(url: str, headers: dict[str, str], event_id: str, count: int) -> None:
    latencies: list[float] = []
    marks: list[dict[str, float]] = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        for _ in range(count):
            start = time.time()
            resp = await client.post("/api/app/run_event/v1/wait", json={"id": event_id}, headers=headers)
            job = resp.json()["job"]
            latencies.append(float(job["completed"]) - start)
            marks.append(stage_marks(job, start, 0))
    print(f"one job at a time (idle): p50 {statistics.median(latencies) * 1000:.1f} ms, "
          f"max {max(latencies) * 1000:.1f} ms over {count}")
    print_breakdown(marks)


async def gather_limited(concurrency: int, calls: list[Any]) -> list[Any]:
    """Await zero-argument coroutine factories, at most ``concurrency`` at a time, results in order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(call: Any) -> Any:
        async with gate:
            return await call()

    return await asyncio.gather(*(one(c) for c in calls))


@contextlib.asynccontextmanager
async def verb_caller(url: str, headers: dict[str, str], concurrency: int
                      ) -> AsyncIterator[Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]]:
    """A verb-calling function on one pooled client; a failed verb ends the bench with its envelope."""
    async with httpx.AsyncClient(base_url=url, timeout=120,
                                 limits=httpx.Limits(max_connections=concurrency + 4)) as client:
        async def call(verb: str, body: dict[str, Any]) -> dict[str, Any]:
            data: dict[str, Any] = (await client.post(f"/api/app/{verb}/v1", json=body, headers=headers)).json()
            if data.get("code") != 0:
                raise SystemExit(f"{verb} failed: {data}")
            return data

        yield call


async def queued_phase(url: str, headers: dict[str, str], count: int, concurrency: int) -> None:
    """Accept ``count`` jobs into one queue behind a running job, then abort every one of them."""
    async with verb_caller(url, headers, concurrency) as call:
        event = (await call("create_event", {
            "title": "bench queue", "enabled": True, "category": "general", "plugin": "shellplug",
            "targets": ["main"], "algo": "random", "params": {"script": "#!/bin/sh\nsleep 600\n"},
            "triggers": [{"type": "manual", "enabled": True}],
            "limits": [{"type": "job", "enabled": True, "amount": 1},
                       {"type": "queue", "enabled": True, "amount": count}]}))["event"]["id"]
        blocker = (await call("run_event", {"id": event}))["id"]
        began = time.time()
        ids = [r["id"] for r in await gather_limited(concurrency, [
            lambda: call("run_event", {"id": event}) for _ in range(count)])]
        accepted = time.time()
        queued = (await call("get_event", {"id": event}))["queued"]
        await gather_limited(concurrency, [lambda j=j: call("abort_job", {"id": j}) for j in ids])
        aborted = time.time()
        await call("abort_job", {"id": blocker})
    print(f"queue: {count} jobs accepted into one queue in {accepted - began:.1f} s ({queued} queued), "
          f"aborted in {aborted - accepted:.1f} s; accept+abort {aborted - began:.1f} s")


async def events_phase(url: str, headers: dict[str, str], count: int, concurrency: int) -> None:
    """One job of `true` on each of ``count`` events: from the first submit to the last completion."""
    async with verb_caller(url, headers, concurrency) as call:
        made = time.time()
        events = [r["event"]["id"] for r in await gather_limited(concurrency, [lambda i=i: call("create_event", {
            "title": f"bench many {i}", "enabled": True, "category": "general", "plugin": "shellplug",
            "targets": ["main"], "algo": "random", "params": {"script": SCRIPT},
            "triggers": [{"type": "manual", "enabled": True}]}) for i in range(count)])]
        began = time.time()
        ids = {r["id"] for r in await gather_limited(concurrency, [
            lambda e=e: call("run_event", {"id": e}) for e in events])}
        accepted = time.time()
        done: set[str] = set()
        while len(done) < len(ids) and time.time() - began < 1800:
            await asyncio.sleep(0.5)
            rows = (await call("search_jobs", {"query": "source:user", "limit": count * 2 + 100,
                                               "select": "id"}))["rows"]
            done = {r["id"] for r in rows} & ids
    print(f"events: {count} events created in {began - made:.1f} s; one job each: accepted in "
          f"{accepted - began:.1f} s, all {len(done)} completed {time.time() - began:.1f} s after the first submit")


async def main_async(args: argparse.Namespace) -> None:
    with conductor("max_jobs_per_min=0", local_satellite=True) as (url, pid):
        headers, event_id = await prepare(url)
        if args.sequential:
            await sequential(url, headers, event_id, 5)  # warm-up
            await sequential(url, headers, event_id, args.sequential)
        if args.jobs:
            await burst(url, headers, event_id, args.jobs, args.concurrency, pid)
        if args.queued:
            await queued_phase(url, headers, args.queued, args.concurrency)
        if args.events:
            await events_phase(url, headers, args.events, args.concurrency)
        rss = sum(p.memory_info().rss for p in [psutil.Process(pid)]) / 2**20
        print(f"conductor RSS after load: {rss:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--sequential", type=int, default=20)
    parser.add_argument("--queued", type=int, default=10000, help="jobs to accept into one queue and abort")
    parser.add_argument("--events", type=int, default=5000, help="events to run one job of `true` each")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
