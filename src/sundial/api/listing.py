"""Whole-list replies (`get_events`, `get_plugins`, `get_categories`, …) rendered once per change.

A list verb with 10,000 events spent most of its server time turning the same records into the
same 3.6 MB of JSON on every call. The body of an unfiltered reply depends only on the list's
content, so it is rendered once per list version (:meth:`ConfigList.memo`) and sent as is until
the list changes. Filtered replies, and callers who see only part of a list (category or group
limits), still build their rows per request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from sundial.storage.lists import ConfigList

MEMO_KEY = "api.list_reply"


@dataclass(frozen=True, slots=True)
class Rendered:
    """A reply whose JSON body is already rendered; the dispatcher sends ``body`` with the call's
    headers and cookies, or renders ``data()`` when the caller asked for ``pretty`` output."""

    body: bytes
    data: Callable[[], dict[str, Any]]


def list_body(rows: list[dict[str, Any]]) -> bytes:
    """Exactly what the dispatcher renders for ``{"code": 0, "rows": rows, "list": {"length": n}}``."""
    return orjson.dumps({"code": 0, "rows": rows, "list": {"length": len(rows)}}, default=str,
                        option=orjson.OPT_APPEND_NEWLINE)


def list_reply(items: ConfigList) -> Rendered:
    """The whole list as ``{code, rows, list: {length}}``, from the per-version cache."""
    return Rendered(items.memo(MEMO_KEY, list_body),
                    lambda: {"code": 0, "rows": items.all(), "list": {"length": len(items)}})
