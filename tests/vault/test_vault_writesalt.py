"""Write salts: a fresh one per write (spec §2), API saves and key rotation alike."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from sundial.vault import bulk, crypto
from sundial.vault.crypto import FreshKeyPool, SecretKey, encrypt_fields
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


def test_every_write_has_its_own_salt_and_stays_readable_by_xyops(derivations: list[bytes],
                                                                    reference: Any) -> None:
    ring = Keyring(OLD)
    records = {f"zw{i}": ring.encrypt_fields(FIELDS, f"zw{i}") for i in range(5)}
    assert len(derivations) == 5
    assert len({rec["salt"] for rec in records.values()}) == 5
    assert len({rec["iv"] for rec in records.values()}) == 5
    for sid, rec in records.items():
        assert len(base64.b64decode(rec["salt"])) == 16 and len(base64.b64decode(rec["iv"])) == 12
        assert reference.decrypt(rec, sid, "UNIT_TEST") == FIELDS


def test_a_pool_of_another_key_is_never_used() -> None:
    pool = FreshKeyPool(OLD, target=1)
    pool.refill()
    record = encrypt_fields(FIELDS, "zk", NEW, pool=pool)
    assert len(pool) == 1  # the other key's salt was not handed out
    assert crypto.decrypt_fields(record, "zk", NEW) == FIELDS


async def test_async_writes_skip_the_thread_hop_once_refilled() -> None:
    ring = Keyring(OLD)
    assert ring.refill() == len(ring.pool) > 0
    before = len(ring.pool)
    record = await ring.encrypt_fields_async(FIELDS, "zasync")
    assert len(ring.pool) == before - 1  # the salt was handed out once, never again
    assert ring.decrypt_fields(record, "zasync") == FIELDS


def test_rotation_gives_every_record_a_fresh_salt(derivations: list[bytes], reference: Any) -> None:
    ring = Keyring(OLD)
    written = {f"zs{i}": ring.encrypt_fields(FIELDS, f"zs{i}") for i in range(3)}
    imported = {"zx1": reference.encrypt(FIELDS, "zx1", "UNIT_TEST"),
                "zx2": reference.encrypt(FIELDS, "zx2", "UNIT_TEST")}
    before = {rec["salt"] for rec in {**written, **imported}.values()}
    derivations.clear()
    rotated = bulk.reencrypt_all({**written, **imported}.items(), OLD, NEW, new_epoch=2, cache=ring.cache)
    # the written salts were cached by the writes: two imported salts + one new salt per record
    assert len(derivations) == 2 + 5
    salts = [rec["salt"] for rec in rotated.values()]
    assert len(set(salts)) == 5 and not set(salts) & before
    assert len({rec["iv"] for rec in rotated.values()}) == 5
    for sid, rec in rotated.items():
        assert rec["kep"] == 2 and reference.decrypt(rec, sid, NEW.reveal()) == FIELDS


def test_rotation_opens_records_sharing_an_old_salt_with_one_derivation(derivations: list[bytes],
                                                                         reference: Any) -> None:
    """Records from older Sundial versions may share one salt; they still each get their own."""
    shared = b"\x07" * 16
    records = {f"zo{i}": reference.encrypt(FIELDS, f"zo{i}", "UNIT_TEST", salt=shared) for i in range(4)}
    derivations.clear()
    rotated = bulk.reencrypt_all(records.items(), OLD, NEW, new_epoch=2, workers=2)
    assert derivations.count(shared) == 1 and len(derivations) == 1 + 4
    assert len({rec["salt"] for rec in rotated.values()}) == 4


def test_writes_after_a_rotation_use_fresh_salts_of_the_new_key() -> None:
    ring = Keyring(OLD)
    rotated = bulk.reencrypt_all([("za", ring.encrypt_fields(FIELDS, "za"))], OLD, NEW, new_epoch=2,
                                 cache=ring.cache)
    ring.begin_rotation(NEW)
    ring.activate_next()
    after = ring.encrypt_fields(FIELDS, "zb")
    assert after["salt"] != rotated["za"]["salt"] and after["kep"] == 2
    assert crypto.decrypt_fields(after, "zb", NEW) == FIELDS
    assert ring.decrypt_fields(rotated["za"], "za") == FIELDS


def test_progress_reaches_the_total() -> None:
    seen: list[tuple[int, int]] = []
    records = [(f"zp{i}", encrypt_fields(FIELDS, f"zp{i}", OLD)) for i in range(2)]
    bulk.reencrypt_all(records, OLD, NEW, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1][0] == seen[-1][1] == 4  # 2 distinct salts + 2 records
