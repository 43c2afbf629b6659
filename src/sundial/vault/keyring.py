"""The one key manager (DESIGN.md): current key, the next one during a rotation, the previous one after.

Both rotation models share it. Orchestrated rotation (xyOps `admin_rotate_secret_key`) and the
direct API (`/api/maintenance/rotate-key`) call `begin_rotation`, re-encrypt, commit, then
`activate_next`; because decryption tries every key the ring holds, a crash at any step leaves
every record readable. Keys are strings used as scrypt passphrases (xyOps style); ServOS-style
64-hex keys are just such strings and are never hex-decoded.

The integrity canary proves which key sealed the store, so a conductor with the wrong key
refuses to start instead of writing records nobody can read.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from sundial.vault.crypto import (
    DerivedKeyCache,
    Fields,
    FreshKeyPool,
    SealedBlob,
    SecretKey,
    decode_fields,
    encrypt_fields,
    seal,
    unseal,
)
from sundial.vault.errors import DecryptError, VaultError

KEY_HEX_CHARS = 64
CANARY_VERSION = 1
CANARY_PLAINTEXT = "sundial-key-canary-v1"
CANARY_AAD = "key_canary"
PENDING_VERSION = 1
PENDING_AAD = "key_rotation_pending"
INTEGRITY_FAILED = "MASTER KEY INTEGRITY CHECK FAILED"
# Fresh write salts derived ahead (~60 ms of scrypt each, in a thread): enough for a burst of
# saves from the UI without a derivation on the request path, little idle work at start-up.
WRITE_POOL_TARGET = 4

_HEX_KEY = re.compile(r"[0-9a-fA-F]{64}")


def key_fingerprint(key: SecretKey | str) -> str:
    """16 hex chars naming a key in logs and errors without revealing it.

    Definition (also in `crypto.compute_fingerprint`): the first 16 hex chars of
    SHA-256("sundial/key-fingerprint/v1" || 0x00 || scrypt(UTF-8(key), salt="sundial/key-fingerprint/v1",
    N=16384, r=8, p=1, dkLen=32)). Stretched so a weak passphrase is no easier to guess from a
    fingerprint than from the canary itself.
    """
    return (key if isinstance(key, SecretKey) else SecretKey(key)).fingerprint


def generate_key() -> SecretKey:
    """32 CSPRNG bytes as 64 lowercase hex chars: usable by both rotation models.

    os.urandom rather than the `secrets` module: bench/secrets.py shares that module's name.
    """
    return SecretKey(os.urandom(KEY_HEX_CHARS // 2).hex())


def parse_hex_key(text: object, name: str) -> SecretKey:
    """A model-B key parameter; the message never echoes what was sent."""
    if text is None or text == "":
        raise VaultError("api", f"Missing parameter: {name}")
    if not isinstance(text, str) or not _HEX_KEY.fullmatch(text):
        raise VaultError("api", f"{name} must be 32-byte hex (exactly {KEY_HEX_CHARS} hex characters)")
    return SecretKey(text)


def parse_rotation_keys(old_text: object, new_text: object) -> tuple[SecretKey, SecretKey]:
    """Format checks of `/api/maintenance/rotate-key`, run before any key comparison (spec 4.2)."""
    old, new = parse_hex_key(old_text, "old_key"), parse_hex_key(new_text, "new_key")
    if old == new:
        raise VaultError("api", "new_key must differ from old_key")
    return old, new


@dataclass(frozen=True)
class KeySlot:
    """A key and the epoch it belongs to (epoch 1 on first start, +1 per rotation)."""

    key: SecretKey
    epoch: int

    @property
    def fingerprint(self) -> str:
        return self.key.fingerprint


@dataclass(frozen=True)
class _RingState:
    current: KeySlot
    next: KeySlot | None = None
    previous: KeySlot | None = None
    previous_valid_until: float | None = None


class Keyring:
    """Holds the keys; state changes are single assignments so readers always see a whole ring.

    Every write gets a salt of its own (secrets-and-webhooks.md §2: "every create/update that
    includes fields produces a new salt and IV"). Its scrypt is taken from `pool`, derived ahead
    of time by `refill()` in a thread, so a write is one AES-GCM call while the pool has pairs.
    """

    def __init__(self, current: SecretKey, *, epoch: int = 1, cache: DerivedKeyCache | None = None) -> None:
        self._state = _RingState(current=KeySlot(current, epoch))
        self.cache = cache if cache is not None else DerivedKeyCache()
        self.pool = FreshKeyPool(current, target=WRITE_POOL_TARGET)

    @property
    def current(self) -> KeySlot:
        return self._state.current

    @property
    def next(self) -> KeySlot | None:
        return self._state.next

    @property
    def previous(self) -> KeySlot | None:
        return self._state.previous

    @property
    def previous_valid_until(self) -> float | None:
        return self._state.previous_valid_until

    @property
    def rotating(self) -> bool:
        return self._state.next is not None

    def candidates(self, hint: int | None = None) -> list[KeySlot]:
        """Keys to try, the one whose epoch the record names first, then current, next, previous."""
        state = self._state
        ordered = [state.current, state.next, state.previous]
        slots = [slot for slot in ordered if slot is not None]
        slots.sort(key=lambda slot: slot.epoch != hint)
        return slots

    def begin_rotation(self, new_key: SecretKey, *, epoch: int | None = None) -> KeySlot:
        """Add the next key; `epoch` is given when resuming from a pending-rotation marker."""
        state = self._state
        if new_key == state.current.key:
            raise VaultError("api", "The new key must differ from the current key")
        if state.next is not None and state.next.key != new_key:
            raise VaultError("admin", "A key rotation is already in progress")
        slot = KeySlot(new_key, epoch if epoch is not None else state.current.epoch + 1)
        self._state = replace(state, next=slot)
        return slot

    def abort_rotation(self) -> None:
        """Forget the next key after a rolled-back rotation; nothing was sealed with it."""
        state = self._state
        if state.next is not None:
            self._state = replace(state, next=None)
            self.cache.forget_key(state.next.key)

    def activate_next(self, *, previous_valid_until: float | None = None) -> KeySlot:
        """Switch to the next key; the old one stays for decryption and token checks."""
        state = self._state
        if state.next is None:
            raise VaultError("admin", "No key rotation is in progress")
        dropped = state.previous
        self._state = _RingState(current=state.next, previous=state.current,
                                 previous_valid_until=previous_valid_until)
        self.pool = FreshKeyPool(state.next.key, target=WRITE_POOL_TARGET)
        if dropped is not None and dropped.key != state.next.key:
            self.cache.forget_key(dropped.key)
        return state.next

    def retire_previous(self) -> None:
        """End of the grace window: the old key opens nothing any more."""
        state = self._state
        if state.previous is not None:
            self._state = replace(state, previous=None, previous_valid_until=None)
            self.cache.forget_key(state.previous.key)

    def token_keys(self, now: float | None = None) -> list[SecretKey]:
        """Keys whose derived tokens (agent, peer, links) are accepted at `now`."""
        state = self._state
        keys = [state.current.key]
        until = state.previous_valid_until
        now = time.time() if now is None else now
        if state.previous is not None and (until is None or now < until):
            keys.append(state.previous.key)
        return keys

    def encrypt_fields(self, fields: Sequence[Mapping[str, Any]], secret_id: str) -> dict[str, Any]:
        """Always under the current key, stamped with its epoch."""
        current = self._state.current
        pool = self.pool if self.pool.key == current.key else None
        return encrypt_fields(fields, secret_id, current.key, epoch=current.epoch, cache=self.cache,
                              pool=pool)

    def open_record(self, record: object, secret_id: str) -> tuple[Fields, KeySlot]:
        """Decrypt with whichever held key works, and say which (rotation needs to know)."""
        blob = SealedBlob.from_record(record)
        aad = secret_id.encode("utf-8")
        for slot in self.candidates(blob.epoch):
            try:
                plaintext = unseal(blob, slot.key, aad, cache=self.cache, label=secret_id)
            except DecryptError:
                continue
            return decode_fields(plaintext, secret_id), slot
        raise DecryptError(f"Failed to decrypt secret: {secret_id}")

    def decrypt_fields(self, record: object, secret_id: str) -> Fields:
        return self.open_record(record, secret_id)[0]

    def is_warm(self, record: object) -> bool:
        """True when the first key to be tried has this record's derivation cached."""
        blob = SealedBlob.from_record(record)
        return self.cache.has(self.candidates(blob.epoch)[0].key, blob.salt)

    async def encrypt_fields_async(self, fields: Sequence[Mapping[str, Any]],
                                   secret_id: str) -> dict[str, Any]:
        """Inline when a fresh salt is already derived (one AES call); in a thread when scrypt is due."""
        if len(self.pool) and self.pool.key == self._state.current.key:
            return self.encrypt_fields(fields, secret_id)
        return await asyncio.to_thread(self.encrypt_fields, fields, secret_id)

    def refill(self, upto: int | None = None) -> int:
        """Derive fresh write salts up to `upto` (default: the pool's target); blocking, call it in a thread."""
        return self.pool.refill(upto)

    async def open_record_async(self, record: object, secret_id: str) -> tuple[Fields, KeySlot]:
        """Warm records are opened inline (microseconds); cold ones in a thread (scrypt)."""
        if self.is_warm(record):
            return self.open_record(record, secret_id)
        return await asyncio.to_thread(self.open_record, record, secret_id)

    async def decrypt_fields_async(self, record: object, secret_id: str) -> Fields:
        return (await self.open_record_async(record, secret_id))[0]


class CanaryStatus(StrEnum):
    OK = "ok"
    MISSING = "missing"
    WRONG_KEY = "wrong_key"
    MALFORMED = "malformed"


@dataclass(frozen=True)
class CanaryCheck:
    """Outcome of checking one key against the stored canary, with log-safe fingerprints."""

    status: CanaryStatus
    key_fingerprint: str
    expected_fingerprint: str | None = None
    epoch: int | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status is CanaryStatus.OK

    @property
    def message(self) -> str:
        if self.status is CanaryStatus.OK:
            return f"Secret key verified (fingerprint {self.key_fingerprint}, epoch {self.epoch})"
        if self.status is CanaryStatus.MISSING:
            return "Integrity canary not found"
        if self.status is CanaryStatus.MALFORMED:
            return f"{INTEGRITY_FAILED}: the integrity canary record is damaged ({self.detail})"
        return (f"{INTEGRITY_FAILED}: the configured secret key (fingerprint {self.key_fingerprint}) "
                f"does not open the integrity canary; the store expects the key with fingerprint "
                f"{self.expected_fingerprint or 'unknown'} (epoch {self.epoch})")

    def rotation_error(self) -> VaultError | None:
        """The fixed ServOS errors of `/api/maintenance/rotate-key` for a candidate old key."""
        if self.status is CanaryStatus.MISSING:
            return VaultError("canary", "Integrity canary not found")
        if self.status is CanaryStatus.WRONG_KEY:
            return VaultError("auth", "Old master key incorrect")
        if self.status is CanaryStatus.MALFORMED:
            return VaultError("canary", "Integrity canary is damaged")
        return None


def _canary_plaintext() -> bytes:
    return json.dumps(CANARY_PLAINTEXT).encode("utf-8")


def create_canary(key: SecretKey, *, epoch: int, created: int | None = None) -> dict[str, Any]:
    """The `global/key_canary` record for a key at an epoch (first start, or inside a rotation)."""
    blob = seal(_canary_plaintext(), key, CANARY_AAD.encode("utf-8"), epoch=epoch)
    return {"v": CANARY_VERSION, "epoch": epoch, "created": int(time.time()) if created is None else created,
            "fingerprint": key.fingerprint, "enc": blob.to_record()}


def _canary_shape(record: Mapping[str, Any]) -> str:
    if record.get("v") != CANARY_VERSION:
        return "unsupported version"
    epoch = record.get("epoch")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
        return "bad epoch"
    return ""


def check_canary(record: object, key: SecretKey, cache: DerivedKeyCache | None = None) -> CanaryCheck:
    """Does `key` open the canary? Decryption is the proof; the stored fingerprint only names.

    `cache` (the keyring's) makes repeated checks of the key in force cost no scrypt.
    """
    fingerprint = key.fingerprint
    if record is None:
        return CanaryCheck(CanaryStatus.MISSING, fingerprint)
    if not isinstance(record, Mapping):
        return CanaryCheck(CanaryStatus.MALFORMED, fingerprint, detail="not an object")
    expected = record.get("fingerprint") if isinstance(record.get("fingerprint"), str) else None
    problem = _canary_shape(record)
    if problem:
        return CanaryCheck(CanaryStatus.MALFORMED, fingerprint, expected, detail=problem)
    epoch = record["epoch"]
    try:
        blob = SealedBlob.from_record(record.get("enc"))
    except DecryptError as exc:
        return CanaryCheck(CanaryStatus.MALFORMED, fingerprint, expected, epoch, exc.description)
    try:
        plaintext = unseal(blob, key, CANARY_AAD.encode("utf-8"), cache=cache, label=CANARY_AAD)
    except DecryptError:
        return CanaryCheck(CanaryStatus.WRONG_KEY, fingerprint, expected, epoch)
    if plaintext != _canary_plaintext():
        return CanaryCheck(CanaryStatus.MALFORMED, fingerprint, expected, epoch, "unexpected content")
    return CanaryCheck(CanaryStatus.OK, fingerprint, expected, epoch)


async def check_canary_async(record: object, key: SecretKey, cache: DerivedKeyCache | None = None) -> CanaryCheck:
    return await asyncio.to_thread(check_canary, record, key, cache)


async def create_canary_async(key: SecretKey, *, epoch: int, created: int | None = None) -> dict[str, Any]:
    return await asyncio.to_thread(create_canary, key, epoch=epoch, created=created)


def seal_pending_key(new: KeySlot, old: SecretKey, *, created: int | None = None) -> dict[str, Any]:
    """Pending-rotation marker: the next key sealed under the old one (spec 5.4 crash recovery)."""
    plaintext = json.dumps({"key": new.key.reveal()}).encode("utf-8")
    blob = seal(plaintext, old, PENDING_AAD.encode("utf-8"))
    return {"v": PENDING_VERSION, "epoch": new.epoch, "fingerprint": new.fingerprint,
            "created": int(time.time()) if created is None else created, "enc": blob.to_record()}


def open_pending_key(marker: object, old: SecretKey) -> KeySlot:
    """Recover the next key from a marker; DecryptError if `old` is not the key that sealed it."""
    if not isinstance(marker, Mapping) or marker.get("v") != PENDING_VERSION:
        raise DecryptError("Malformed key rotation marker")
    epoch = marker.get("epoch")
    if not isinstance(epoch, int) or isinstance(epoch, bool):
        raise DecryptError("Malformed key rotation marker")
    plaintext = unseal(SealedBlob.from_record(marker.get("enc")), old, PENDING_AAD.encode("utf-8"),
                       label=PENDING_AAD)
    try:
        text = json.loads(plaintext)["key"]
    except (ValueError, KeyError, TypeError):
        raise DecryptError("Malformed key rotation marker") from None
    return KeySlot(SecretKey(text), epoch)
