"""Transfer tokens: let a browser download an export with a plain GET link.

xyOps binds a token to a session ID only, so a token minted with an API key can never be
redeemed. Sundial binds the *principal* (user or API key) and re-checks it at redemption.
A token is stored hashed (a database reader cannot use it), lives 60 s, and is deleted in
the same statement that redeems it, so two concurrent redemptions cannot both succeed.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select

from sundial.storage.engine import Storage
from sundial.storage.records import put_record
from sundial.storage.schema import records

PREFIX = "transfer_tokens/"
LIFETIME = 60.0


@dataclass(frozen=True)
class Redeemed:
    """Who minted the token and the export parameters stored with it."""

    kind: str  # "user" | "api_key"
    name: str  # username or API key id
    session_id: str
    params: dict[str, Any]


def _key(token: str) -> str:
    return PREFIX + hashlib.sha256(token.encode()).hexdigest()


async def mint(storage: Storage, *, kind: str, name: str, session_id: str, params: dict[str, Any],
               lifetime: float = LIFETIME) -> str:
    token = secrets.token_hex(32)
    value = {"kind": kind, "name": name, "session_id": session_id, "params": params}
    async with storage.transaction() as tx:
        await put_record(storage, tx, _key(token), value, expires=time.time() + lifetime)
    return token


async def redeem(storage: Storage, token: str) -> Redeemed | None:
    """The token's binding, once; None when unknown, expired or already used."""
    if not isinstance(token, str) or len(token) != 64:
        return None
    key = _key(token)
    async with storage.transaction() as tx:
        row = (await tx.conn.execute(select(records.c.value, records.c.expires).where(records.c.key == key))).first()
        if row is None:
            return None
        gone = await tx.conn.execute(delete(records).where(records.c.key == key))
    if gone.rowcount != 1 or row.expires is None or row.expires <= time.time() or not isinstance(row.value, dict):
        return None
    value = row.value
    return Redeemed(kind=str(value.get("kind")), name=str(value.get("name")),
                    session_id=str(value.get("session_id") or ""), params=dict(value.get("params") or {}))


async def purge_expired(storage: Storage, now: float | None = None) -> int:
    async with storage.transaction() as tx:
        result = await tx.conn.execute(delete(records).where(
            records.c.key.startswith(PREFIX, autoescape=True), records.c.expires <= (now or time.time())))
    return int(result.rowcount or 0)
