"""`admin_export_data` and `sundial export`: selected data as XYBK lines, read in pages.

Memory stays flat whatever the size of the database: tables are read in keyset pages of
`PAGE` rows, one file at a time is base64-encoded, and the gzip stream is flushed every
`FLUSH_BYTES`. Only the configuration lists (small, and held in memory by the conductor
anyway) are read whole, because a list header must state its length before its pages.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import zlib
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, and_, select, true
from sqlalchemy.sql.elements import ColumnElement

from sundial.activity import ACTIVITY_INDEX
from sundial.auth.users import normalize
from sundial.backup.format import DEFAULT_PAGE_SIZE, FOOTER, ROSTER_PAGE_SIZE, dumps, header_lines, list_lines
from sundial.backup.paths import BlobPaths, UnsafeKey
from sundial.fleet.store import SERVERS_INDEX
from sundial.jobs.store import JOBS_INDEX
from sundial.storage.engine import Storage
from sundial.storage.schema import activity, config_tables, jobs, records, servers, users
from sundial.storage.search import QueryError, SearchIndex, compile_query

LISTS = ("alerts", "api_keys", "buckets", "categories", "channels", "events", "groups", "monitors", "plugins",
         "secrets", "tags", "users", "roles", "web_hooks")
INDEXES = ("alerts", "jobs", "servers", "snapshots", "activity", "tickets")
EXTRAS = ("job_files", "job_logs", "bucket_files", "ticket_files", "monitor_data", "stat_data", "user_avatars")
ITEM_TYPES = ("list", "index", "users", "jobFiles", "monitorData", "bucketData", "secretData", "bucketFiles",
              "ticketFiles")
PAGE = 500
MAX_FILE_SIZE = 1 << 20
FLUSH_BYTES = 256 * 1024
INLINE_GZIP = 64 * 1024


class SelectionError(ValueError):
    """Bad export parameters, worded as xyOps words them."""


def _selector(value: Any, name: str, known: tuple[str, ...]) -> list[str]:
    if value is None or value == "":
        return []
    if value == "all":
        return list(known)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise SelectionError(f"Invalid request ({name} must be an array).")
    return list(dict.fromkeys(value))


def expand_selection(lists: Any = None, indexes: Any = None, extras: Any = None,
                     items: Any = None) -> list[dict[str, Any]]:
    """The spec's selector expansion (admin-and-data.md §2), in its order, then explicit items."""
    chosen_lists = _selector(lists, "lists", LISTS)
    chosen_indexes = _selector(indexes, "indexes", INDEXES)
    chosen_extras = set(_selector(extras, "extras", EXTRAS))
    if items is not None and not (isinstance(items, list) and all(isinstance(i, dict) for i in items)):
        raise SelectionError("Invalid request (items must be an array).")
    out: list[dict[str, Any]] = [{"type": "list", "key": f"global/{name}"} for name in chosen_lists]
    out += [{"type": "index", "index": name} for name in chosen_indexes]
    if "users" in chosen_lists:
        out.append({"type": "users", "avatars": "user_avatars" in chosen_extras})
    if chosen_extras & {"job_files", "job_logs"}:
        out.append({"type": "jobFiles", "files": "job_files" in chosen_extras, "logs": "job_logs" in chosen_extras})
    if "monitor_data" in chosen_extras:
        out.append({"type": "monitorData"})
    if "stat_data" in chosen_extras:
        out.append({"type": "list", "key": "global/stats"})
    if "buckets" in chosen_lists:
        out.append({"type": "bucketData"})
    if "secrets" in chosen_lists:
        out.append({"type": "secretData"})
    out += [{"type": kind} for kind, extra in (("bucketFiles", "bucket_files"), ("ticketFiles", "ticket_files"))
            if extra in chosen_extras]
    out += list(items or [])
    if not out:
        raise SelectionError("No data selected for export.")
    _check_queries(out)
    return out


def _check_queries(items: list[dict[str, Any]]) -> None:
    """Bad search queries are refused before the response starts, not halfway through the stream."""
    for item in items:
        query = item.get("query")
        if query is None:
            continue
        index = INDEX_SOURCES.get(str(item.get("index") or "jobs"))
        if not isinstance(query, str) or index is None:
            continue
        try:
            compile_query(query, index[1])
        except QueryError as exc:
            raise SelectionError(f"Invalid query for {item.get('type')}: {exc}") from None


@dataclass
class ExportStats:
    lines: int = 0
    records: int = 0
    files: int = 0
    skipped_files: int = 0
    notes: list[str] = field(default_factory=list)


Progress = Callable[[int, int], None]


