"""Bulk re-encryption on a thread pool: all records move, or the whole batch fails."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from sundial.vault.bulk import reencrypt_all, reencrypt_all_async
from sundial.vault.crypto import DerivedKeyCache, SecretKey, decrypt_fields, encrypt_fields
from sundial.vault.errors import DecryptError

OLD = SecretKey("UNIT_TEST")
NEW = SecretKey("12" * 32)


def _records(count: int, cache: DerivedKeyCache | None = None) -> dict[str, dict[str, Any]]:
    return {f"zb{i}": encrypt_fields([{"name": "V", "value": f"synthetic-{i}"}], f"zb{i}", OLD, cache=cache)
            for i in range(count)}


def test_every_record_moves_to_the_new_key() -> None:
    cache = DerivedKeyCache()
    records = _records(3, cache)
    rotated = reencrypt_all(records.items(), OLD, NEW, new_epoch=2, cache=cache, workers=2)
    assert sorted(rotated) == sorted(records)
    for sid, record in rotated.items():
        assert record["kep"] == 2
        assert decrypt_fields(record, sid, NEW) == [{"name": "V", "value": f"synthetic-{sid[2:]}"}]
        with pytest.raises(DecryptError):
            decrypt_fields(record, sid, OLD)


def test_one_bad_record_fails_the_batch_naming_it() -> None:
    records = _records(2)
    records["zstranger"] = encrypt_fields([{"name": "V", "value": "x"}], "zstranger", NEW)
    with pytest.raises(DecryptError, match="zstranger"):
        reencrypt_all(records.items(), OLD, NEW, workers=2)


async def test_async_front_end() -> None:
    rotated = await reencrypt_all_async(_records(1).items(), OLD, NEW)
    assert decrypt_fields(rotated["zb0"], "zb0", NEW) == [{"name": "V", "value": "synthetic-0"}]
    assert await reencrypt_all_async([], OLD, NEW) == {}


def test_the_key_never_goes_into_a_pickle() -> None:
    """Derivations run on threads; a pickled key could end up on disk, so pickling is refused."""
    with pytest.raises(TypeError):
        pickle.dumps(OLD)
