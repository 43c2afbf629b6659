"""Migrations: the fast-path constant matches the newest revision; both engines reach head; a
fresh database gets the head schema without Alembic, identical to replaying every revision."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect
from tests.harness import drop_pg_schema, postgres_reachable, postgres_url

from sundial.storage.engine import Storage, database_url
from sundial.storage.migrate import HEAD_REVISION, _upgrade, alembic_config, alembic_head, create_fresh, migrate
from sundial.storage.schema import users


def test_head_constant_matches_newest_revision_file() -> None:
    assert alembic_head() == HEAD_REVISION, "update HEAD_REVISION in sundial/storage/migrate.py"


def _shape(sync: Any) -> dict[str, Any]:
    """Tables, their columns (name, type, nullable, default), primary keys, indexes and uniques."""
    found = inspect(sync)
    shape: dict[str, Any] = {}
    for table in sorted(found.get_table_names()):
        shape[table] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                        for c in found.get_columns(table)],
            "pk": found.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                              for i in found.get_indexes(table)),
            "uniques": sorted(str(u["column_names"]) for u in found.get_unique_constraints(table)),
        }
    return shape


async def _schema_both_ways(url: str, schemas: tuple[str, str] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    fresh = Storage(url, schema=schemas[0] if schemas else None)
    replayed = Storage(url.replace("fresh.db", "replayed.db"), schema=schemas[1] if schemas else None)
    try:
        await fresh.prepare()
        await replayed.prepare()
        assert await migrate(fresh) == (None, HEAD_REVISION)
        async with replayed.engine.begin() as conn:
            await conn.run_sync(_upgrade, alembic_config())
        async with fresh.engine.connect() as a, replayed.engine.connect() as b:
            return await a.run_sync(_shape), await b.run_sync(_shape)
    finally:
        await fresh.close()
        await replayed.close()


async def test_fresh_sqlite_schema_equals_every_revision_replayed(tmp_path: Path) -> None:
    fresh, replayed = await _schema_both_ways(database_url("", tmp_path / "fresh.db"), None)
    assert fresh == replayed
    assert "sundial_schema_version" in fresh


@pytest.mark.postgres
async def test_fresh_postgres_schema_equals_every_revision_replayed() -> None:
    if not postgres_reachable():
        pytest.skip("PostgreSQL is not running at 127.0.0.1:5432")
    names = (f"t_{uuid.uuid4().hex[:12]}", f"t_{uuid.uuid4().hex[:12]}")
    try:
        fresh, replayed = await _schema_both_ways(database_url(postgres_url(), Path("unused")), names)
    finally:
        for name in names:
            drop_pg_schema(name)
    assert fresh == replayed


async def test_a_database_with_some_tables_is_left_to_alembic(tmp_path: Path) -> None:
    storage = Storage(database_url("", tmp_path / "partial.db"))
    try:
        async with storage.engine.begin() as conn:
            await conn.run_sync(users.create)
        assert await create_fresh(storage) is False
    finally:
        await storage.close()


def test_first_start_does_not_import_alembic(tmp_path: Path) -> None:
    code = ("import asyncio, sys; from sundial.storage.engine import Storage, database_url; "
            "from sundial.storage.migrate import migrate; "
            f"s = Storage(database_url('', __import__('pathlib').Path({str(tmp_path / 'x.db')!r}))); "
            "print(asyncio.run(migrate(s))); print('alembic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.split() == ["(None,", f"'{HEAD_REVISION}')", "False"]