class Exporter:
    """Yields the lines of one export; `stats` fills in as it goes."""

    def __init__(self, storage: Storage, paths: BlobPaths, *, hostname: str = "") -> None:
        self.storage = storage
        self.paths = paths
        self.hostname = hostname
        self.stats = ExportStats()

    async def lines(self, items: list[dict[str, Any]], progress: Progress | None = None) -> AsyncIterator[str]:
        for line in header_lines(self.hostname):
            yield line
        for number, item in enumerate(items):
            handler = getattr(self, f"_item_{item.get('type')}", None)
            if handler is None:
                self.stats.notes.append(f"Unknown item type skipped: {str(item.get('type'))[:40]}")
            else:
                async for line in handler(item):
                    self.stats.lines += 1
                    yield line
            if progress:
                progress(number + 1, len(items))
        yield ""
        yield FOOTER

    # -- lists -------------------------------------------------------------------------------
    async def _item_list(self, item: dict[str, Any]) -> AsyncIterator[str]:
        key = str(item.get("key") or "")
        name = key.removeprefix("global/")
        if name in config_tables:
            values = await self._column(config_tables[name], config_tables[name].c.doc, config_tables[name].c.seq)
            page = DEFAULT_PAGE_SIZE
        elif key == "global/users":
            values = [{"username": user["username"]} for user in await self._users()]
            page = ROSTER_PAGE_SIZE
        else:
            async for line in self._stored_list(key):
                yield line
            return
        yield f"# List: {key}"
        for line in list_lines(key, values, page):
            yield line
        yield ""

    async def _column(self, table: Table, column: Any, order: Any) -> list[Any]:
        async with self.storage.read() as conn:
            return [row[0] for row in await conn.execute(select(column).order_by(order))]

    async def _users(self) -> list[dict[str, Any]]:
        """The roster, newest first, without hidden (emergency) accounts."""
        docs = await self._column(users, users.c.doc, users.c.created.desc())
        return [doc for doc in docs if isinstance(doc, dict) and not doc.get("hidden")]

    async def _stored_list(self, key: str) -> AsyncIterator[str]:
        """A list kept as plain records (e.g. `global/stats` from an xyOps import): header + pages as stored."""
        async with self.storage.read() as conn:
            head = (await conn.execute(select(records.c.value).where(records.c.key == key))).scalar()
        if not isinstance(head, dict) or head.get("type") != "list":
            return  # a missing list is skipped silently, as xyOps does
        yield f"# List: {key}"
        yield dumps({"cmd": "listDelete", "args": [key, False]})
        yield dumps({"key": key, "value": head})
        first, last = int(head.get("first_page", 0)), int(head.get("last_page", 0))
        for number in range(first, last + 1):
            async with self.storage.read() as conn:
                page = (await conn.execute(select(records.c.value)
                                           .where(records.c.key == f"{key}/{number}"))).scalar()
            if page is not None:
                yield dumps({"key": f"{key}/{number}", "value": page})
        yield ""

    # -- database indexes ----------------------------------------------------------------------
    async def _item_index(self, item: dict[str, Any]) -> AsyncIterator[str]:
        name = str(item.get("index") or "")
        query = str(item.get("query") or "*")
        source = INDEX_SOURCES.get(name)
        yield f"# Database Index: {name} ({query})"
        if source is None:
            self.stats.notes.append(f"Index {name[:40]} is not stored by this conductor; nothing exported for it")
            yield ""
            return
        table, search, extra = source
        async for rid, doc in self._rows(table, _where(query, search, extra), _max_rows(item)):
            self.stats.records += 1
            yield dumps({"index": name, "id": rid, "record": doc})
        yield ""

    async def _rows(self, table: Table, where: ColumnElement[bool], limit: int | None
                    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """(id, doc) newest id first, read in keyset pages."""
        last: str | None = None
        sent = 0
        while limit is None or sent < limit:
            size = PAGE if limit is None else min(PAGE, limit - sent)
            cond = where if last is None else and_(where, table.c.id < last)
            async with self.storage.read() as conn:
                rows = (await conn.execute(select(table.c.id, table.c.doc).where(cond)
                                           .order_by(table.c.id.desc()).limit(size))).all()
            for row in rows:
                yield row.id, row.doc
            sent += len(rows)
            if len(rows) < size:
                return
            last = rows[-1].id

    # -- users, secrets, buckets -------------------------------------------------------------------
    async def _item_users(self, item: dict[str, Any]) -> AsyncIterator[str]:
        yield "# User Data:"
        for user in await self._users():
            norm = normalize(user["username"])
            if item.get("avatars"):
                for size in (64, 256):
                    async for line in self._file_put(f"users/{norm}/avatar/{size}.png", MAX_FILE_SIZE * 8):
                        yield line
            self.stats.records += 1
            yield dumps({"key": f"users/{norm}", "value": user})
        yield ""

    async def _item_secretData(self, item: dict[str, Any]) -> AsyncIterator[str]:
        yield "# Encrypted Secret Data"
        async for key, value in self._records("secrets/"):
            yield dumps({"key": key, "value": value})
        yield ""

    async def _item_bucketData(self, item: dict[str, Any]) -> AsyncIterator[str]:
        yield "# Bucket Data"
        async for key, value in self._records("buckets/"):
            if key.endswith("/data"):
                yield dumps({"key": key, "value": value})
        yield ""

    async def _item_bucketFiles(self, item: dict[str, Any]) -> AsyncIterator[str]:
        yield "# Bucket Files"
        limit = int(item.get("max_size") or MAX_FILE_SIZE)
        async for key, value in self._records("buckets/"):
            if not key.endswith("/files"):
                continue
            yield dumps({"key": key, "value": value})
            for entry in value if isinstance(value, list) else []:
                if isinstance(entry, dict) and isinstance(entry.get("path"), str):
                    async for line in self._file_put(entry["path"], limit):
                        yield line
        yield ""

    async def _records(self, prefix: str) -> AsyncIterator[tuple[str, Any]]:
        last = ""
        while True:
            async with self.storage.read() as conn:
                rows = (await conn.execute(
                    select(records.c.key, records.c.value)
                    .where(records.c.key.startswith(prefix, autoescape=True), records.c.key > last)
                    .order_by(records.c.key).limit(PAGE))).all()
            for row in rows:
                self.stats.records += 1
                yield row.key, row.value
            if len(rows) < PAGE:
                return
            last = rows[-1].key

    # -- files -------------------------------------------------------------------------------
    async def _item_jobFiles(self, item: dict[str, Any]) -> AsyncIterator[str]:
        query = str(item.get("query") or "*")
        limit = int(item.get("max_size") or MAX_FILE_SIZE)
        yield f"# Job Files ({query})"
        where = _where(query, JOBS_INDEX, jobs.c.final == 1)
        async for rid, doc in self._rows(jobs, where, _max_rows(item)):
            if item.get("logs"):
                async for line in self._job_log(rid, doc, limit):
                    yield line
            if item.get("files"):
                for entry in doc.get("files") or []:
                    if isinstance(entry, dict) and isinstance(entry.get("path"), str):
                        async for line in self._file_put(entry["path"], limit):
                            yield line
        yield ""

    async def _job_log(self, job_id: str, doc: dict[str, Any], limit: int) -> AsyncIterator[str]:
        """The archived log as stored, or the inline output gzipped, so xyOps can show it too."""
        key = f"logs/jobs/{job_id}/log.txt.gz"
        archived = self.paths.job_log(job_id)
        if archived.exists():
            async for line in self._file_put(key, limit):
                yield line
        elif isinstance(doc.get("output"), str) and doc["output"] and len(doc["output"]) <= limit:
            raw = doc["output"].encode("utf-8", "replace")
            # Small logs compress in microseconds; a thread hop would cost more than it saves.
            data = gzip.compress(raw, 6) if len(raw) < INLINE_GZIP else await asyncio.to_thread(gzip.compress, raw, 6)
            self.stats.files += 1
            yield dumps({"key": key, "value": base64.b64encode(data).decode()})

    async def _file_put(self, key: str, limit: int) -> AsyncIterator[str]:
        try:
            path = self.paths.path_for(key.lstrip("/"))
        except UnsafeKey:
            return
        try:
            size = path.stat().st_size
        except OSError:
            return
        if size > limit:
            self.stats.skipped_files += 1
            return
        data = await asyncio.to_thread(path.read_bytes)
        self.stats.files += 1
        yield dumps({"key": key.lstrip("/"), "value": base64.b64encode(data).decode()})

    async def _item_monitorData(self, item: dict[str, Any]) -> AsyncIterator[str]:
        yield f"# Monitor Timeline Data ({item.get('query') or '*'})"
        async for key, value in self._records("timeline/"):
            yield dumps({"key": key, "value": value})
        yield ""

    async def _item_ticketFiles(self, item: dict[str, Any]) -> AsyncIterator[str]:
        yield f"# Ticket Files ({item.get('query') or '*'})"
        self.stats.notes.append("Tickets are not stored by this conductor; no ticket files exported")
        yield ""


INDEX_SOURCES: dict[str, tuple[Table, SearchIndex, ColumnElement[bool]]] = {
    "jobs": (jobs, JOBS_INDEX, jobs.c.final == 1),
    "activity": (activity, ACTIVITY_INDEX, true()),
    "servers": (servers, SERVERS_INDEX, true()),
}


def _where(query: str, index: SearchIndex, extra: ColumnElement[bool]) -> ColumnElement[bool]:
    return and_(extra, compile_query(query, index))


def _max_rows(item: dict[str, Any]) -> int | None:
    value = item.get("max_rows")
    return int(value) if isinstance(value, int | float) and value > 0 else None


async def gzip_stream(lines: AsyncIterator[str]) -> AsyncIterator[bytes]:
    """Gzip text lines incrementally; compression runs in a thread, off the event loop."""
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)
    pending: list[str] = []
    size = 0
    async for line in lines:
        pending.append(line)
        size += len(line) + 1
        if size >= FLUSH_BYTES:
            chunk = await asyncio.to_thread(packer.compress, _join(pending))
            pending, size = [], 0
            if chunk:
                yield chunk
    tail = _join(pending)
    yield await asyncio.to_thread(lambda: packer.compress(tail) + packer.flush())


def _join(lines: Iterable[str]) -> bytes:
    return "".join(line + "\n" for line in lines).encode("utf-8")
