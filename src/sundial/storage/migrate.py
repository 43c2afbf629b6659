"""Apply Alembic migrations at start-up, on the conductor's own async engine.

Alembic is imported only when an existing schema is behind: a conductor whose database is at
`HEAD_REVISION` starts without paying for it (a test keeps the constant equal to the
newest revision file), and an empty database gets the head schema straight from
`schema.metadata`, stamped with `HEAD_REVISION` in Alembic's own version table (a test checks
that this gives the same tables and indexes as running every revision).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table, inspect, text

from sundial.storage.engine import Storage
from sundial.storage.schema import metadata

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "sundial_schema_version"
HEAD_REVISION = "0006"

# Alembic's version table, declared as Alembic creates it, for stamping a fresh database.
_version_table = Table(VERSION_TABLE, MetaData(), Column("version_num", String(32), nullable=False),
                       PrimaryKeyConstraint("version_num", name=f"{VERSION_TABLE}_pkc"))


def alembic_config() -> Any:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def alembic_head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _upgrade(sync_conn: Any, cfg: Any) -> None:
    from alembic import command

    cfg.attributes["connection"] = sync_conn
    command.upgrade(cfg, "head")


async def _current(storage: Storage) -> str | None:
    try:
        async with storage.engine.connect() as conn:
            row = (await conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))).first()
    except Exception:  # no version table yet: an empty database
        return None
    return str(row[0]) if row else None


async def migrate(storage: Storage) -> tuple[str | None, str | None]:
    """Bring the schema to head; returns (revision before, revision after)."""
    before = await _current(storage)
    if before == HEAD_REVISION:
        return before, before
    if before is None and await create_fresh(storage):
        return before, await _current(storage)
    async with storage.engine.begin() as conn:
        await conn.run_sync(_upgrade, alembic_config())
    return before, await _current(storage)


async def create_fresh(storage: Storage) -> bool:
    """Create the head schema on a database holding none of our tables; False if it holds some.

    Why not Alembic here: importing it and replaying every revision costs ~100 ms and several
    MiB on first start, for the same tables the metadata describes.
    """
    async with storage.engine.begin() as conn:
        existing = set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
        if existing & set(metadata.tables):
            return False
        await conn.run_sync(metadata.create_all)
        await conn.run_sync(_version_table.create)
        await conn.execute(_version_table.insert().values(version_num=HEAD_REVISION))
    return True
