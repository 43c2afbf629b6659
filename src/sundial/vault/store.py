"""Where the vault keeps things: the vault's own small repository over the key/value records.

Encrypted values live at `secrets/<id>` (the xyOps key), beside the plaintext metadata in the
`secrets` config list; the integrity canary at `global/key_canary`; the pending-rotation
marker at `global/key_rotation_pending`. Only ciphertext and key fingerprints are stored.
"""

from __future__ import annotations

from typing import Any

from sundial.storage.engine import Storage, Tx
from sundial.storage.records import delete_record, get_record, list_records, put_record

SECRET_PREFIX = "secrets/"
CANARY_KEY = "global/key_canary"
PENDING_KEY = "global/key_rotation_pending"


def secret_key_of(secret_id: str) -> str:
    return SECRET_PREFIX + secret_id


async def read_secret_records(storage: Storage) -> dict[str, dict[str, Any]]:
    """Every encrypted secret record by secret id (one query)."""
    async with storage.read() as conn:
        rows = await list_records(conn, SECRET_PREFIX)
    return {key[len(SECRET_PREFIX):]: value for key, value in rows if isinstance(value, dict)}


async def read_secret_record(storage: Storage, secret_id: str) -> dict[str, Any] | None:
    async with storage.read() as conn:
        value = await get_record(conn, secret_key_of(secret_id))
    return value if isinstance(value, dict) else None


async def read_key_state(storage: Storage) -> tuple[Any, Any]:
    """(canary record, pending-rotation marker), each None when absent."""
    async with storage.read() as conn:
        return await get_record(conn, CANARY_KEY), await get_record(conn, PENDING_KEY)


async def write_secret_record(storage: Storage, tx: Tx, secret_id: str, record: dict[str, Any]) -> None:
    await put_record(storage, tx, secret_key_of(secret_id), record)


async def delete_secret_record(tx: Tx, secret_id: str) -> None:
    await delete_record(tx, secret_key_of(secret_id))


async def write_canary(storage: Storage, tx: Tx, canary: dict[str, Any]) -> None:
    await put_record(storage, tx, CANARY_KEY, canary)


async def write_pending(storage: Storage, tx: Tx, marker: dict[str, Any]) -> None:
    await put_record(storage, tx, PENDING_KEY, marker)


async def delete_pending(tx: Tx) -> None:
    await delete_record(tx, PENDING_KEY)
