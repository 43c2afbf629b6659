"""Re-encrypting every record at once (key rotation), paying scrypt once per distinct salt.

Cost model: a record is opened with the key derived from (old passphrase, its salt) and sealed
with the key derived from (new passphrase, the new write salt). Records Sundial wrote share
their epoch's write salt, so a rotation of Sundial-written secrets costs two derivations in
total; records imported from xyOps each carry their own salt and cost one derivation each.
Those derivations are the only expensive part, so they alone go to a process pool (both
cores, and the 16 MiB scrypt work areas stay out of the conductor); the AES work that
follows is microseconds per record and runs in the caller's thread.

Nothing is returned unless every record opened: a rotation is all or nothing.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import os
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from typing import Any

from sundial.vault.crypto import (
    DerivedKeyCache,
    SealedBlob,
    SecretKey,
    WriteSalt,
    derive_key,
    seal,
    unseal,
)
from sundial.vault.errors import DecryptError

Progress = Callable[[int, int], None]

CHUNKS_PER_WORKER = 4
# Up to this many derivations run inline: starting pool workers costs more than it saves.
INLINE_DERIVATIONS = 2


def derive_chunk(key: SecretKey, salts: list[bytes]) -> list[tuple[bytes, bytes]]:
    """Worker entry point: (salt, derived key) for each salt."""
    return [(salt, derive_key(key.passphrase(), salt)) for salt in salts]


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def make_pool(workers: int | None = None) -> ProcessPoolExecutor:
    """forkserver, not fork: forking a threaded asyncio process can copy held locks."""
    return ProcessPoolExecutor(max_workers=workers or default_workers(),
                               mp_context=multiprocessing.get_context("forkserver"))


def _parse(records: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[str, SealedBlob]:
    blobs: dict[str, SealedBlob] = {}
    for secret_id, record in records:
        try:
            blobs[secret_id] = SealedBlob.from_record(record)
        except DecryptError as exc:
            raise DecryptError(f"{exc.description}: {secret_id}") from None
    return blobs


def _chunks(salts: list[bytes], workers: int) -> list[list[bytes]]:
    size = max(1, math.ceil(len(salts) / (workers * CHUNKS_PER_WORKER)))
    return [salts[start:start + size] for start in range(0, len(salts), size)]


def _derive_on_pool(key: SecretKey, salts: list[bytes], pool: Executor, workers: int,
                    tick: Callable[[int], None]) -> dict[bytes, bytes]:
    futures: list[Future[list[tuple[bytes, bytes]]]] = [
        pool.submit(derive_chunk, key, chunk) for chunk in _chunks(salts, workers)]
    derived: dict[bytes, bytes] = {}
    for future in as_completed(futures):
        pairs = future.result()
        derived.update(pairs)
        tick(len(pairs))
    return derived


def derive_many(key: SecretKey, salts: list[bytes], *, executor: Executor | None = None,
                workers: int | None = None, tick: Callable[[int], None] = lambda _n: None) -> dict[bytes, bytes]:
    """Derived keys for many salts: inline when few, else on a (given or temporary) process pool."""
    if len(salts) <= INLINE_DERIVATIONS and executor is None:
        derived = {}
        for salt in salts:
            derived[salt] = derive_key(key.passphrase(), salt)
            tick(1)
        return derived
    count = workers or default_workers()
    pool = executor if executor is not None else make_pool(count)
    try:
        return _derive_on_pool(key, salts, pool, count, tick)
    finally:
        if executor is None:
            pool.shutdown(wait=True, cancel_futures=True)


def _old_keys(blobs: dict[str, SealedBlob], old: SecretKey, known: DerivedKeyCache | None, *,
              executor: Executor | None, workers: int | None,
              tick: Callable[[int], None]) -> DerivedKeyCache:
    """The old key's derivation of every salt in use, in a cache sized to hold them all.

    A private cache, not the keyring's: thousands of imported per-record salts would evict
    one another from a bounded LRU before they were used.
    """
    salts = list(dict.fromkeys(blob.salt for blob in blobs.values()))
    local = DerivedKeyCache(max_entries=len(salts) + 1)
    missing = []
    for salt in salts:
        derived = known.get(old, salt) if known is not None else None
        if derived is None:
            missing.append(salt)
        else:
            local.put(old, salt, derived)
            tick(1)
    for salt, derived in derive_many(old, missing, executor=executor, workers=workers, tick=tick).items():
        local.put(old, salt, derived)
    return local


def reencrypt_all(records: Iterable[tuple[str, Mapping[str, Any]]], old: SecretKey, new: SecretKey, *,
                  new_epoch: int | None = None, cache: DerivedKeyCache | None = None,
                  executor: Executor | None = None, workers: int | None = None,
                  write_salt: WriteSalt | None = None,
                  progress: Progress | None = None) -> dict[str, dict[str, Any]]:
    """New records for every (id, record), sealed under `new` with `write_salt`'s salt.

    Pass the keyring's cache so known derivations are reused and the new key's derivation is
    left warm for the reads that follow; pass `write_salt` to adopt it as the keyring's write
    salt afterwards. The first record that does not open raises a DecryptError naming it.
    """
    blobs = _parse(records)
    if not blobs:
        return {}
    salt_source = write_salt if write_salt is not None else WriteSalt(new)
    total, done = len({blob.salt for blob in blobs.values()}) + len(blobs), 0

    def tick(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(done, total)

    old_cache = _old_keys(blobs, old, cache, executor=executor, workers=workers, tick=tick)
    rotated: dict[str, dict[str, Any]] = {}
    for secret_id, blob in blobs.items():
        aad = secret_id.encode("utf-8")
        plaintext = unseal(blob, old, aad, cache=old_cache, label=secret_id)
        rotated[secret_id] = seal(plaintext, new, aad, epoch=new_epoch, cache=cache,
                                  pool=salt_source).to_record()
        tick(1)
    return rotated


async def reencrypt_all_async(records: Iterable[tuple[str, Mapping[str, Any]]], old: SecretKey,
                              new: SecretKey, *, new_epoch: int | None = None,
                              cache: DerivedKeyCache | None = None, executor: Executor | None = None,
                              workers: int | None = None, write_salt: WriteSalt | None = None,
                              progress: Progress | None = None) -> dict[str, dict[str, Any]]:
    """`reencrypt_all` in a thread, so the event loop keeps serving while it runs."""
    return await asyncio.to_thread(reencrypt_all, list(records), old, new, new_epoch=new_epoch, cache=cache,
                                   executor=executor, workers=workers, write_salt=write_salt,
                                   progress=progress)
