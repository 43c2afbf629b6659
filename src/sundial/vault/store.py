"""Where the vault keeps things: the vault's own small repository over the key/value records.

Encrypted values live at `secrets/<id>` (the xyOps key), beside the plaintext metadata in the
`secrets` config list; the integrity canary at `global/key_canary`; the pending-rotation
marker at `global/key_rotation_pending`. Only ciphertext and key fingerprints are stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sundial.storage.engine import Storage, Tx, upsert_insert
from sundial.storage.records import delete_record, get_record, list_records, put_record
from sundial.storage.schema import records as records_table

SECRET_PREFIX = "secrets/"
BULK_CHUNK = 500
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


async def write_secret_records(storage: Storage, tx: Tx, items: Mapping[str, dict[str, Any]],
                               between_chunks: Callable[[], None] = lambda: None) -> None:
    """Upsert many records with one executemany per chunk (a rotation writes them all at once).

    `between_chunks` runs after the first chunk: the fault point that proves a half-written
    transaction is rolled back.
    """
    rows = [{"key": secret_key_of(sid), "value": record, "expires": None} for sid, record in items.items()]
    maker = upsert_insert(storage.is_sqlite)
    stmt = maker(records_table)
    stmt = stmt.on_conflict_do_update(index_elements=[records_table.c.key],
                                      set_={"value": stmt.excluded.value, "expires": stmt.excluded.expires})
    size = max(1, min(BULK_CHUNK, (len(rows) + 1) // 2))
    for index, start in enumerate(range(0, len(rows), size)):
        if index == 1:
            between_chunks()
        await tx.conn.execute(stmt, rows[start:start + size])
    if len(rows) <= size:
        between_chunks()


async def delete_secret_record(tx: Tx, secret_id: str) -> None:
    await delete_record(tx, secret_key_of(secret_id))


async def write_canary(storage: Storage, tx: Tx, canary: dict[str, Any]) -> None:
    await put_record(storage, tx, CANARY_KEY, canary)


async def write_pending(storage: Storage, tx: Tx, marker: dict[str, Any]) -> None:
    await put_record(storage, tx, PENDING_KEY, marker)


async def delete_pending(tx: Tx) -> None:
    await delete_record(tx, PENDING_KEY)
