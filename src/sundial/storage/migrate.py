"""Apply Alembic migrations at start-up, on the conductor's own async engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from sundial.storage.engine import Storage

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "sundial_schema_version"


def alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _upgrade(sync_conn: Any, cfg: AlembicConfig) -> None:
    cfg.attributes["connection"] = sync_conn
    command.upgrade(cfg, "head")


def _current(sync_conn: Any) -> str | None:
    context = MigrationContext.configure(sync_conn, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


async def migrate(storage: Storage) -> tuple[str | None, str | None]:
    """Bring the schema to head; returns (revision before, revision after)."""
    cfg = alembic_config()
    head = ScriptDirectory.from_config(cfg).get_current_head()
    async with storage.engine.begin() as conn:
        before = await conn.run_sync(_current)
        if before != head:
            await conn.run_sync(_upgrade, cfg)
    return before, head
