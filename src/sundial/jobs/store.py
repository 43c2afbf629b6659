"""Durable job rows with group commit.

Every write is queued and a single flusher commits everything queued so far in one
transaction, then wakes the waiters. Idle, a write commits at once; under load, hundreds
of launches and finishes share one commit. `run_event` awaits its insert, so a job is
durable before the caller hears its id.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update

from sundial.logs import Logger
from sundial.storage.engine import Storage
from sundial.storage.schema import jobs
from sundial.storage.search import SearchColumn, SearchIndex, compile_query, normalize_words

JOBS_INDEX = SearchIndex(
    columns={
        "code": SearchColumn(jobs.c.code, "exact"), "event": SearchColumn(jobs.c.event, "exact"),
        "category": SearchColumn(jobs.c.category, "exact"), "plugin": SearchColumn(jobs.c.plugin, "exact"),
        "server": SearchColumn(jobs.c.server, "exact"), "source": SearchColumn(jobs.c.source, "exact"),
        "tags": SearchColumn(jobs.c.tags, "words"), "groups": SearchColumn(jobs.c.groups, "words"),
        "date": SearchColumn(jobs.c.completed, "date"), "completed": SearchColumn(jobs.c.completed, "number"),
        "elapsed": SearchColumn(jobs.c.elapsed, "number"),
    },
    default="code",
)
_FIELD = re.compile(r"^\w+$")
SORTABLE = {"_id": jobs.c.id, "completed": jobs.c.completed, "elapsed": jobs.c.elapsed, "started": jobs.c.started}

# Built once: a batch runs one executemany per kind with plain parameter rows. Building a statement
# with `.values(...)` per job cost more CPU than the commit itself (SQLAlchemy coerces every value
# and computes a cache key each time).
_INSERT = insert(jobs)
_UPDATE = update(jobs).where(jobs.c.id == bindparam("job_id"))
_DELETE = delete(jobs).where(jobs.c.id == bindparam("job_id"))


def row_values(job: dict[str, Any]) -> dict[str, Any]:
    """The searchable columns of a job document."""
    code = job.get("code", 0)
    return {
        "event": str(job.get("event") or ""), "category": str(job.get("category") or ""),
        "plugin": str(job.get("plugin") or ""), "server": str(job.get("server") or ""),
        "source": str(job.get("source") or ""), "code": str(code if code not in (None, False, "") else 0),
        "tags": normalize_words(job.get("tags") or []), "groups": normalize_words(job.get("groups") or []),
        "state": str(job.get("state") or ""), "final": 1 if job.get("final") else 0,
        "started": float(job.get("started") or 0), "completed": float(job.get("completed") or 0),
        "elapsed": float(job.get("elapsed") or 0), "doc": job,
    }


@dataclass
class _Write:
    kind: str  # "insert" | "update" | "delete"
    job_id: str
    values: dict[str, Any] | None
    done: asyncio.Future[None]


class JobStore:
    def __init__(self, storage: Storage, log: Logger) -> None:
        self.storage = storage
        self.log = log
        self._pending: list[_Write] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._flushing = asyncio.Lock()
        self.commits = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._flusher())

    async def stop(self) -> None:
        """Write what is queued, then stop the flusher. The drain waits for a flush already in
        flight (cancelling that one mid-commit would roll its writes back)."""
        if self._task:
            await self._drain()
            self._task.cancel()

    def _queue(self, kind: str, job_id: str, values: dict[str, Any] | None) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(_Write(kind, job_id, values, future))
        self._wakeup.set()
        return future

    def insert(self, job: dict[str, Any]) -> asyncio.Future[None]:
        return self._queue("insert", job["id"], row_values(job))

    def save(self, job: dict[str, Any]) -> asyncio.Future[None]:
        return self._queue("update", job["id"], row_values(job))

    def delete(self, job_id: str) -> asyncio.Future[None]:
        return self._queue("delete", job_id, None)

    async def insert_in(self, conn: Any, jobs_to_insert: list[dict[str, Any]]) -> None:
        """Insert job rows inside a caller's transaction (the scheduler claims its slots in the same one)."""
        if jobs_to_insert:
            await conn.execute(insert(jobs), [{"id": job["id"], **row_values(job)} for job in jobs_to_insert])

    async def _drain(self) -> None:
        async with self._flushing:
            while self._pending:
                await self._flush_once()

    async def _flusher(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            await self._drain()

    async def _flush_once(self) -> None:
        batch, self._pending = self._pending, []
        try:
            async with self.storage.transaction() as tx:
                await _apply_batch(tx.conn, _coalesce(batch))
        except Exception as exc:  # report to every waiter; nothing of the batch was committed
            self.log.error("jobs_db", f"Job write batch of {len(batch)} failed: {exc}")
            for write in batch:
                if not write.done.done():
                    write.done.set_exception(exc)
            return
        self.commits += 1
        for write in batch:
            if not write.done.done():
                write.done.set_result(None)

    # -- reads -------------------------------------------------------------------------------
    async def get(self, job_id: str) -> dict[str, Any] | None:
        async with self.storage.read() as conn:
            row = (await conn.execute(select(jobs.c.doc).where(jobs.c.id == job_id))).first()
        return row.doc if row else None

    async def unfinished(self) -> list[dict[str, Any]]:
        async with self.storage.read() as conn:
            rows = await conn.execute(select(jobs.c.doc).where(jobs.c.final == 0).order_by(jobs.c.id))
            return [row.doc for row in rows]

    async def search(self, query: str, *, offset: int, limit: int, sort_by: str, sort_dir: int,
                     extra: Any = None, fields: Sequence[str] | None = None) -> tuple[list[dict[str, Any]], int]:
        """A page of finished jobs and the match count. With ``fields`` (top-level keys), rows hold
        just those keys (None when absent), read out of the stored documents by the database:
        pollers that watch many jobs for `completed` then cost a fraction of whole documents."""
        where = compile_query(query, JOBS_INDEX)
        if extra is not None:
            where = where & extra
        where = where & (jobs.c.final == 1)
        column = SORTABLE.get(sort_by, jobs.c.id)
        order = column.desc() if sort_dir < 0 else column.asc()
        # Two steps in one statement: sort and page the ids, then read only that page's documents,
        # so the sort never carries every matching document (that halved the time at 10,000 jobs).
        page_ids = select(jobs.c.id).where(where).order_by(order, jobs.c.id.desc()).offset(offset).limit(limit)
        outer = jobs.alias("page")
        outer_column = outer.c[column.name]
        outer_order = outer_column.desc() if sort_dir < 0 else outer_column.asc()
        keys = list(fields) if fields and all(_FIELD.match(k) for k in fields) else None
        wanted = [outer.c.doc[k] for k in keys] if keys else [outer.c.doc]
        async with self.storage.read() as conn:
            total = (await conn.execute(select(func.count()).select_from(jobs).where(where))).scalar()
            rows = await conn.execute(select(*wanted).where(outer.c.id.in_(page_ids))
                                      .order_by(outer_order, outer.c.id.desc()))
            if keys:
                return [dict(zip(keys, row, strict=True)) for row in rows], int(total or 0)
            return [row[0] for row in rows], int(total or 0)


async def _apply_batch(conn: Any, writes: list[_Write]) -> None:
    """Inserts, then updates, then deletes, one executemany each. Within a batch that order is
    what the writers meant: a job is inserted before it is updated, and a delete is final."""
    inserts = [{"id": w.job_id, **(w.values or {})} for w in writes if w.kind == "insert"]
    updates = [{"job_id": w.job_id, **(w.values or {})} for w in writes if w.kind == "update"]
    deletes = [{"job_id": w.job_id} for w in writes if w.kind == "delete"]
    for statement, rows in ((_INSERT, inserts), (_UPDATE, updates), (_DELETE, deletes)):
        if rows:
            await conn.execute(statement, rows)


def _coalesce(batch: list[_Write]) -> list[_Write]:
    """Several updates of one job in a batch: only the last one matters."""
    last_update: dict[str, int] = {}
    for index, write in enumerate(batch):
        if write.kind == "update":
            last_update[write.job_id] = index
    return [w for i, w in enumerate(batch) if w.kind != "update" or last_update[w.job_id] == i]


def now() -> float:
    return round(time.time(), 3)
