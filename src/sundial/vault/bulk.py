"""Re-encrypting many records at once, on every core.

Rotation costs two scrypt derivations per record (~60 ms each); threads would do, since scrypt
releases the GIL, but a process pool also keeps the conductor's event loop and memory clear of
the 16 MiB-per-derivation work areas. Derived keys the conductor already holds for the old
key are handed to the workers, so a warm cache halves the work.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import os
from collections.abc import Iterable, Mapping
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any

from sundial.vault.crypto import DerivedKeyCache, SealedBlob, SecretKey, reencrypt_record

Item = tuple[str, Mapping[str, Any], bytes | None]

CHUNKS_PER_WORKER = 4


def reencrypt_chunk(items: list[Item], old: SecretKey, new: SecretKey,
                    new_epoch: int | None) -> list[tuple[str, dict[str, Any]]]:
    """Worker entry point: the first undecryptable record aborts the chunk (and the rotation)."""
    return [(secret_id, reencrypt_record(record, secret_id, old, new, new_epoch=new_epoch,
                                         old_derived=derived))
            for secret_id, record, derived in items]


def _items(records: Iterable[tuple[str, Mapping[str, Any]]], old: SecretKey,
           cache: DerivedKeyCache | None) -> list[Item]:
    items: list[Item] = []
    for secret_id, record in records:
        derived = cache.get(old, SealedBlob.from_record(record).salt) if cache is not None else None
        items.append((secret_id, record, derived))
    return items


def _chunks(items: list[Item], workers: int) -> list[list[Item]]:
    size = max(1, math.ceil(len(items) / (workers * CHUNKS_PER_WORKER)))
    return [items[start:start + size] for start in range(0, len(items), size)]


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def make_pool(workers: int | None = None) -> ProcessPoolExecutor:
    """forkserver, not fork: forking a threaded asyncio process can copy held locks."""
    return ProcessPoolExecutor(max_workers=workers or default_workers(),
                               mp_context=multiprocessing.get_context("forkserver"))


def reencrypt_all(records: Iterable[tuple[str, Mapping[str, Any]]], old: SecretKey, new: SecretKey, *,
                  new_epoch: int | None = None, cache: DerivedKeyCache | None = None,
                  executor: Executor | None = None, workers: int | None = None) -> dict[str, dict[str, Any]]:
    """New records for every (id, record); nothing is returned unless every record succeeded."""
    items = _items(records, old, cache)
    if not items:
        return {}
    own = executor is None
    pool = make_pool(workers) if executor is None else executor
    try:
        futures = [pool.submit(reencrypt_chunk, chunk, old, new, new_epoch)
                   for chunk in _chunks(items, workers or default_workers())]
        return {secret_id: record for future in futures for secret_id, record in future.result()}
    finally:
        if own:
            pool.shutdown(wait=True, cancel_futures=True)


async def reencrypt_all_async(records: Iterable[tuple[str, Mapping[str, Any]]], old: SecretKey,
                              new: SecretKey, *, new_epoch: int | None = None,
                              cache: DerivedKeyCache | None = None, executor: Executor | None = None,
                              workers: int | None = None) -> dict[str, dict[str, Any]]:
    """`reencrypt_all` without blocking the event loop while it waits for the workers."""
    return await asyncio.to_thread(reencrypt_all, list(records), old, new, new_epoch=new_epoch, cache=cache,
                                   executor=executor, workers=workers)
