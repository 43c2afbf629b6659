"""Engine set-up and transactions.

SQLite is the zero-set-up default (one file, WAL mode); any `postgresql://` URL switches to
asyncpg. Writers on SQLite are serialised in-process, because SQLite allows one writer at a
time and queueing here is cheaper and clearer than retrying on SQLITE_BUSY.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import make_url

from sundial.storage.asyncengine import AsyncConnection, AsyncEngine, create_async_engine


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


@dataclass
class Tx:
    """One write transaction; callbacks registered here run only once it has committed."""

    conn: AsyncConnection
    _after_commit: list[Callable[[], None]] = field(default_factory=list)

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after_commit.append(callback)


def upsert_insert(is_sqlite: bool) -> Any:
    """The `insert` construct with `on_conflict_do_update` for this engine's dialect.

    Imported on demand: each dialect package costs ~2 MiB and tens of milliseconds, and a
    conductor only ever talks to one of them.
    """
    if is_sqlite:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    return pg_insert


def database_url(url: str, sqlite_file: Path) -> str:
    """Normalise a configured URL to its async driver; empty means the embedded SQLite file."""
    if not url:
        return f"sqlite+aiosqlite:///{sqlite_file}"
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


class Storage:
    """The conductor's database: engine, dialect facts and the write-transaction helper."""

    def __init__(self, url: str, *, schema: str | None = None, pool_size: int = 5) -> None:
        self.url = url
        self.schema = schema
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}
        if self.is_sqlite:
            Path(make_url(url).database or "").parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs["pool_size"] = pool_size
            if schema:
                kwargs["connect_args"] = {"server_settings": {"search_path": schema}}
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    async def prepare(self) -> None:
        """Create the PostgreSQL schema if one is configured (tests use one per run)."""
        if self.schema and not self.is_sqlite:
            from sqlalchemy import text

            bare = create_async_engine(self.url)
            try:
                async with bare.begin() as conn:
                    await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
            finally:
                await bare.dispose()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """All-or-nothing write: commit at the end of the block, roll back on any error."""
        lock = self._write_lock or contextlib.nullcontext()
        async with lock, self.engine.begin() as conn:
            tx = Tx(conn)
            yield tx
        for callback in tx._after_commit:
            callback()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    async def close(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
