"""Vault phase-1 benchmark: secret encrypt/decrypt rates and bulk re-encryption on a process pool.

    .venv/bin/python bench/secrets.py [--records 1000] [--workers 2] [--json]

Absolute figures move with the machine; read the ratios, which are taken in the same run
(baseline = one core deriving inline, what xyOps does). Fixture records for the rotation share
one salt so that setting up 1,000 of them does not itself take a minute; the workers still run
a full scrypt per record because they get no cache unless the "warm" variant hands one over.
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
import base64
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sundial.vault.bulk import make_pool, reencrypt_all
from sundial.vault.crypto import (
    DerivedKeyCache,
    FreshKeyPool,
    SecretKey,
    decrypt_fields,
    derive_key,
    encode_fields,
    encrypt_fields,
)
from sundial.vault.keyring import Keyring

OLD = SecretKey("bench-old-" + "a" * 54)
NEW = SecretKey("bench-new-" + "b" * 54)
FIELDS = [{"name": "DB_PASSWORD", "value": "bench-value-1"}, {"name": "API_TOKEN", "value": "bench-value-2"}]


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else float("inf")


def timed(action: Callable[[], Any]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def bench_encrypt(count: int) -> dict[str, float]:
    """Cold = derive inline per write; pooled = salts derived ahead of time (refill not timed)."""
    cold = timed(lambda: [encrypt_fields(FIELDS, f"zc{i}", OLD) for i in range(count)])
    pool = FreshKeyPool(OLD, target=count)
    pool.refill()
    pooled = timed(lambda: [encrypt_fields(FIELDS, f"zp{i}", OLD, pool=pool) for i in range(count)])
    return {"encrypt_cold_ops_s": rate(count, cold), "encrypt_pooled_ops_s": rate(count, pooled)}


def bench_decrypt(count: int, warm_count: int) -> dict[str, float]:
    """Cold = no cache (one scrypt per open); warm = derived key cached for the record's salt."""
    records = [(f"zd{i}", encrypt_fields(FIELDS, f"zd{i}", OLD)) for i in range(count)]
    cold = timed(lambda: [decrypt_fields(rec, sid, OLD) for sid, rec in records])
    cache = DerivedKeyCache()
    decrypt_fields(records[0][1], records[0][0], OLD, cache=cache)
    sid, rec = records[0]
    warm = timed(lambda: [decrypt_fields(rec, sid, OLD, cache=cache) for _ in range(warm_count)])
    return {"decrypt_cold_ops_s": rate(count, cold), "decrypt_warm_ops_s": rate(warm_count, warm)}


async def _decrypt_in_flight(records: list[tuple[str, dict[str, Any]]], in_flight: int) -> float:
    ring = Keyring(OLD)
    gate = asyncio.Semaphore(in_flight)

    async def one(sid: str, rec: dict[str, Any]) -> None:
        async with gate:
            await ring.decrypt_fields_async(rec, sid)

    start = time.perf_counter()
    await asyncio.gather(*(one(sid, rec) for sid, rec in records))
    return time.perf_counter() - start


def bench_decrypt_async(count: int, in_flight: int) -> dict[str, float]:
    """Cold decrypts through the async wrapper, `in_flight` at once: shows scrypt using both cores."""
    records = [(f"za{i}", encrypt_fields(FIELDS, f"za{i}", OLD)) for i in range(count)]
    seconds = asyncio.run(_decrypt_in_flight(records, in_flight))
    return {f"decrypt_cold_async_{in_flight}_in_flight_ops_s": rate(count, seconds)}


def fixture_records(count: int) -> tuple[dict[str, dict[str, Any]], bytes, bytes]:
    """Records under OLD hand-assembled around one derivation (see the module docstring)."""
    salt = os.urandom(16)
    derived = derive_key(OLD.passphrase(), salt)
    b64 = base64.b64encode
    records = {}
    for i in range(count):
        sid, iv = f"zr{i:05d}", os.urandom(12)
        sealed = AESGCM(derived).encrypt(iv, encode_fields(FIELDS), sid.encode())
        records[sid] = {"v": 1, "alg": "aes-256-gcm", "salt": b64(salt).decode(), "iv": b64(iv).decode(),
                        "tag": b64(sealed[-16:]).decode(), "ct": b64(sealed[:-16]).decode()}
    return records, salt, derived


def bench_rotation(count: int, workers: int, sample: int) -> dict[str, float]:
    records, salt, derived = fixture_records(count)
    items = list(records.items())
    baseline = timed(lambda: reencrypt_all(items[:sample], OLD, NEW, executor=_Inline(), workers=1))
    warm_cache = DerivedKeyCache()
    warm_cache.put(OLD, salt, derived)
    pool = make_pool(workers)
    try:
        startup = timed(lambda: [f.result() for f in [pool.submit(int) for _ in range(workers)]])
        cold = timed(lambda: reencrypt_all(items, OLD, NEW, new_epoch=2, executor=pool, workers=workers))
        warm = timed(lambda: reencrypt_all(items, OLD, NEW, new_epoch=2, cache=warm_cache, executor=pool,
                                           workers=workers))
    finally:
        pool.shutdown()
    one_core = baseline / sample * count
    return {"rotation_records": count, "rotation_workers": workers, "pool_startup_s": round(startup, 2),
            "rotation_one_core_estimate_s": round(one_core, 1), "rotation_cold_s": round(cold, 1),
            "rotation_warm_s": round(warm, 1), "rotation_cold_speedup": round(one_core / cold, 2),
            "rotation_warm_speedup": round(one_core / warm, 2)}


class _Inline(Executor):
    """An executor that runs in the calling thread: the single-core baseline."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000, help="secrets to re-encrypt")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--ops", type=int, default=20, help="scrypt-bound operations per cold figure")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    args = parser.parse_args()
    results: dict[str, float] = {}
    results |= bench_encrypt(args.ops)
    results |= bench_decrypt(args.ops, warm_count=5000)
    results |= bench_decrypt_async(args.ops * 2, in_flight=8)
    results |= bench_rotation(args.records, args.workers, sample=max(5, args.ops // 2))
    warm, cold = results["decrypt_warm_ops_s"], results["decrypt_cold_ops_s"]
    results["warm_over_cold_decrypt"] = round(warm / cold, 1)
    if args.json:
        print(json.dumps(results))
        return
    for name, value in results.items():
        print(f"{name:45s} {value}")


if __name__ == "__main__":
    main()
