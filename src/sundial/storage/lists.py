"""In-memory configuration lists backed by one table each.

xyOps keeps its 13 global lists in memory and reads them on every request; so do we.
Memory changes only after the database commit, so a failed write leaves both untouched.

Every change applied in memory bumps the list's ``version``; :meth:`ConfigList.memo` keeps one
value derived from the whole list (e.g. the rendered JSON of a list reply) until the next
change. That is only sound because stored records are never changed in place: every writer
goes through insert/replace (which store a deep copy) and readers copy before changing.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from sundial.storage.engine import Storage, Tx
from sundial.storage.schema import config_tables

T = TypeVar("T")


class ConfigList:
    """One `global/<name>` list: ordered records by id, authoritative in memory."""

    def __init__(self, storage: Storage, name: str) -> None:
        self.storage = storage
        self.name = name
        self.table = config_tables[name]
        self._items: dict[str, dict[str, Any]] = {}
        self._seq: dict[str, int] = {}
        self._last_seq = 0  # taken at insert time, so inserts sharing a transaction still get distinct seqs
        self.version = 0  # bumped by every change applied in memory (load, insert, replace, delete, clear)
        self._memo: dict[str, tuple[int, Any]] = {}

    async def load(self, conn: AsyncConnection | None = None) -> None:
        """Read the list from storage, on `conn` when given (see `load_all`)."""
        if conn is None:
            async with self.storage.read() as own:
                await self.load(own)
            return
        rows = (await conn.execute(select(self.table.c.id, self.table.c.seq, self.table.c.doc)
                                   .order_by(self.table.c.seq))).all()
        self._items = {row.id: row.doc for row in rows}
        self._seq = {row.id: row.seq for row in rows}
        self._last_seq = max(self._seq.values(), default=0)
        self._changed()

    def _changed(self) -> None:
        self.version += 1
        self._memo.clear()  # derived values of the old version are never needed again

    def memo(self, key: str, derive: Callable[[list[dict[str, Any]]], T]) -> T:
        """``derive(all records)``, computed once per list version: a list read thousands of
        times between changes (get_events with 10,000 events) is rendered once per change."""
        hit = self._memo.get(key)
        if hit is not None and hit[0] == self.version:
            return hit[1]
        value = derive(self.all())
        self._memo[key] = (self.version, value)
        return value

    def get(self, item_id: str) -> dict[str, Any] | None:
        """The stored record; callers copy before changing it."""
        return self._items.get(item_id)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def __len__(self) -> int:
        return len(self._items)

    def all(self) -> list[dict[str, Any]]:
        return list(self._items.values())

    async def insert(self, tx: Tx, doc: dict[str, Any]) -> None:
        self._last_seq = seq = max(self._last_seq, max(self._seq.values(), default=0)) + 1
        stored = copy.deepcopy(doc)
        await tx.conn.execute(insert(self.table).values(
            id=stored["id"], seq=seq, title=str(stored.get("title", ""))[:512],
            modified=float(stored.get("modified") or 0), doc=stored))

        def apply() -> None:
            self._items[stored["id"]] = stored
            self._seq[stored["id"]] = seq
            self._changed()

        tx.after_commit(apply)

    async def replace(self, tx: Tx, doc: dict[str, Any]) -> None:
        stored = copy.deepcopy(doc)
        await tx.conn.execute(update(self.table).where(self.table.c.id == stored["id"]).values(
            title=str(stored.get("title", ""))[:512], modified=float(stored.get("modified") or 0),
            doc=stored))

        def apply() -> None:
            self._items[stored["id"]] = stored
            self._changed()

        tx.after_commit(apply)

    async def delete(self, tx: Tx, item_id: str) -> None:
        await tx.conn.execute(delete(self.table).where(self.table.c.id == item_id))

        def apply() -> None:
            self._items.pop(item_id, None)
            self._seq.pop(item_id, None)
            self._changed()

        tx.after_commit(apply)

    async def clear(self, tx: Tx) -> None:
        await tx.conn.execute(delete(self.table))

        def apply() -> None:
            self._items.clear()
            self._seq.clear()
            self._changed()

        tx.after_commit(apply)


async def load_all(storage: Storage, lists: Iterable[ConfigList]) -> None:
    """Load every list over one connection.

    Why not one task per list: 13 concurrent reads open 13 pooled connections (on SQLite, 13
    driver threads) at start-up for a few milliseconds of work each; one connection is as fast
    and leaves the pool at its resting size.
    """
    async with storage.read() as conn:
        for items in lists:
            await items.load(conn)
