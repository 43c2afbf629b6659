"""Write salts: a fresh one per API write (spec §2), derived ahead; rotation shares one per run."""

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


async def test_async_writes_skip_the_thread_hop_once_refilled() -> None:
    ring = Keyring(OLD)
    assert ring.refill() == len(ring.pool) > 0
    before = len(ring.pool)
    record = await ring.encrypt_fields_async(FIELDS, "zasync")
    assert len(ring.pool) == before - 1  # the salt was handed out once, never again
    assert ring.decrypt_fields(record, "zasync") == FIELDS


def test_rotation_derives_once_per_distinct_salt(derivations: list[bytes], reference: Any) -> None:
    ring = Keyring(OLD)
    written = {f"zs{i}": ring.encrypt_fields(FIELDS, f"zs{i}") for i in range(3)}
    imported = {"zx1": reference.encrypt(FIELDS, "zx1", "UNIT_TEST"),
                "zx2": reference.encrypt(FIELDS, "zx2", "UNIT_TEST")}
    derivations.clear()
    target = WriteSalt(NEW)
    rotated = bulk.reencrypt_all({**written, **imported}.items(), OLD, NEW, new_epoch=2, cache=ring.cache,
                                 write_salt=target)
    # the written salts were cached by the writes; two imported salts + one new write salt
    assert len(derivations) == 3
    assert len({rec["salt"] for rec in rotated.values()}) == 1
    for sid, rec in rotated.items():
        assert rec["kep"] == 2 and reference.decrypt(rec, sid, NEW.reveal()) == FIELDS


def test_writes_after_a_rotation_use_fresh_salts_of_the_new_key() -> None:
    ring = Keyring(OLD)
    rotated = bulk.reencrypt_all([("za", ring.encrypt_fields(FIELDS, "za"))], OLD, NEW, new_epoch=2,
                                 cache=ring.cache, write_salt=WriteSalt(NEW))
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
