"""Shared fixtures for the vault tests: an independent reference implementation and a leak check.

The reference is written from the spec's description (hashlib's scrypt and the low-level
AES/GCM cipher objects), not from `sundial.vault.crypto`, so agreement means something.
All values used here are synthetic test data.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


class Reference:
    """The xyOps record format computed by hand (spec: secrets-and-webhooks.md section 2)."""

    @staticmethod
    def derive(key: str, salt: bytes) -> bytes:
        return hashlib.scrypt(key.encode("utf-8"), salt=salt, n=16384, r=8, p=1, dklen=32)

    @staticmethod
    def stringify(fields: Any) -> bytes:
        return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def encrypt(self, fields: Any, secret_id: str, key: str, salt: bytes | None = None,
                iv: bytes | None = None) -> dict[str, Any]:
        salt = salt or os.urandom(16)
        iv = iv or os.urandom(12)
        encryptor = Cipher(algorithms.AES(self.derive(key, salt)), modes.GCM(iv)).encryptor()
        encryptor.authenticate_additional_data(secret_id.encode("utf-8"))
        ct = encryptor.update(self.stringify(fields)) + encryptor.finalize()
        b64 = base64.b64encode
        return {"v": 1, "alg": "aes-256-gcm", "salt": b64(salt).decode(), "iv": b64(iv).decode(),
                "tag": b64(encryptor.tag).decode(), "ct": b64(ct).decode()}

    def decrypt(self, record: dict[str, Any], secret_id: str, key: str) -> Any:
        raw = {name: base64.b64decode(record[name]) for name in ("salt", "iv", "tag", "ct")}
        cipher = Cipher(algorithms.AES(self.derive(key, raw["salt"])), modes.GCM(raw["iv"], raw["tag"]))
        decryptor = cipher.decryptor()
        decryptor.authenticate_additional_data(secret_id.encode("utf-8"))
        return json.loads(decryptor.update(raw["ct"]) + decryptor.finalize())


@pytest.fixture(scope="session")
def reference() -> Reference:
    return Reference()


@pytest.fixture
def no_leak() -> Callable[[str, str, str], None]:
    """Fail without printing the value, so a leak does not leak again into the test report."""

    def check(text: str, value: str, where: str) -> None:
        if value and value in text:
            pytest.fail(f"a secret value leaked into {where}", pytrace=False)

    return check
