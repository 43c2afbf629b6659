"""JEXL expressions and `{{ }}` templates, with golden outputs written from the spec."""

from __future__ import annotations

import pytest

from sundial.expressions import ExpressionError, compile_check, evaluate
from sundial.templates import expand

CTX = {"job": {"id": "j1", "code": 0, "tags": ["a", "b"], "elapsed": 2.5},
       "servers": [{"hostname": "web1", "cpu": 10}, {"hostname": "db1", "cpu": 90}], "n": 1048576}


@pytest.mark.parametrize("expr,expected", [
    ("job.code == 0", True),
    ("job.missing", None),
    ("job.missing.deeper", None),
    ('servers[.cpu > 50][0].hostname', "db1"),
    ("max(1, 5, 3)", 5),
    ("round(2.5)", 3),
    ("floor(2.7)", 2),
    ("clamp(150, 0, 100)", 100),
    ("bytes(n)", "1 MB"),
    ("number(n)", "1,048,576"),
    ("pct(1, 4)", "25%"),
    ("integer('42px')", 42),
    ("float(3.14159)", 3.14),
    ("stringify(job.tags)", '["a","b"]'),
    ("encode('a b&c')", "a%20b%26c"),
    ("count(job.tags)", 2),
    ("count(job.missing)", 0),
    ("includes(job.tags, 'b')", True),
    ("match(job.id, '^j\\\\d$')", True),
    ("(job.elapsed > 1", True),
])
def test_golden_values(expr: str, expected: object) -> None:
    assert evaluate(expr, CTX) == expected


@pytest.mark.parametrize("expr", ["jobs >", "== 3", "jobs >>> 2 ]", "x" * 5000])
def test_bad_expressions_refused(expr: str) -> None:
    with pytest.raises(ExpressionError):
        compile_check(expr)


def test_templates_expand_repeatedly_and_report_errors() -> None:
    ctx = {"job": {"id": "j1", "link": "{{ job.id }}"}, "obj": {"a": 1}}
    assert expand("id={{ job.id }} link={{ job.link }}", ctx) == "id=j1 link=j1"
    assert expand("{{ obj }} {{ nothing }}|", ctx) == '{"a":1} |'
    assert expand("{{ job.( }}", ctx).startswith("(ERROR: ")
    # JEXL has no null literal: `null` is a missing name and expands to the undefined value
    assert expand("{{ true }} {{ null }}|", ctx) == "true |"
    assert expand("{{ null }}", ctx, "N/A") == "N/A"


def test_a_stored_null_prints_null_and_a_missing_path_the_fallback() -> None:
    """secrets-and-webhooks.md §6: undefined -> the fallback, null -> "null" (as JavaScript tells them apart)."""
    ctx = {"event": None, "job": {"code": None, "tags": [{"x": None}]}, "server": {"title": "s"}}
    assert expand("{{ event }}|{{ job.code }}|{{ job.tags.x }}", ctx, "n/a") == "null|null|null"
    assert expand("{{ job.missing }}|{{ server.hostname }}|{{ nothing.at.all }}", ctx, "n/a") == "n/a|n/a|n/a"
    assert expand("{{ event.title }}", ctx, "n/a") == "n/a"  # a property of null is undefined
