"""Secrets benchmark: crypto micro-figures, then the API of a real conductor.

    .venv/bin/python bench/secrets.py [--records 1000] [--ops 20] [--skip-api] [--skip-micro] [--json]

Micro (in-process): encrypt/decrypt cost with a fresh scrypt per record (what every write must
do), with salts derived ahead (the vault's reserve), and with a warm derived-key cache; bulk
re-encryption (a fresh salt per record) on one thread and on `--workers` threads.

API (a throw-away conductor on SQLite, started by bench/_conductor.py): `create_secret` and
`decrypt_secret` rates at 1/8/32 in flight, and `admin_rotate_secret_key` for 100 and
`--records` secrets: time until its internal job is gone, and `get_categories` latency
probed every 100 ms during the rotation (the API must keep answering).

Absolute figures move with the machine; the ratios in one run are what to compare.
"""

# ruff: noqa: E402  (imports must follow the sys.path fix below)
from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the stdlib `secrets` module, which the vault imports: drop the
# script's own directory from the import path before anything else is imported.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent / "src"))

import argparse
import asyncio
import json
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from sundial.vault.bulk import reencrypt_all
from sundial.vault.crypto import DerivedKeyCache, FreshKeyPool, SecretKey, decrypt_fields, encrypt_fields

OLD = SecretKey("bench-old-" + "a" * 54)
NEW = SecretKey("bench-new-" + "b" * 54)
FIELDS = [{"name": "DB_PASSWORD", "value": "bench-value-1"}, {"name": "API_TOKEN", "value": "bench-value-2"}]


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else float("inf")


