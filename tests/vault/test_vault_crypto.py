"""The secret record format, checked against vectors made outside this module."""

from __future__ import annotations

import base64
import json
import pickle
import shutil
import subprocess
from typing import Any

import pytest

from sundial.vault import crypto
from sundial.vault.crypto import (
    DerivedKeyCache,
    FreshKeyPool,
    SealedBlob,
    SecretKey,
    decrypt_fields,
    decrypt_fields_async,
    encode_fields,
    encrypt_fields,
    encrypt_fields_async,
    reencrypt_record,
)
from sundial.vault.errors import DecryptError, VaultError

KEY = "UNIT_TEST"
OTHER_KEY = "0f" * 32

# Made with Node's crypto module (scryptSync + createCipheriv("aes-256-gcm") + setAAD, and
# JSON.stringify for the plaintext), the primitives xyOps uses, with a pinned salt and IV.
NODE_SALT = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
NODE_IV = bytes.fromhex("a0a1a2a3a4a5a6a7a8a9aaab")
NODE_ID = "zvector1"
NODE_FIELDS = [{"name": "API_TOKEN", "value": "tok-Ünïcødé-✓"},
               {"name": "MULTI", "value": 'line1\nline2\t"q"\\'}]
NODE_RECORD = {
    "v": 1, "alg": "aes-256-gcm", "salt": "AAECAwQFBgcICQoLDA0ODw==", "iv": "oKGio6Slpqeoqaqr",
    "tag": "9xQmmZd0MrKuzr7Z9DKC0A==",
    "ct": "552e3ryrroDqjvQ620M2ujEgMW7Ra0IPe5rckcvqkcw9EWOomknA5nQxi6CwtUYrH7H8dUVAkyS/pbwvaXTcX"
          "Xg+o2L6Pw+3f04XJlpzPYJQnzMNFReQK2hn6u/a2nj/ApWivlM=",
}
NODE_PLAINTEXT_HEX = (
    "5b7b226e616d65223a224150495f544f4b454e222c2276616c7565223a22746f6b2dc39c6ec3af63c3b864c3a92de29c93"
    "227d2c7b226e616d65223a224d554c5449222c2276616c7565223a226c696e65315c6e6c696e65325c745c22715c225c5c227d5d"
)
FIELDS = [{"name": "DB_PASSWORD", "value": "synthetic-pw-1"}]


@pytest.fixture(scope="module")
def key() -> SecretKey:
    return SecretKey(KEY)


@pytest.fixture(scope="module")
def other_key() -> SecretKey:
    return SecretKey(OTHER_KEY)


