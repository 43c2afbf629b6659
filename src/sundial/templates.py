"""`{{ expression }}` macros, as used in params, web hooks, labels and notification text.

Expansion repeats (up to 32 passes) so a value that itself holds a macro is expanded too,
as xyOps does; an expression error becomes `(ERROR: ...)` in the text instead of failing.
A missing path prints the caller's undefined value; a path that holds null prints "null".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from sundial.expressions import ExpressionError, evaluate, is_present_null

_MACRO = re.compile(r"\{\{(.+?)\}\}")
MAX_PASSES = 32


def _stringify(value: Any) -> str:
    if isinstance(value, dict | list):
        text = orjson.dumps(value, default=str).decode()
        return _MACRO.sub(lambda m: m.group(1).strip(), text)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def expand(text: str, context: dict[str, Any], undefined: str = "",
           value_filter: Callable[[Any], Any] | None = None) -> str:
    for _ in range(MAX_PASSES):
        if "{{" not in text or not _MACRO.search(text):
            return text
        text = _MACRO.sub(lambda m: _replace(m.group(1).strip(), context, undefined, value_filter), text)
    return text


def _replace(expr: str, context: dict[str, Any], undefined: str,
             value_filter: Callable[[Any], Any] | None) -> str:
    try:
        value = evaluate(expr, context)
    except ExpressionError as exc:
        return f"(ERROR: {exc})"
    if value is None and not is_present_null(expr, context):
        return undefined  # a missing path (JavaScript's undefined); a stored null prints "null"
    if value_filter is not None:
        value = value_filter(value)
    return _stringify(value)
