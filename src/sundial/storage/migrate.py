"""Apply Alembic migrations at start-up, on the conductor's own async engine.

Alembic is imported only when the schema is behind: a conductor whose database is at
`HEAD_REVISION` starts without paying for it (a test keeps the constant equal to the
newest revision file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import text

from sundial.storage.engine import Storage

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "sundial_schema_version"
HEAD_REVISION = "0005"


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
    async with storage.engine.begin() as conn:
        await conn.run_sync(_upgrade, alembic_config())
    return before, await _current(storage)