@pytest.fixture
def count_derivations(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Records the salt of every scrypt call the module makes."""
    calls: list[bytes] = []
    real = crypto.derive_key

    def counting(passphrase: bytes, salt: bytes) -> bytes:
        calls.append(salt)
        return real(passphrase, salt)

    monkeypatch.setattr(crypto, "derive_key", counting)
    return calls


def test_decrypts_a_record_written_by_node(key: SecretKey) -> None:
    assert decrypt_fields(NODE_RECORD, NODE_ID, key) == NODE_FIELDS


def test_plaintext_is_written_like_json_stringify() -> None:
    assert encode_fields(NODE_FIELDS) == bytes.fromhex(NODE_PLAINTEXT_HEX)


def test_pinned_salt_and_iv_reproduce_the_node_record_byte_for_byte(key: SecretKey,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    pinned = {16: NODE_SALT, 12: NODE_IV}
    monkeypatch.setattr(crypto, "_random_bytes", lambda count: pinned[count])
    record = encrypt_fields(NODE_FIELDS, NODE_ID, key)
    assert json.dumps(record, separators=(",", ":")) == json.dumps(NODE_RECORD, separators=(",", ":"))


def test_reference_decrypts_what_the_module_writes(key: SecretKey, reference: Any) -> None:
    record = encrypt_fields(NODE_FIELDS, "zabc", key)
    assert reference.decrypt(record, "zabc", KEY) == NODE_FIELDS


def test_module_decrypts_what_the_reference_writes(key: SecretKey, reference: Any) -> None:
    record = reference.encrypt(FIELDS, "z_ref_1", KEY)
    assert decrypt_fields(record, "z_ref_1", key) == FIELDS


def test_record_shape_is_exactly_the_spec(key: SecretKey) -> None:
    record = encrypt_fields(FIELDS, "zshape", key)
    assert list(record) == ["v", "alg", "salt", "iv", "tag", "ct"]
    assert record["v"] == 1 and record["alg"] == "aes-256-gcm"
    sizes = {name: len(base64.b64decode(record[name], validate=True)) for name in ("salt", "iv", "tag")}
    assert sizes == {"salt": 16, "iv": 12, "tag": 16}
    assert len(base64.b64decode(record["ct"])) == len(encode_fields(FIELDS))


def test_epoch_is_an_extra_field_other_readers_ignore(key: SecretKey, reference: Any) -> None:
    record = encrypt_fields(FIELDS, "zkep", key, epoch=3)
    assert record["kep"] == 3
    assert reference.decrypt(record, "zkep", KEY) == FIELDS
    assert SealedBlob.from_record(record).epoch == 3


def test_every_write_draws_a_new_salt_and_iv(key: SecretKey) -> None:
    first, second = (encrypt_fields(FIELDS, "zsame", key) for _ in range(2))
    assert first["salt"] != second["salt"] and first["iv"] != second["iv"]
    assert first["ct"] != second["ct"]


def test_record_moved_to_another_id_does_not_decrypt(key: SecretKey) -> None:
    record = encrypt_fields(FIELDS, "zoriginal", key)
    with pytest.raises(DecryptError) as caught:
        decrypt_fields(record, "zimpostor", key)
    assert caught.value.code == "secret"


def test_wrong_key_fails_and_the_error_carries_no_value_or_key(key: SecretKey, other_key: SecretKey,
                                                               no_leak: Any) -> None:
    record = encrypt_fields(FIELDS, "zwrong", key)
    with pytest.raises(DecryptError) as caught:
        decrypt_fields(record, "zwrong", other_key)
    for text in (str(caught.value), repr(caught.value)):
        no_leak(text, FIELDS[0]["value"], "the error")
        no_leak(text, OTHER_KEY, "the error")
        no_leak(text, KEY, "the error")


def _flip(record: dict[str, Any], name: str) -> dict[str, Any]:
    raw = bytearray(base64.b64decode(record[name]))
    raw[0] ^= 0x01
    return {**record, name: base64.b64encode(bytes(raw)).decode()}


@pytest.mark.parametrize("name", ["salt", "iv", "tag", "ct"])
def test_any_flipped_bit_is_detected(key: SecretKey, name: str) -> None:
    record = encrypt_fields(FIELDS, "ztamper", key)
    with pytest.raises(DecryptError):
        decrypt_fields(_flip(record, name), "ztamper", key)


@pytest.mark.parametrize("change", [
    {"v": 2}, {"v": None}, {"v": True}, {"v": "1"}, {"alg": "aes-128-gcm"}, {"alg": None},
    {"salt": base64.b64encode(b"x" * 8).decode()}, {"iv": base64.b64encode(b"x" * 16).decode()},
    {"tag": base64.b64encode(b"x" * 12).decode()}, {"ct": "not base64!"}, {"ct": None},
    {"salt": "AAECAwQFBgcICQoLDA0ODw"}, {"iv": "oKGio6Slpqeo-aqr"},
])
def test_malformed_records_are_refused_before_any_derivation(change: dict[str, Any], key: SecretKey,
                                                            count_derivations: list[bytes]) -> None:
    with pytest.raises(DecryptError) as caught:
        decrypt_fields({**NODE_RECORD, **change}, NODE_ID, key)
    assert caught.value.code == "secret" and count_derivations == []


@pytest.mark.parametrize("record", [None, [], "text", 1])
def test_non_objects_are_refused(record: object, key: SecretKey) -> None:
    with pytest.raises(DecryptError):
        decrypt_fields(record, NODE_ID, key)


def test_cipher_name_is_case_insensitive_like_node(key: SecretKey) -> None:
    assert decrypt_fields({**NODE_RECORD, "alg": "AES-256-GCM"}, NODE_ID, key) == NODE_FIELDS


def test_decrypted_content_must_be_a_fields_array(key: SecretKey, reference: Any) -> None:
    record = reference.encrypt({"not": "a list"}, "zshape2", KEY)
    with pytest.raises(DecryptError):
        decrypt_fields(record, "zshape2", key)


def test_cache_makes_the_second_open_free(key: SecretKey, count_derivations: list[bytes]) -> None:
    cache = DerivedKeyCache()
    record = encrypt_fields(FIELDS, "zcache", key)
    count_derivations.clear()
    assert decrypt_fields(record, "zcache", key, cache=cache) == FIELDS
    assert decrypt_fields(record, "zcache", key, cache=cache) == FIELDS
    assert len(count_derivations) == 1 and (cache.hits, cache.misses) == (1, 1)


def test_encrypting_warms_the_cache_for_the_next_open(key: SecretKey, count_derivations: list[bytes]) -> None:
    cache = DerivedKeyCache()
    record = encrypt_fields(FIELDS, "zwarm", key, cache=cache)
    assert decrypt_fields(record, "zwarm", key, cache=cache) == FIELDS
    assert len(count_derivations) == 1


def test_cache_never_serves_another_key_nor_learns_from_failures(key: SecretKey,
                                                                  other_key: SecretKey) -> None:
    cache = DerivedKeyCache()
    record = encrypt_fields(FIELDS, "zcross", key, cache=cache)
    with pytest.raises(DecryptError):
        decrypt_fields(record, "zcross", other_key, cache=cache)
    assert len(cache) == 1
    assert cache.get(other_key, SealedBlob.from_record(record).salt) is None


def test_cache_is_bounded_and_forgets_retired_keys(key: SecretKey, other_key: SecretKey) -> None:
    cache = DerivedKeyCache(max_entries=2)
    for salt in (b"a" * 16, b"b" * 16, b"c" * 16):
        cache.put(key, salt, b"k" * 32)
    assert len(cache) == 2 and cache.get(key, b"a" * 16) is None
    cache.put(other_key, b"d" * 16, b"k" * 32)
    assert cache.forget_key(key) == 1
    assert cache.get(other_key, b"d" * 16) == b"k" * 32


def test_pool_hands_out_each_salt_once(key: SecretKey, count_derivations: list[bytes]) -> None:
    pool = FreshKeyPool(key, target=2)
    assert pool.refill() == 2 and pool.refill() == 0
    salts = {encrypt_fields(FIELDS, "zpool", key, pool=pool)["salt"] for _ in range(2)}
    assert len(salts) == 2 and len(pool) == 0
    assert len(count_derivations) == 2  # the two refills; the writes themselves derived nothing
    encrypt_fields(FIELDS, "zpool", key, pool=pool)
    assert len(count_derivations) == 3  # empty pool: falls back to deriving inline


def test_pool_fills_a_reserve_beyond_its_start_target(key: SecretKey, count_derivations: list[bytes]) -> None:
    pool = FreshKeyPool(key, target=1)
    assert pool.refill() == 1 and pool.refill(upto=3) == 2 and len(pool) == 3
    salts = {encrypt_fields(FIELDS, "zres", key, pool=pool)["salt"] for _ in range(3)}
    assert len(salts) == 3 and len(count_derivations) == 3  # every write used a reserved salt, once


def test_pool_of_another_key_is_ignored(key: SecretKey, other_key: SecretKey) -> None:
    pool = FreshKeyPool(other_key, target=1)
    pool.refill()
    record = encrypt_fields(FIELDS, "zpool2", key, pool=pool)
    assert len(pool) == 1
    assert decrypt_fields(record, "zpool2", key) == FIELDS


async def test_async_wrappers_round_trip(key: SecretKey) -> None:
    cache = DerivedKeyCache()
    record = await encrypt_fields_async(FIELDS, "zasync", key, cache=cache)
    assert await decrypt_fields_async(record, "zasync", key, cache=cache) == FIELDS
    assert await decrypt_fields_async(NODE_RECORD, NODE_ID, key) == NODE_FIELDS


def test_reencryption_moves_plaintext_to_the_new_key(key: SecretKey, other_key: SecretKey,
                                                      reference: Any) -> None:
    record = reference.encrypt(FIELDS, "zrot", KEY)
    rotated = reencrypt_record(record, "zrot", key, other_key, new_epoch=2)
    assert reference.decrypt(rotated, "zrot", OTHER_KEY) == FIELDS
    assert rotated["salt"] != record["salt"] and rotated["kep"] == 2
    with pytest.raises(DecryptError):
        decrypt_fields(rotated, "zrot", key)


def test_reencryption_reuses_a_known_old_derivation(key: SecretKey, other_key: SecretKey, reference: Any,
                                                    count_derivations: list[bytes]) -> None:
    salt = b"s" * 16
    record = reference.encrypt(FIELDS, "zrot2", KEY, salt=salt)
    reencrypt_record(record, "zrot2", key, other_key, old_derived=reference.derive(KEY, salt))
    assert len(count_derivations) == 1 and count_derivations[0] != salt


def test_secret_key_hides_itself(key: SecretKey, no_leak: Any) -> None:
    no_leak(repr(key) + str(key) + f"{key!r}", KEY, "the key's repr")
    with pytest.raises(TypeError):
        pickle.dumps(key)
    assert key != SecretKey(OTHER_KEY) and key == SecretKey(KEY)


@pytest.mark.parametrize("text", ["", None, 42, "\ud800"])
def test_secret_key_must_be_text(text: Any) -> None:
    with pytest.raises(VaultError) as caught:
        SecretKey(text)
    assert caught.value.code == "api"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_node_decrypts_what_the_module_writes(key: SecretKey) -> None:
    record = encrypt_fields(NODE_FIELDS, "znode", key)
    script = """
const c = require('crypto'); const [rec, id, key] = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const b = (s) => Buffer.from(s, 'base64');
const dk = c.scryptSync(Buffer.from(key), b(rec.salt), 32, {N: 16384, r: 8, p: 1});
const d = c.createDecipheriv(rec.alg, dk, b(rec.iv)); d.setAAD(Buffer.from(id)); d.setAuthTag(b(rec.tag));
process.stdout.write(Buffer.concat([d.update(b(rec.ct)), d.final()]).toString('utf8'));
"""
    done = subprocess.run(["node", "-e", script], input=json.dumps([record, "znode", KEY]),
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, "node refused the record"
    assert json.loads(done.stdout) == NODE_FIELDS
