"""API keys: only a salted SHA-256 of the key is stored; the plain key is shown once.

Matching hashes the presented key with each candidate's id (the xyOps scheme), so an
exported key list can be imported into xyOps and back and keep working.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Any

from sundial.storage.lists import ConfigList


def generate_plain_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def key_hash(plain: str, key_id: str) -> str:
    return hashlib.sha256((plain + key_id).encode("utf-8")).hexdigest()


def key_mask(plain: str) -> str:
    return plain[:4] + "********" + plain[-4:]


def redacted(record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "key": "REDACTED"}


class ApiKeyService:
    """Looks keys up and enforces their per-second rate limits (kept in memory)."""

    def __init__(self, keys: ConfigList) -> None:
        self.keys = keys
        self._usage: dict[str, tuple[int, int]] = {}

    def match(self, presented: str, now: float | None = None) -> dict[str, Any] | None:
        now = now or time.time()
        for record in self.keys.all():
            if not record.get("active"):
                continue
            expires = record.get("expires")
            if isinstance(expires, int | float) and expires and now >= expires:
                continue
            if hmac.compare_digest(key_hash(presented, str(record.get("id", ""))),
                                   str(record.get("key", ""))):
                return record
        return None

    def over_rate(self, record: dict[str, Any], now: float | None = None) -> bool:
        """Count this call; True when the key exceeded `max_per_sec` in the current second."""
        limit = record.get("max_per_sec")
        if not isinstance(limit, int | float) or limit <= 0:
            return False
        second = int(now or time.time())
        last, count = self._usage.get(record["id"], (second, 0))
        count = count + 1 if last == second else 1
        self._usage[record["id"]] = (second, count)
        return count > limit

    def forget(self, key_id: str) -> None:
        self._usage.pop(key_id, None)
