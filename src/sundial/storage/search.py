"""The xyOps search languages compiled to SQL: simple `col:value` queries and PxQL.

Simple: space-separated `column:value` clauses ANDed, `a|b` ORs within a column, a bare
word searches the default column, `*` matches everything, numbers and dates take
`<`, `<=`, `>`, `>=`. PxQL: the whole query in parentheses, `(col OP "value")` terms joined
by `&` / `|` and nested. Word columns are stored as ` w1 w2 ` (lower case, space-padded),
so a word match is one indexed-friendly LIKE.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, false, not_, or_, true
from sqlalchemy.sql.elements import ColumnClause

MAX_QUERY_LENGTH = 8192
MAX_CLAUSES = 64
_WORD_RE = re.compile(r"[^\w.@:-]+")


class QueryError(ValueError):
    """A query the user can fix; the message says what is wrong."""


@dataclass(frozen=True)
class SearchColumn:
    column: ColumnClause[Any] | Any
    kind: Literal["words", "exact", "number", "date"] = "words"


@dataclass(frozen=True)
class SearchIndex:
    columns: dict[str, SearchColumn]
    default: str


def normalize_words(values: Any) -> str:
    """Store words as ` a b c ` so `% b %` matches exactly one word."""
    if values is None:
        return " "
    items = values if isinstance(values, list | tuple | set) else [values]
    words: list[str] = []
    for item in items:
        words.extend(w for w in _WORD_RE.split(str(item).lower()) if w)
    return " " + " ".join(dict.fromkeys(words)) + " "


def parse_time_value(text: str) -> tuple[float, float | None]:
    """A value for a date column: (start, end-of-day or None for an instant)."""
    lowered = text.lower()
    if lowered == "now":
        return time.time(), None
    if lowered == "today":
        day = datetime.now().replace(hour=0, minute=0, second=0, microsecond=0)
        return day.timestamp(), (day + timedelta(days=1)).timestamp()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            day = datetime.strptime(text, "%Y-%m-%d")
        except ValueError:
            raise QueryError(f"Invalid date in query: {text}") from None
        return day.timestamp(), (day + timedelta(days=1)).timestamp()
    try:
        return float(text), None
    except ValueError:
        raise QueryError(f"Invalid number in query: {text}") from None


def compile_query(query: str, index: SearchIndex) -> ColumnElement[bool]:
    text = (query or "").strip()
    if len(text) > MAX_QUERY_LENGTH:
        raise QueryError(f"Query is too long (limit {MAX_QUERY_LENGTH} characters)")
    if not text or text == "*":
        return true()
    if text.startswith("("):
        return _PxqlParser(text, index).parse()
    return _compile_simple(text, index)


def _compile_simple(text: str, index: SearchIndex) -> ColumnElement[bool]:
    clauses: list[ColumnElement[bool]] = []
    tokens = text.split()
    if len(tokens) > MAX_CLAUSES:
        raise QueryError(f"Query has too many clauses (limit {MAX_CLAUSES})")
    for token in tokens:
        if token == "*":
            continue
        name, sep, value = token.partition(":")
        if not sep:
            name, value = index.default, token
        column = index.columns.get(name)
        if column is None:
            raise QueryError(f"Unknown search column: {name}")
        alternatives = [_simple_term(column, alt) for alt in value.split("|") if alt]
        clauses.append(or_(*alternatives) if alternatives else true())
    return and_(true(), *clauses)


def _simple_term(column: SearchColumn, value: str) -> ColumnElement[bool]:
    match = re.match(r"^(<=|>=|<|>)(.*)$", value)
    if column.kind == "words":
        return _contains_word(column, value)
    if column.kind == "exact":
        return column.column == value
    if match:
        return _compare(column, match.group(1), match.group(2))
    return _compare(column, "=", value)


def _contains_word(column: SearchColumn, value: str) -> ColumnElement[bool]:
    words = normalize_words(value).split()
    if not words:
        return true()
    return and_(*[column.column.like(f"% {_escape(w)} %", escape="\\") for w in words])


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _compare(column: SearchColumn, op: str, value: str) -> ColumnElement[bool]:
    if column.kind in ("words", "exact"):
        raise QueryError(f"Operator {op} needs a number or date column")
    start, end = parse_time_value(value) if column.kind == "date" else (_number(value), None)
    col = column.column
    if op in ("=", "=="):
        return and_(col >= start, col < end) if end is not None else col == start
    if op == "<":
        return col < start
    if op == "<=":
        return col < end if end is not None else col <= start
    if op == ">":
        return col >= end if end is not None else col > start
    return col >= start


def _number(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise QueryError(f"Invalid number in query: {value}") from None


class _PxqlParser:
    """Recursive descent over `(col OP "value")`, `&`, `|` and parentheses."""

    _TOKEN = re.compile(r'\s*(\(|\)|&|\||"(?:[^"\\]|\\.)*"|=~|!~|==|<=|>=|=|<|>|[\w.]+)')

    def __init__(self, text: str, index: SearchIndex) -> None:
        self.index = index
        self.tokens = self._tokenize(text)
        self.pos = 0

    def _tokenize(self, text: str) -> list[str]:
        tokens, pos = [], 0
        while pos < len(text):
            match = self._TOKEN.match(text, pos)
            if not match or not match.group(1):
                if text[pos:].strip() == "":
                    break
                raise QueryError(f"Invalid query syntax near: {text[pos:pos + 20]}")
            tokens.append(match.group(1))
            pos = match.end()
        if len(tokens) > MAX_CLAUSES * 6:
            raise QueryError(f"Query has too many clauses (limit {MAX_CLAUSES})")
        return tokens

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self) -> str:
        token = self._peek()
        if token is None:
            raise QueryError("Query ended unexpectedly")
        self.pos += 1
        return token

    def parse(self) -> ColumnElement[bool]:
        expr = self._expr(0)
        if self._peek() is not None:
            raise QueryError(f"Unexpected token in query: {self._peek()}")
        return expr

    def _expr(self, depth: int) -> ColumnElement[bool]:
        if depth > 32:
            raise QueryError("Query is nested too deeply")
        left = self._term(depth)
        while self._peek() in ("&", "|"):
            op = self._take()
            right = self._term(depth)
            left = and_(left, right) if op == "&" else or_(left, right)
        return left

    def _term(self, depth: int) -> ColumnElement[bool]:
        if self._take() != "(":
            raise QueryError("Expected ( in query")
        if self._peek() == "(":
            inner = self._expr(depth + 1)
        else:
            inner = self._comparison()
            while self._peek() in ("&", "|"):
                op = self._take()
                right = self._term(depth + 1) if self._peek() == "(" else self._comparison()
                inner = and_(inner, right) if op == "&" else or_(inner, right)
        if self._take() != ")":
            raise QueryError("Expected ) in query")
        return inner

    def _comparison(self) -> ColumnElement[bool]:
        name, op, raw = self._take(), self._take(), self._take()
        column = self.index.columns.get(name)
        if column is None:
            raise QueryError(f"Unknown search column: {name}")
        if not (raw.startswith('"') and raw.endswith('"')):
            raise QueryError(f"Query values must be quoted: {raw}")
        value = raw[1:-1].replace('\\"', '"')
        if op in ("=", "==", "=~", "!~"):
            if column.kind == "words":
                term = _contains_word(column, value)
            elif column.kind == "exact":
                term = column.column.contains(value, autoescape=True) if op == "=~" else column.column == value
            else:
                term = _compare(column, "=", value)
            return not_(term) if op == "!~" else term
        if op in ("<", "<=", ">", ">="):
            return _compare(column, op, value)
        return false()
