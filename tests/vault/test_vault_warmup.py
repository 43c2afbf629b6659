"""The background warmer: after a restart every record's derivation is back in memory, and only
records that really open under the key in force get there."""

from __future__ import annotations

from sundial.vault.crypto import SecretKey, encrypt_fields
from sundial.vault.keyring import Keyring
from sundial.vault.warmup import RecordWarmer

KEY = SecretKey("UNIT_TEST")
OTHER = SecretKey("cd" * 32)
FIELDS = [{"name": "TOKEN", "value": "synthetic-token-7"}]


def _records(count: int, key: SecretKey = KEY) -> dict[str, dict[str, object]]:
    return {f"s{i}": encrypt_fields(FIELDS, f"s{i}", key) for i in range(count)}


def test_warmer_leaves_every_record_warm() -> None:
    records = _records(4)
    ring = Keyring(KEY)  # a fresh keyring: what a restarted conductor has
    assert not any(ring.is_warm(rec) for rec in records.values())
    warmer = RecordWarmer(ring, records.items()).start()
    warmer.join()
    assert all(ring.is_warm(rec) for rec in records.values())
    assert warmer.opened == 4


def test_records_that_do_not_open_are_skipped_and_not_cached() -> None:
    records = {**_records(2), "foreign": encrypt_fields(FIELDS, "foreign", OTHER),
               "junk": {"v": 1, "alg": "aes-256-gcm", "salt": "!!"}}
    ring = Keyring(KEY)
    warmer = RecordWarmer(ring, records.items()).start()
    warmer.join()
    assert ring.is_warm(records["s0"]) and ring.is_warm(records["s1"])
    assert not ring.is_warm(records["foreign"])
    assert len(ring.cache) == 2


def test_stopped_warmer_derives_nothing_more() -> None:
    records = _records(3)
    ring = Keyring(KEY)
    warmer = RecordWarmer(ring, records.items())
    warmer.stop()
    warmer.start().join()
    assert warmer.opened == 0 and len(ring.cache) == 0


def test_warming_stays_within_half_the_cache() -> None:
    records = _records(6)
    ring = Keyring(KEY)
    ring.cache.max_entries = 4  # warming must not evict the entries in use
    RecordWarmer(ring, records.items()).start().join()
    assert len(ring.cache) == 2
