"""The key manager: fingerprints, rotation state, decryption across keys, the integrity canary."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest

from sundial.vault.crypto import SecretKey, decrypt_fields, encrypt_fields, reencrypt_record
from sundial.vault.errors import DecryptError, VaultError
from sundial.vault.keyring import (
    CANARY_AAD,
    INTEGRITY_FAILED,
    CanaryStatus,
    Keyring,
    KeySlot,
    check_canary,
    check_canary_async,
    create_canary,
    generate_key,
    key_fingerprint,
    open_pending_key,
    parse_hex_key,
    parse_rotation_keys,
    seal_pending_key,
)

OLD_TEXT = "UNIT_TEST"
NEW_TEXT = "ab" * 32
THIRD_TEXT = "cd" * 32
FIELDS = [{"name": "TOKEN", "value": "synthetic-token-7"}]


@pytest.fixture(scope="module")
def old() -> SecretKey:
    return SecretKey(OLD_TEXT)


@pytest.fixture(scope="module")
def new() -> SecretKey:
    return SecretKey(NEW_TEXT)


def test_fingerprint_follows_its_documented_definition() -> None:
    label = b"sundial/key-fingerprint/v1"
    stretched = hashlib.scrypt(OLD_TEXT.encode(), salt=label, n=16384, r=8, p=1, dklen=32)
    expected = hashlib.sha256(label + b"\x00" + stretched).hexdigest()[:16]
    assert key_fingerprint(OLD_TEXT) == expected
    assert key_fingerprint(SecretKey(OLD_TEXT)) == expected


def test_fingerprints_tell_keys_apart(old: SecretKey, new: SecretKey) -> None:
    assert re.fullmatch(r"[0-9a-f]{16}", old.fingerprint)
    assert old.fingerprint != new.fingerprint


def test_generated_keys_are_fresh_64_hex() -> None:
    first, second = generate_key(), generate_key()
    assert re.fullmatch(r"[0-9a-f]{64}", first.reveal()) and first != second
    assert parse_hex_key(first.reveal(), "new_key") == first


@pytest.mark.parametrize("text", ["ab" * 31, "ab" * 33, "zz" * 32, 12345, ["ab" * 32], " " + "ab" * 32])
def test_rotation_keys_must_be_32_byte_hex(text: Any, no_leak: Any) -> None:
    with pytest.raises(VaultError) as caught:
        parse_hex_key(text, "old_key")
    assert caught.value.code == "api" and "32-byte hex" in caught.value.description
    if isinstance(text, str):
        no_leak(caught.value.description, text.strip(), "the error")


def test_rotation_keys_missing_or_equal() -> None:
    with pytest.raises(VaultError, match="Missing parameter: new_key"):
        parse_rotation_keys("ab" * 32, None)
    with pytest.raises(VaultError, match="must differ"):
        parse_rotation_keys("ab" * 32, "ab" * 32)
    old, new = parse_rotation_keys("ab" * 32, "cd" * 32)
    assert (old.reveal(), new.reveal()) == ("ab" * 32, "cd" * 32)


def test_keyring_encrypts_under_current_and_stamps_the_epoch(old: SecretKey) -> None:
    ring = Keyring(old, epoch=4)
    record = ring.encrypt_fields(FIELDS, "zring")
    assert record["kep"] == 4
    assert decrypt_fields(record, "zring", old) == FIELDS


def test_during_a_rotation_both_keys_open_records(old: SecretKey, new: SecretKey) -> None:
    ring = Keyring(old, epoch=1)
    before = ring.encrypt_fields(FIELDS, "za")
    slot = ring.begin_rotation(new)
    after = reencrypt_record(ring.encrypt_fields(FIELDS, "zb"), "zb", old, new, new_epoch=slot.epoch)
    assert ring.rotating and slot.epoch == 2
    assert ring.open_record(before, "za") == (FIELDS, ring.current)
    assert ring.open_record(after, "zb") == (FIELDS, slot)


def test_after_activation_old_records_still_open_until_retired(old: SecretKey, new: SecretKey) -> None:
    ring = Keyring(old)
    under_old = ring.encrypt_fields(FIELDS, "zc")
    ring.begin_rotation(new)
    ring.activate_next(previous_valid_until=None)
    assert ring.current.key == new and ring.previous is not None and ring.previous.key == old
    assert ring.encrypt_fields(FIELDS, "zd")["kep"] == 2
    assert ring.decrypt_fields(under_old, "zc") == FIELDS
    ring.retire_previous()
    with pytest.raises(DecryptError):
        ring.decrypt_fields(under_old, "zc")


def test_records_without_or_with_a_wrong_epoch_hint_still_open(old: SecretKey, new: SecretKey) -> None:
    ring = Keyring(old)
    xyops_style = encrypt_fields(FIELDS, "ze", old)  # no kep, as xyOps writes it
    lying = {**encrypt_fields(FIELDS, "zf", old), "kep": 2}
    ring.begin_rotation(new)
    ring.activate_next()
    assert ring.decrypt_fields(xyops_style, "ze") == FIELDS
    assert ring.decrypt_fields(lying, "zf") == FIELDS


def test_a_key_outside_the_ring_opens_nothing(old: SecretKey, new: SecretKey) -> None:
    ring = Keyring(old)
    stranger = encrypt_fields(FIELDS, "zg", new)
    with pytest.raises(DecryptError, match="zg"):
        ring.decrypt_fields(stranger, "zg")


def test_rotation_state_rules(old: SecretKey, new: SecretKey) -> None:
    ring = Keyring(old)
    with pytest.raises(VaultError, match="differ"):
        ring.begin_rotation(SecretKey(OLD_TEXT))
    with pytest.raises(VaultError, match="No key rotation"):
        ring.activate_next()
    ring.begin_rotation(new)
    assert ring.begin_rotation(new).epoch == 2  # idempotent for the same key
    with pytest.raises(VaultError, match="already in progress"):
        ring.begin_rotation(SecretKey(THIRD_TEXT))
    ring.abort_rotation()
    assert not ring.rotating and ring.current.key == old


def test_resuming_a_rotation_keeps_the_recorded_epoch(old: SecretKey, new: SecretKey) -> None:
    assert Keyring(old, epoch=5).begin_rotation(new, epoch=9).epoch == 9


def test_previous_key_tokens_expire(old: SecretKey, new: SecretKey) -> None:
    ring = Keyring(old)
    assert ring.token_keys(now=0) == [old]
    ring.begin_rotation(new)
    ring.activate_next(previous_valid_until=100.0)
    assert ring.token_keys(now=99.0) == [new, old]
    assert ring.token_keys(now=100.0) == [new]


async def test_async_decrypt_cold_and_warm(old: SecretKey) -> None:
    ring = Keyring(old)
    record = encrypt_fields(FIELDS, "zh", old)
    assert await ring.decrypt_fields_async(record, "zh") == FIELDS
    assert ring.cache.misses >= 1
    hits = ring.cache.hits
    assert await ring.decrypt_fields_async(record, "zh") == FIELDS
    assert ring.cache.hits == hits + 1


def test_canary_accepts_its_key(old: SecretKey) -> None:
    record = create_canary(old, epoch=3, created=1700000000)
    assert record["fingerprint"] == old.fingerprint and record["enc"]["kep"] == 3
    result = check_canary(record, old)
    assert result.ok and result.status is CanaryStatus.OK and result.epoch == 3
    assert result.rotation_error() is None


def test_canary_names_the_expected_fingerprint_for_a_wrong_key(old: SecretKey, new: SecretKey,
                                                               no_leak: Any) -> None:
    result = check_canary(create_canary(old, epoch=2), new)
    assert result.status is CanaryStatus.WRONG_KEY and not result.ok
    assert result.expected_fingerprint == old.fingerprint and result.key_fingerprint == new.fingerprint
    assert INTEGRITY_FAILED in result.message and old.fingerprint in result.message
    no_leak(result.message, OLD_TEXT, "the canary message")
    no_leak(result.message, NEW_TEXT, "the canary message")
    error = result.rotation_error()
    assert error is not None and (error.code, error.description) == ("auth", "Old master key incorrect")


def test_missing_canary(old: SecretKey) -> None:
    result = check_canary(None, old)
    assert result.status is CanaryStatus.MISSING and result.message == "Integrity canary not found"
    error = result.rotation_error()
    assert error is not None and (error.code, error.description) == ("canary", "Integrity canary not found")


@pytest.mark.parametrize("damage", [
    lambda r: "not an object",
    lambda r: {**r, "v": 2},
    lambda r: {**r, "epoch": 0},
    lambda r: {**r, "epoch": True},
    lambda r: {**r, "enc": {**r["enc"], "iv": "short"}},
    lambda r: {k: v for k, v in r.items() if k != "enc"},
])
def test_damaged_canary_is_not_mistaken_for_a_wrong_key(old: SecretKey, damage: Any) -> None:
    result = check_canary(damage(create_canary(old, epoch=1)), old)
    assert result.status is CanaryStatus.MALFORMED and INTEGRITY_FAILED in result.message
    assert result.rotation_error() is not None


def test_canary_with_foreign_content_is_refused(old: SecretKey) -> None:
    enc = encrypt_fields([{"name": "X", "value": "y"}], CANARY_AAD, old)
    forged = {"v": 1, "epoch": 1, "created": 0, "fingerprint": old.fingerprint, "enc": enc}
    assert check_canary(forged, old).status is CanaryStatus.MALFORMED


def test_a_secret_record_cannot_stand_in_for_the_canary(old: SecretKey) -> None:
    canary = create_canary(old, epoch=1)
    swapped = {**canary, "enc": encrypt_fields(FIELDS, "zsecret", old)}
    assert check_canary(swapped, old).status is CanaryStatus.WRONG_KEY


async def test_canary_check_off_the_loop(old: SecretKey) -> None:
    assert (await check_canary_async(create_canary(old, epoch=1), old)).ok


def test_pending_marker_returns_the_next_key_only_to_the_old_key(old: SecretKey, new: SecretKey,
                                                                 no_leak: Any) -> None:
    marker = seal_pending_key(KeySlot(new, 7), old)
    no_leak(repr(marker), NEW_TEXT, "the stored marker")
    recovered = open_pending_key(marker, old)
    assert recovered.key == new and recovered.epoch == 7
    with pytest.raises(DecryptError):
        open_pending_key(marker, new)
    with pytest.raises(DecryptError):
        open_pending_key({**marker, "v": 9}, old)
