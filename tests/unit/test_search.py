"""The xyOps search languages compiled to SQL, checked against a real SQLite table."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import Column, Float, MetaData, String, Table, create_engine, insert, select

from sundial.storage.search import QueryError, SearchColumn, SearchIndex, compile_query, normalize_words

meta = MetaData()
items = Table("items", meta, Column("id", String, primary_key=True), Column("action", String),
              Column("keywords", String), Column("epoch", Float))
INDEX = SearchIndex({"action": SearchColumn(items.c.action, "exact"),
                     "keywords": SearchColumn(items.c.keywords, "words"),
                     "date": SearchColumn(items.c.epoch, "date")}, default="keywords")


@pytest.fixture(scope="module")
def engine():  # type: ignore[no-untyped-def]
    eng = create_engine("sqlite://")
    meta.create_all(eng)
    now = time.time()
    rows = [("a1", "tag_create", ["admin", "prod"], now), ("a2", "tag_delete", ["bob", "prod"], now - 86400 * 3),
            ("a3", "user_login", ["admin", "10.0.0.1"], now - 60)]
    with eng.begin() as conn:
        for id_, action, words, epoch in rows:
            conn.execute(insert(items).values(id=id_, action=action, keywords=normalize_words(words), epoch=epoch))
    return eng


def ids(engine, query: str) -> list[str]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return sorted(r.id for r in conn.execute(select(items.c.id).where(compile_query(query, INDEX))))


@pytest.mark.parametrize("query,expected", [
    ("*", ["a1", "a2", "a3"]),
    ("", ["a1", "a2", "a3"]),
    ("action:tag_create", ["a1"]),
    ("action:tag_create|tag_delete", ["a1", "a2"]),
    ("prod", ["a1", "a2"]),
    ("keywords:admin action:user_login", ["a3"]),
    ("keywords:10.0.0.1", ["a3"]),
    ("date:today", ["a1", "a3"]),
    ('(action = "tag_delete" | keywords =~ "admin")', ["a1", "a2", "a3"]),
    ('((action = "tag_create") | (action = "user_login")) & (keywords !~ "prod")', ["a3"]),
    ('(keywords = "prod" & action =~ "tag_")', ["a1", "a2"]),
])
def test_queries(engine, query: str, expected: list[str]) -> None:  # type: ignore[no-untyped-def]
    assert ids(engine, query) == expected


@pytest.mark.parametrize("query", ["nosuch:x", '(action = unquoted)', "(action = \"x\"", "date:>notadate",
                                   "x" * 9000, "(" * 40 + 'action = "x"' + ")" * 40])
def test_bad_queries_are_clear_errors(query: str) -> None:
    with pytest.raises(QueryError):
        compile_query(query, INDEX)
