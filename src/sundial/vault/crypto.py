"""The xyOps secret record format: AES-256-GCM under a per-record scrypt-derived key.

A stored record (storage key `secrets/<id>`) is the JSON object

    {"v": 1, "alg": "aes-256-gcm", "salt": b64, "iv": b64, "tag": b64, "ct": b64[, "kep": int]}

with `key = scrypt(UTF-8(secret_key), salt, N=16384, r=8, p=1, dkLen=32)`, a 16-byte salt and a
12-byte IV drawn fresh for every write, AAD = UTF-8(secret id) and a 16-byte tag. `b64` is the
standard alphabet with padding. The plaintext of a secret is the compact JSON of its fields
array, written like JavaScript's `JSON.stringify` so xyOps and Sundial read each other's records.
`kep` (key epoch) is a Sundial addition that xyOps ignores: a hint for which key to try first.

Speed: one scrypt derivation costs ~25-60 ms of CPU and needs 16 MiB, and the format forces
one per salt. Two things are safe to keep in memory (never on disk): the derived key of an
existing record, keyed by (key identity, salt), and derivations of fresh salts made ahead of
time (`FreshKeyPool`), each handed out once. Every write, a key rotation's included, gets its
own salt and IV (spec §2); a rotation derives its new salts side by side (see `bulk`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import os
import threading
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from sundial.vault.errors import DecryptError, VaultError

BLOB_VERSION = 1
CIPHER_NAME = "aes-256-gcm"
SALT_BYTES = 16
IV_BYTES = 12
TAG_BYTES = 16
DERIVED_KEY_BYTES = 32
SCRYPT_N = 16384
SCRYPT_R = 8
SCRYPT_P = 1
EPOCH_FIELD = "kep"

# Domain labels. The fingerprint salt is 26 bytes, so it can never equal a record salt (16 bytes).
FINGERPRINT_SALT = b"sundial/key-fingerprint/v1"
FINGERPRINT_HEX_CHARS = 16
_CACHE_ID_LABEL = b"sundial/derived-key-cache/v1\x00"

Fields = list[dict[str, Any]]


def _random_bytes(count: int) -> bytes:
    """Indirection so tests can pin salt and IV to reproduce a known vector."""
    return os.urandom(count)


def fresh_salt() -> bytes:
    """A new random record salt (never reused: 16 random bytes)."""
    return _random_bytes(SALT_BYTES)


def derive_key(passphrase: bytes, salt: bytes) -> bytes:
    """scrypt with the xyOps parameters; releases the GIL, so threads run it in parallel."""
    kdf = Scrypt(salt=salt, length=DERIVED_KEY_BYTES, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return kdf.derive(passphrase)


class SecretKey:
    """The cluster secret key, used as a passphrase exactly as configured (never hex-decoded).

    Wrapping the string keeps it out of reprs, tracebacks and log formatting by accident.
    """

    __slots__ = ("_text", "_cache_id", "_fingerprint")

    def __init__(self, text: str) -> None:
        if not isinstance(text, str) or not text:
            raise VaultError("api", "The secret key must be a non-empty string")
        try:
            passphrase = text.encode("utf-8")
        except UnicodeEncodeError:
            raise VaultError("api", "The secret key is not valid Unicode text") from None
        self._text = text
        self._cache_id = hashlib.sha256(_CACHE_ID_LABEL + passphrase).digest()
        self._fingerprint: str | None = None

    def passphrase(self) -> bytes:
        return self._text.encode("utf-8")

    def reveal(self) -> str:
        """The key text, for the few places that must write it (overrides.json, pending marker)."""
        return self._text

    @property
    def cache_id(self) -> bytes:
        """In-memory identity for cache lookups; full-length so two keys never share entries."""
        return self._cache_id

    @property
    def fingerprint(self) -> str:
        """See `compute_fingerprint`; memoised because it costs one scrypt derivation."""
        if self._fingerprint is None:
            self._fingerprint = compute_fingerprint(self.passphrase())
        return self._fingerprint

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretKey):
            return NotImplemented
        return self._cache_id == other._cache_id

    def __hash__(self) -> int:
        return hash(self._cache_id)

    def __repr__(self) -> str:
        return "SecretKey(<hidden>)"

    def __reduce__(self) -> tuple[Any, ...]:
        # Nothing needs to pickle the key (rotation derives on threads), and a pickle may end
        # up on disk (a cache, a crash dump of a queue): refuse rather than leak.
        raise TypeError("SecretKey cannot be pickled")


def compute_fingerprint(passphrase: bytes) -> str:
    """Public, log-safe identity of a key.

    Definition: the first 16 hex chars of SHA-256(FINGERPRINT_SALT || 0x00 || scrypt(passphrase,
    FINGERPRINT_SALT, N=16384, r=8, p=1, 32)). The scrypt step is there because operators may
    use short passphrases: a plain hash printed in logs would let anyone test guesses billions
    of times faster than against the canary or a secret record.
    """
    stretched = derive_key(passphrase, FINGERPRINT_SALT)
    digest = hashlib.sha256(FINGERPRINT_SALT + b"\x00" + stretched).hexdigest()
    return digest[:FINGERPRINT_HEX_CHARS]


class DerivedKeyCache:
    """LRU of scrypt outputs by (key identity, record salt), in memory only.

    Why: job delivery and `decrypt_secret` open the same records again and again; without
    this every open costs a full scrypt. Entries are added only after a record's tag
    verified, so junk records cannot fill it with useless derivations.
    """

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[bytes, bytes], bytes] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: SecretKey, salt: bytes) -> bytes | None:
        with self._lock:
            derived = self._entries.get((key.cache_id, salt))
            if derived is None:
                self.misses += 1
                return None
            self._entries.move_to_end((key.cache_id, salt))
            self.hits += 1
            return derived

    def has(self, key: SecretKey, salt: bytes) -> bool:
        """Membership without touching hit/miss counters or LRU order."""
        with self._lock:
            return (key.cache_id, salt) in self._entries

    def put(self, key: SecretKey, salt: bytes, derived: bytes) -> None:
        with self._lock:
            self._entries[(key.cache_id, salt)] = derived
            self._entries.move_to_end((key.cache_id, salt))
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def forget_key(self, key: SecretKey) -> int:
        """Drop every entry of a retired key; returns how many were dropped."""
        with self._lock:
            doomed = [entry for entry in self._entries if entry[0] == key.cache_id]
            for entry in doomed:
                del self._entries[entry]
            return len(doomed)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class FreshKeyPool:
    """Derivations for brand-new random salts, made ahead of time for one key.

    Why: the format needs a new salt on every write, so each create/update pays a full
    scrypt. Deriving while idle takes that off the request path; every salt is handed out
    exactly once, so no two records ever share a salt.
    """

    def __init__(self, key: SecretKey, target: int = 16) -> None:
        self.key = key
        self.target = target
        self._ready: deque[tuple[bytes, bytes]] = deque()
        self._lock = threading.Lock()

    def take(self) -> tuple[bytes, bytes] | None:
        """A (salt, derived key) pair nobody else will get, or None when the pool is empty."""
        with self._lock:
            return self._ready.popleft() if self._ready else None

    def refill(self, upto: int | None = None) -> int:
        """Derive until the pool holds `upto` (default `target`) pairs; returns how many were added."""
        goal = self.target if upto is None else upto
        added = 0
        while len(self._ready) < goal:
            salt = fresh_salt()
            pair = (salt, derive_key(self.key.passphrase(), salt))
            with self._lock:
                self._ready.append(pair)
            added += 1
        return added

    async def refill_async(self) -> int:
        return await asyncio.to_thread(self.refill)

    def __len__(self) -> int:
        return len(self._ready)


class SaltSource(Protocol):
    """Where a write gets its (salt, derived key): a `FreshKeyPool`."""

    key: SecretKey

    def take(self) -> tuple[bytes, bytes] | None: ...


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _b64field(record: Mapping[str, Any], name: str, size: int | None) -> bytes:
    text = record.get(name)
    if not isinstance(text, str):
        raise DecryptError(f"Malformed secret record: field '{name}' is missing")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise DecryptError(f"Malformed secret record: field '{name}' is not base64") from None
    if size is not None and len(raw) != size:
        raise DecryptError(f"Malformed secret record: field '{name}' must be {size} bytes")
    return raw


@dataclass(frozen=True)
class SealedBlob:
    """A parsed stored record; `to_record` gives the exact JSON object to store."""

    salt: bytes
    iv: bytes
    tag: bytes
    ct: bytes
    epoch: int | None = None

    @classmethod
    def from_record(cls, record: object) -> SealedBlob:
        """Strict parse: lengths are checked so truncated tags or odd IVs are never accepted."""
        if not isinstance(record, Mapping):
            raise DecryptError("Malformed secret record: not an object")
        if record.get("v") != BLOB_VERSION or isinstance(record.get("v"), bool):
            raise DecryptError("Unsupported secret record version")
        alg = record.get("alg")
        if not isinstance(alg, str) or alg.lower() != CIPHER_NAME:
            raise DecryptError("Unsupported secret record cipher")
        epoch = record.get(EPOCH_FIELD)
        return cls(salt=_b64field(record, "salt", SALT_BYTES), iv=_b64field(record, "iv", IV_BYTES),
                   tag=_b64field(record, "tag", TAG_BYTES), ct=_b64field(record, "ct", None),
                   epoch=epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else None)

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"v": BLOB_VERSION, "alg": CIPHER_NAME, "salt": _b64encode(self.salt),
                                  "iv": _b64encode(self.iv), "tag": _b64encode(self.tag),
                                  "ct": _b64encode(self.ct)}
        if self.epoch is not None:
            record[EPOCH_FIELD] = self.epoch
        return record


def _fresh_derivation(key: SecretKey, pool: SaltSource | None) -> tuple[bytes, bytes]:
    pair = pool.take() if pool is not None and pool.key == key else None
    if pair is not None:
        return pair
    salt = fresh_salt()
    return salt, derive_key(key.passphrase(), salt)


def seal(plaintext: bytes, key: SecretKey, aad: bytes, *, epoch: int | None = None,
         cache: DerivedKeyCache | None = None, pool: SaltSource | None = None,
         derived: tuple[bytes, bytes] | None = None) -> SealedBlob:
    """Encrypt under a fresh salt and IV; the derived key is cached so the next open is cheap.

    `derived` is a (fresh salt, its derivation under `key`) pair made ahead by the caller
    (rotation); it must never have been used for another record.
    """
    salt, derived_key = derived if derived is not None else _fresh_derivation(key, pool)
    iv = _random_bytes(IV_BYTES)
    sealed = AESGCM(derived_key).encrypt(iv, plaintext, aad)
    if cache is not None:
        cache.put(key, salt, derived_key)
    return SealedBlob(salt=salt, iv=iv, tag=sealed[-TAG_BYTES:], ct=sealed[:-TAG_BYTES], epoch=epoch)


def _derived_for(blob: SealedBlob, key: SecretKey, cache: DerivedKeyCache | None) -> tuple[bytes, bool]:
    cached = cache.get(key, blob.salt) if cache is not None else None
    if cached is not None:
        return cached, True
    return derive_key(key.passphrase(), blob.salt), False


def unseal(blob: SealedBlob, key: SecretKey, aad: bytes, *, cache: DerivedKeyCache | None = None,
           label: str = "record") -> bytes:
    """Decrypt and authenticate; any failure is a DecryptError naming only `label`."""
    derived, was_cached = _derived_for(blob, key, cache)
    try:
        plaintext = AESGCM(derived).decrypt(blob.iv, blob.ct + blob.tag, aad)
    except InvalidTag:
        raise DecryptError(f"Failed to decrypt secret: {label}") from None
    if cache is not None and not was_cached:
        cache.put(key, blob.salt, derived)
    return plaintext


def encode_fields(fields: Sequence[Mapping[str, Any]]) -> bytes:
    """Compact JSON as `JSON.stringify` writes it: no spaces, non-ASCII kept as raw UTF-8."""
    text = json.dumps(list(fields), ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise VaultError("api", "Secret fields contain text that is not valid Unicode") from None


def decode_fields(plaintext: bytes, label: str = "record") -> Fields:
    """Parse a decrypted fields array; shape problems are DecryptErrors without content."""
    try:
        fields = json.loads(plaintext.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise DecryptError(f"Decrypted secret is not valid JSON: {label}") from None
    if not isinstance(fields, list) or not all(isinstance(item, dict) for item in fields):
        raise DecryptError(f"Decrypted secret is not a fields array: {label}")
    return fields


def encrypt_fields(fields: Sequence[Mapping[str, Any]], secret_id: str, key: SecretKey, *,
                   epoch: int | None = None, cache: DerivedKeyCache | None = None,
                   pool: SaltSource | None = None) -> dict[str, Any]:
    """The record to store at `secrets/<secret_id>`."""
    blob = seal(encode_fields(fields), key, secret_id.encode("utf-8"), epoch=epoch, cache=cache, pool=pool)
    return blob.to_record()


def decrypt_fields(record: object, secret_id: str, key: SecretKey, *,
                   cache: DerivedKeyCache | None = None) -> Fields:
    """Open a stored record; the AAD makes a record copied to another id fail here."""
    blob = SealedBlob.from_record(record)
    plaintext = unseal(blob, key, secret_id.encode("utf-8"), cache=cache, label=secret_id)
    return decode_fields(plaintext, secret_id)


def reencrypt_record(record: object, secret_id: str, old: SecretKey, new: SecretKey, *,
                     new_epoch: int | None = None, old_derived: bytes | None = None) -> dict[str, Any]:
    """Rotation step for one record: the plaintext bytes move unchanged to a fresh salt and IV.

    `old_derived` lets a caller that already holds the record's derived key (from a warm
    cache) skip the first of the two derivations.
    """
    blob = SealedBlob.from_record(record)
    aad = secret_id.encode("utf-8")
    cache = None
    if old_derived is not None:
        cache = DerivedKeyCache(max_entries=1)
        cache.put(old, blob.salt, old_derived)
    plaintext = unseal(blob, old, aad, cache=cache, label=secret_id)
    return seal(plaintext, new, aad, epoch=new_epoch).to_record()


async def encrypt_fields_async(fields: Sequence[Mapping[str, Any]], secret_id: str, key: SecretKey, *,
                               epoch: int | None = None, cache: DerivedKeyCache | None = None,
                               pool: SaltSource | None = None) -> dict[str, Any]:
    """`encrypt_fields` off the event loop (scrypt would stall it for ~60 ms)."""
    return await asyncio.to_thread(encrypt_fields, fields, secret_id, key, epoch=epoch, cache=cache,
                                   pool=pool)


async def decrypt_fields_async(record: object, secret_id: str, key: SecretKey, *,
                               cache: DerivedKeyCache | None = None) -> Fields:
    """`decrypt_fields` off the event loop; a warm cache hit is answered inline (no thread hop)."""
    blob = SealedBlob.from_record(record)
    if cache is not None and cache.has(key, blob.salt):
        return decrypt_fields(record, secret_id, key, cache=cache)
    return await asyncio.to_thread(decrypt_fields, record, secret_id, key, cache=cache)