def timed(action: Callable[[], Any]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


# -- micro ---------------------------------------------------------------------------------

def bench_micro(ops: int, records: int, workers: int) -> dict[str, float]:
    cold_enc = timed(lambda: [encrypt_fields(FIELDS, f"zc{i}", OLD) for i in range(ops)])
    pool = FreshKeyPool(OLD, target=ops)
    pool.refill()  # the reserve is derived ahead, in the background, in the conductor
    reserved_enc = timed(lambda: [encrypt_fields(FIELDS, f"zs{i}", OLD, pool=pool) for i in range(ops)])
    sample = [(f"zd{i}", encrypt_fields(FIELDS, f"zd{i}", OLD)) for i in range(ops)]
    cold_dec = timed(lambda: [decrypt_fields(rec, sid, OLD) for sid, rec in sample])
    cache = DerivedKeyCache()
    decrypt_fields(sample[0][1], sample[0][0], OLD, cache=cache)
    warm_dec = timed(lambda: [decrypt_fields(sample[0][1], sample[0][0], OLD, cache=cache) for _ in range(5000)])
    return {"encrypt_fresh_salt_ops_s": rate(ops, cold_enc), "encrypt_reserved_salt_ops_s": rate(ops, reserved_enc),
            "decrypt_cold_ops_s": rate(ops, cold_dec), "decrypt_warm_ops_s": rate(5000, warm_dec),
            **bench_bulk(records, workers)}


def bench_bulk(records: int, workers: int) -> dict[str, float]:
    """Re-encrypt `records` (each with its own old salt) under a new key, warm old derivations."""
    cache = DerivedKeyCache(max_entries=3 * records + 1)  # both runs find every old derivation warm
    written = [(f"zw{i:05d}", encrypt_fields(FIELDS, f"zw{i:05d}", OLD, cache=cache)) for i in range(records)]
    one = timed(lambda: reencrypt_all(written, OLD, NEW, new_epoch=2, cache=cache, workers=1))
    many = timed(lambda: reencrypt_all(written, OLD, NEW, new_epoch=2, cache=cache, workers=workers))
    return {"rotate_records": records, "rotate_one_thread_s": round(one, 2),
            f"rotate_{workers}_threads_s": round(many, 2), "rotate_speedup": round(one / many, 2)}


# -- API -----------------------------------------------------------------------------------

class Client:
    def __init__(self, url: str, session: str, concurrency: int = 32) -> None:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self.http = httpx.AsyncClient(base_url=url, limits=limits, timeout=120,
                                      headers={"X-Session-ID": session})

    async def call(self, verb: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        resp = await self.http.post(f"/api/app/{verb}/v1", json=params or {})
        data: dict[str, Any] = resp.json()
        if data.get("code") != 0:
            raise RuntimeError(f"{verb}: {data}")
        return data


async def run_ops(count: int, concurrency: int, op: Callable[[int], Awaitable[Any]]) -> dict[str, float]:
    latencies: list[float] = []
    cursor = iter(range(count))

    async def worker() -> None:
        for index in cursor:
            start = time.perf_counter()
            await op(index)
            latencies.append(time.perf_counter() - start)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {"ops_s": rate(count, elapsed), "p50_ms": round(statistics.median(latencies) * 1000, 1),
            "p99_ms": round(latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000, 1)}


async def create_many(client: Client, count: int, concurrency: int, tag: str) -> tuple[list[str], dict[str, float]]:
    ids: list[str] = []

    async def create(i: int) -> None:
        made = await client.call("create_secret", {"title": f"bench {tag} {i}", "fields": [
            {"name": "USER", "value": f"user-{tag}-{i}"}, {"name": "PASS", "value": f"pw-{i}-" + "x" * 24}]})
        ids.append(made["secret"]["id"])

    figures = await run_ops(count, concurrency, create)
    return ids, figures


async def bench_rates(client: Client, ops: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ids: list[str] = []
    for concurrency in (1, 8, 32):
        made, figures = await create_many(client, ops, concurrency, f"c{concurrency}")
        ids += made
        out[f"create_c{concurrency}"] = figures
    for concurrency in (1, 8, 32):
        # baseline: the same request shape answered from memory, no crypto and no audit write
        out[f"get_secret_c{concurrency}_baseline"] = await run_ops(
            ops * 2, concurrency, lambda i: client.call("get_secret", {"id": ids[i % len(ids)]}))
        out[f"decrypt_c{concurrency}"] = await run_ops(
            ops * 2, concurrency, lambda i: client.call("decrypt_secret", {"id": ids[i % len(ids)]}))
    return out


async def bench_rotation(client: Client, count: int) -> dict[str, Any]:
    existing = len((await client.call("get_secrets"))["rows"])
    if existing < count:
        await create_many(client, count - existing, 16, f"r{count}")
    probes: list[float] = []
    done = asyncio.Event()

    async def probe() -> None:
        while not done.is_set():
            start = time.perf_counter()
            await client.call("get_categories")
            probes.append(time.perf_counter() - start)
            await asyncio.sleep(0.1)

    prober = asyncio.create_task(probe())
    began = time.perf_counter()
    job = (await client.call("admin_rotate_secret_key", {"password": "admin"}))["id"]
    accepted = time.perf_counter() - began
    for _poll in range(20 * 600):  # the internal job disappears when the rotation ends
        if not any(row["id"] == job for row in (await client.call("get_internal_jobs"))["rows"]):
            break
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - began
    done.set()
    await prober
    sample = (await client.call("get_secrets"))["rows"][:50]
    for row in sample:
        await client.call("decrypt_secret", {"id": row["id"]})
    return {"secrets": max(existing, count), "accept_ms": round(accepted * 1000, 1), "total_s": round(elapsed, 2),
            "probe_calls": len(probes), "probe_max_ms": round(max(probes, default=0) * 1000, 1)}


async def bench_api(url: str, ops: int, records: int) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        login = await http.post(url + "/api/user/login", json={"username": "admin", "password": "admin"})
    client = Client(url, login.cookies["session_id"])
    try:
        out: dict[str, Any] = {}
        for count in (100, records):  # first, so the 100 case holds exactly 100 secrets
            out[f"rotation_{count}"] = await bench_rotation(client, count)
        out.update(await bench_rates(client, ops))
    finally:
        await client.http.aclose()
    return out


def run_api(ops: int, records: int) -> dict[str, Any]:
    sys.path.insert(0, str(_HERE))
    from _conductor import conductor

    with conductor() as (url, _pid):
        return asyncio.run(bench_api(url, ops, records))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000, help="secrets in the large rotation")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--ops", type=int, default=200, help="API operations per rate figure")
    parser.add_argument("--skip-micro", action="store_true")
    parser.add_argument("--skip-api", action="store_true")
    parser.add_argument("--base-url", help="use this running conductor (admin/admin, key in a mutable "
                                           "source) instead of starting one; it WILL be rotated")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    if not args.skip_micro:
        results["micro"] = bench_micro(max(8, args.ops // 10), args.records, args.workers)
    if args.base_url:
        results["api"] = asyncio.run(bench_api(args.base_url, args.ops, args.records))
    elif not args.skip_api:
        results["api"] = run_api(args.ops, args.records)
    if args.json:
        print(json.dumps(results))
        return
    for section, figures in results.items():
        for name, value in figures.items():
            print(f"{section:6} {name:38} {json.dumps(value) if isinstance(value, dict) else value}")


if __name__ == "__main__":
    main()
