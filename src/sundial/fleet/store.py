"""The ``servers`` table: one row per server ever seen, the xyOps Server object in ``doc``.

Joins and leaves write here; per-second and per-minute metrics never do (they live in memory,
the latest minute sample is written behind in batches by the metrics keeper).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update

from sundial.fleet.records import Server, search_columns, stored_copy
from sundial.storage.engine import Storage, Tx, upsert_insert
from sundial.storage.records import delete_record, put_record
from sundial.storage.schema import servers
from sundial.storage.search import SearchColumn, SearchIndex, compile_query

SAMPLE_PREFIX = "hosts/"
SERVERS_INDEX = SearchIndex(
    columns={
        "keywords": SearchColumn(servers.c.keywords, "words"), "groups": SearchColumn(servers.c.groups, "words"),
        "id": SearchColumn(servers.c.id, "exact"), "hostname": SearchColumn(servers.c.hostname, "exact"),
        **{name: SearchColumn(servers.c[name], "words")
           for name in ("os_platform", "os_distro", "os_release", "os_arch", "cpu_brand", "cpu_virt")},
        "cpu_cores": SearchColumn(servers.c.cpu_cores, "number"),
        "created": SearchColumn(servers.c.created, "date"), "modified": SearchColumn(servers.c.modified, "date"),
    },
    default="keywords",
)

SUMMARY_COLUMNS = ("os_platform", "os_distro", "os_release", "os_arch", "cpu_virt", "cpu_brand", "cpu_cores")


def sample_key(server_id: str) -> str:
    """Record key of a server's latest minute sample (the xyOps ``hosts/<id>/data`` key)."""
    return f"{SAMPLE_PREFIX}{server_id}/data"


class ServerStore:
    """Repository functions for server rows; callers own the transaction when they pass one."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    async def get(self, server_id: str) -> Server | None:
        async with self.storage.read() as conn:
            row = (await conn.execute(select(servers.c.doc).where(servers.c.id == server_id))).first()
        return dict(row.doc) if row else None

    async def all(self) -> list[Server]:
        async with self.storage.read() as conn:
            rows = await conn.execute(select(servers.c.doc).order_by(servers.c.id))
            return [dict(row.doc) for row in rows]

    async def count(self) -> int:
        async with self.storage.read() as conn:
            return int((await conn.execute(select(func.count()).select_from(servers))).scalar() or 0)

    async def summaries(self) -> dict[str, dict[str, int]]:
        """``get_server_summaries``: for each platform column, how many stored servers have each value
        (the indexed, lower-case form, so a value can be searched as ``column:value``)."""
        found: dict[str, dict[str, int]] = {}
        async with self.storage.read() as conn:
            for name in SUMMARY_COLUMNS:
                column = servers.c[name]
                rows = await conn.execute(select(column, func.count()).group_by(column))
                found[name] = {str(value).strip(): int(count) for value, count in rows
                               if str(value).strip() and value != 0}
        return found

    async def search(self, query: str, *, offset: int, limit: int, sort_dir: int,
                     groups: list[str] | None = None) -> tuple[list[Server], int]:
        """``search_servers``: the query language of the other indexes; raises QueryError.

        ``groups`` limits the result to servers in any of them (group-limited users)."""
        where = compile_query(query, SERVERS_INDEX)
        if groups:
            where = and_(where, or_(*[servers.c.groups.like(f"% {g} %") for g in groups]))
        order = servers.c.id.desc() if sort_dir < 0 else servers.c.id.asc()
        async with self.storage.read() as conn:
            total = (await conn.execute(select(func.count()).select_from(servers).where(where))).scalar()
            rows = await conn.execute(select(servers.c.doc, servers.c.online).where(where).order_by(order)
                                      .offset(offset).limit(limit))
            docs = [{**row.doc, "online": bool(row.online)} for row in rows]
        return docs, int(total or 0)

    async def upsert(self, tx: Tx, record: Server, *, online: bool) -> None:
        doc = stored_copy(record)
        values = {**search_columns(doc), "online": 1 if online else 0, "doc": doc}
        maker = upsert_insert(self.storage.is_sqlite)
        stmt = maker(servers).values(id=doc["id"], **values)
        await tx.conn.execute(stmt.on_conflict_do_update(index_elements=[servers.c.id], set_=values))

    async def upsert_many(self, records: Iterable[tuple[Server, bool]]) -> int:
        """Write several records in one transaction (group re-matching, batched saves)."""
        count = 0
        async with self.storage.transaction() as tx:
            for record, online in records:
                await self.upsert(tx, record, online=online)
                count += 1
        return count

    async def mark_all_offline(self) -> None:
        """At start no socket is open yet, whatever the previous process left behind."""
        async with self.storage.transaction() as tx:
            await tx.conn.execute(update(servers).where(servers.c.online == 1).values(online=0))

    async def delete(self, tx: Tx, server_id: str) -> None:
        """Forget a server and its stored monitoring sample."""
        await tx.conn.execute(delete(servers).where(servers.c.id == server_id))
        await delete_record(tx, sample_key(server_id))

    async def save_samples(self, samples: dict[str, Any]) -> None:
        """Latest minute samples of many servers in one transaction (write-behind)."""
        async with self.storage.transaction() as tx:
            for server_id, sample in samples.items():
                await put_record(self.storage, tx, sample_key(server_id), sample)
