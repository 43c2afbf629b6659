"""Key/value records of the xyOps store (`global/state`, `secrets/<id>`, ...)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import delete, select

from sundial.storage.engine import AsyncConnection, Storage, Tx, upsert_insert
from sundial.storage.schema import records


async def get_record(conn: AsyncConnection, key: str) -> Any:
    row = (await conn.execute(select(records.c.value, records.c.expires)
                              .where(records.c.key == key))).first()
    if row is None or (row.expires is not None and row.expires <= time.time()):
        return None
    return row.value


async def put_record(storage: Storage, tx: Tx, key: str, value: Any,
                     expires: float | None = None) -> None:
    """Insert or replace one record (an upsert on both engines)."""
    maker = upsert_insert(storage.is_sqlite)
    stmt = maker(records).values(key=key, value=value, expires=expires)
    stmt = stmt.on_conflict_do_update(index_elements=[records.c.key],
                                      set_={"value": value, "expires": expires})
    await tx.conn.execute(stmt)


async def delete_record(tx: Tx, key: str) -> None:
    await tx.conn.execute(delete(records).where(records.c.key == key))


async def list_records(conn: AsyncConnection, prefix: str) -> list[tuple[str, Any]]:
    rows = await conn.execute(select(records.c.key, records.c.value)
                              .where(records.c.key.startswith(prefix, autoescape=True))
                              .order_by(records.c.key))
    return [(row.key, row.value) for row in rows]
