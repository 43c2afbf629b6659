"""Re-encrypting every record at once (key rotation): a fresh salt and IV for every record.

Cost model: a record is opened with the key derived from (old passphrase, its salt) and sealed
with the key derived from (new passphrase, a new random salt of its own), as the spec asks
(secrets-and-webhooks.md §2, key-rotation.md §5.5). Old derivations already in the keyring's
cache (every record written or read since start) are reused, records that share an old salt
cost one derivation between them, and every record costs one new derivation. Those scrypt
calls are the only expensive part (~25 ms of CPU each), so they run side by side on a thread
pool: scrypt releases the GIL, so threads use every core as well as processes would (measured
on the 2-core host: ~23 ms serial, ~13 ms per derivation with two threads, the same as two
processes), without starting workers and without the key ever being pickled. The AES work
that follows is microseconds per record and runs in the caller's thread.

Nothing is returned unless every record opened: a rotation is all or nothing.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Any

from sundial.vault.crypto import (
    DerivedKeyCache,
    SealedBlob,
    SecretKey,
    derive_key,
    fresh_salt,
    seal,
    unseal,
)
from sundial.vault.errors import DecryptError

Progress = Callable[[int, int], None]

# Up to this many derivations run inline: starting threads costs more than it saves.
INLINE_DERIVATIONS = 2
THREAD_NAME = "sundial-scrypt"


def default_workers() -> int:
    """One derivation per core: more threads only add 16 MiB work areas, not speed."""
    return max(1, os.cpu_count() or 1)


def _parse(records: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[str, SealedBlob]:
    blobs: dict[str, SealedBlob] = {}
    for secret_id, record in records:
        try:
            blobs[secret_id] = SealedBlob.from_record(record)
        except DecryptError as exc:
            raise DecryptError(f"{exc.description}: {secret_id}") from None
    return blobs


def _derive_inline(jobs: list[tuple[SecretKey, bytes]],
                   tick: Callable[[int], None]) -> dict[tuple[SecretKey, bytes], bytes]:
    derived = {}
    for key, salt in jobs:
        derived[(key, salt)] = derive_key(key.passphrase(), salt)
        tick(1)
    return derived


def _derive_on_threads(jobs: list[tuple[SecretKey, bytes]], workers: int,
                       tick: Callable[[int], None]) -> dict[tuple[SecretKey, bytes], bytes]:
    """All derivations side by side; the first failure cancels the rest and is raised."""
    derived: dict[tuple[SecretKey, bytes], bytes] = {}
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=THREAD_NAME)
    try:
        futures: dict[Future[bytes], tuple[SecretKey, bytes]] = {
            pool.submit(derive_key, key.passphrase(), salt): (key, salt) for key, salt in jobs}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for future in done:
                derived[futures[future]] = future.result()
            tick(len(done))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return derived


def derive_many(jobs: list[tuple[SecretKey, bytes]], *, workers: int | None = None,
                tick: Callable[[int], None] = lambda _n: None) -> dict[tuple[SecretKey, bytes], bytes]:
    """Derived keys for many (key, salt) pairs: inline when few, else on a temporary thread pool."""
    if len(jobs) <= INLINE_DERIVATIONS:
        return _derive_inline(jobs, tick)
    return _derive_on_threads(jobs, workers or default_workers(), tick)


def _old_salts(blobs: dict[str, SealedBlob], old: SecretKey, known: DerivedKeyCache | None,
               local: DerivedKeyCache) -> list[bytes]:
    """Fill `local` with the old derivations `known` holds; return the salts still to derive.

    A private cache, not the keyring's: thousands of imported per-record salts would evict
    one another from a bounded LRU before they were used.
    """
    missing = []
    for salt in dict.fromkeys(blob.salt for blob in blobs.values()):
        derived = known.get(old, salt) if known is not None else None
        if derived is None:
            missing.append(salt)
        else:
            local.put(old, salt, derived)
    return missing


def reencrypt_all(records: Iterable[tuple[str, Mapping[str, Any]]], old: SecretKey, new: SecretKey, *,
                  new_epoch: int | None = None, cache: DerivedKeyCache | None = None,
                  workers: int | None = None, progress: Progress | None = None) -> dict[str, dict[str, Any]]:
    """New records for every (id, record), each sealed under `new` with its own fresh salt and IV.

    Pass the keyring's cache so known old derivations are reused and the new ones are left
    warm for the reads that follow. The first record that does not open raises a DecryptError
    naming it. Progress counts derivations: distinct old salts plus one per record.
    """
    blobs = _parse(records)
    if not blobs:
        return {}
    old_cache = DerivedKeyCache(max_entries=len(blobs) + 1)
    missing = _old_salts(blobs, old, cache, old_cache)
    fresh = {secret_id: fresh_salt() for secret_id in blobs}
    total = len(old_cache) + len(missing) + len(fresh)
    done = len(old_cache)

    def tick(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(done, total)

    jobs = [(old, salt) for salt in missing] + [(new, salt) for salt in fresh.values()]
    derived = derive_many(jobs, workers=workers, tick=tick)
    for salt in missing:
        old_cache.put(old, salt, derived[(old, salt)])
    rotated: dict[str, dict[str, Any]] = {}
    for secret_id, blob in blobs.items():
        aad = secret_id.encode("utf-8")
        plaintext = unseal(blob, old, aad, cache=old_cache, label=secret_id)
        salt = fresh[secret_id]
        rotated[secret_id] = seal(plaintext, new, aad, epoch=new_epoch, cache=cache,
                                  derived=(salt, derived[(new, salt)])).to_record()
    return rotated


async def reencrypt_all_async(records: Iterable[tuple[str, Mapping[str, Any]]], old: SecretKey,
                              new: SecretKey, *, new_epoch: int | None = None,
                              cache: DerivedKeyCache | None = None, workers: int | None = None,
                              progress: Progress | None = None) -> dict[str, dict[str, Any]]:
    """`reencrypt_all` in a thread, so the event loop keeps serving while it runs."""
    return await asyncio.to_thread(reencrypt_all, list(records), old, new, new_epoch=new_epoch, cache=cache,
                                   workers=workers, progress=progress)
