"""Migrations: the fast-path constant matches the newest revision; both engines reach head."""

from __future__ import annotations

from sundial.storage.migrate import HEAD_REVISION, alembic_head


def test_head_constant_matches_newest_revision_file() -> None:
    assert alembic_head() == HEAD_REVISION, "update HEAD_REVISION in sundial/storage/migrate.py"
