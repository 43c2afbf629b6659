"""The shared write salt: one scrypt per key epoch instead of one per write, format unchanged."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from sundial.vault import bulk, crypto
from sundial.vault.crypto import SecretKey, WriteSalt, encrypt_fields
from sundial.vault.keyring import Keyring

OLD = SecretKey("UNIT_TEST")
NEW = SecretKey("34" * 32)
FIELDS = [{"name": "TOKEN", "value": "synthetic-value-1"}]


@pytest.fixture
def derivations(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """Every scrypt call made in this process, by salt (inline paths only)."""
    calls: list[bytes] = []
    real = crypto.derive_key

    def counting(passphrase: bytes, salt: bytes) -> bytes:
        calls.append(salt)
        return real(passphrase, salt)

    monkeypatch.setattr(crypto, "derive_key", counting)
    monkeypatch.setattr(bulk, "derive_key", counting)
    yield calls


def test_many_writes_cost_one_derivation_and_stay_readable_by_xyops(derivations: list[bytes], reference: Any) -> None:
    ring = Keyring(OLD)
    records = {f"zw{i}": ring.encrypt_fields(FIELDS, f"zw{i}") for i in range(20)}
    assert len(derivations) == 1
    assert len({rec["salt"] for rec in records.values()}) == 1
    assert len({rec["iv"] for rec in records.values()}) == 20  # IVs stay random per write
    for sid, rec in records.items():
        assert len(base64.b64decode(rec["salt"])) == 16 and len(base64.b64decode(rec["iv"])) == 12
        assert reference.decrypt(rec, sid, "UNIT_TEST") == FIELDS


def test_write_salt_is_renewed_after_its_use_limit(derivations: list[bytes]) -> None:
    source = WriteSalt(OLD, max_uses=3)
    salts = [encrypt_fields(FIELDS, "zr", OLD, pool=source)["salt"] for _ in range(7)]
    assert salts[0] == salts[1] == salts[2] != salts[3] == salts[4] == salts[5] != salts[6]
    assert len(derivations) == 3


def test_records_of_another_key_never_use_this_salt() -> None:
    source = WriteSalt(OLD)
    record = encrypt_fields(FIELDS, "zk", NEW, pool=source)
    assert source.ready is False  # the source of another key was not touched
    assert crypto.decrypt_fields(record, "zk", NEW) == FIELDS


async def test_async_writes_skip_the_thread_hop_once_warm() -> None:
    ring = Keyring(OLD)
    ring.pool.warm()
    assert ring.pool.ready
    record = await ring.encrypt_fields_async(FIELDS, "zasync")
    assert ring.decrypt_fields(record, "zasync") == FIELDS


def test_rotation_derives_once_per_distinct_salt(derivations: list[bytes], reference: Any) -> None:
    ring = Keyring(OLD)
    shared = {f"zs{i}": ring.encrypt_fields(FIELDS, f"zs{i}") for i in range(30)}
    imported = {"zx1": reference.encrypt(FIELDS, "zx1", "UNIT_TEST"),
                "zx2": reference.encrypt(FIELDS, "zx2", "UNIT_TEST")}
    derivations.clear()
    target = WriteSalt(NEW)
    rotated = bulk.reencrypt_all({**shared, **imported}.items(), OLD, NEW, new_epoch=2, cache=ring.cache,
                                 write_salt=target)
    # the shared salt was cached by the writes; two imported salts + one new write salt
    assert len(derivations) == 3
    assert len({rec["salt"] for rec in rotated.values()}) == 1
    for sid, rec in rotated.items():
        assert rec["kep"] == 2 and reference.decrypt(rec, sid, NEW.reveal()) == FIELDS


def test_keyring_adopts_the_rotation_salt(derivations: list[bytes]) -> None:
    ring = Keyring(OLD)
    target = WriteSalt(NEW)
    rotated = bulk.reencrypt_all([("za", ring.encrypt_fields(FIELDS, "za"))], OLD, NEW, new_epoch=2,
                                 cache=ring.cache, write_salt=target)
    ring.begin_rotation(NEW)
    ring.activate_next(write_salt=target)
    count = len(derivations)
    after = ring.encrypt_fields(FIELDS, "zb")
    assert len(derivations) == count and after["salt"] == rotated["za"]["salt"]
    assert ring.decrypt_fields(rotated["za"], "za") == FIELDS and len(derivations) == count


def test_progress_reaches_the_total() -> None:
    seen: list[tuple[int, int]] = []
    records = [(f"zp{i}", encrypt_fields(FIELDS, f"zp{i}", OLD)) for i in range(2)]
    bulk.reencrypt_all(records, OLD, NEW, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1][0] == seen[-1][1] == 4  # 2 distinct salts + 2 records
