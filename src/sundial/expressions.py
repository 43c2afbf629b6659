"""JEXL expressions (the dialect of xyOps targets, alerts and templates) behind one small API.

Parsing is far slower than evaluating, so parsed expressions are cached. The xyOps helper
functions (`bytes`, `pct`, `encode`, ...) are added with JavaScript semantics. Wrapped here
so the engine can be swapped without touching its callers.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from pyjexl import JexlExtended

MAX_EXPRESSION_LENGTH = 4096


class ExpressionError(ValueError):
    pass


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def js_round(value: Any) -> float:
    """JavaScript Math.round: halves go up (Python rounds them to even)."""
    return float(math.floor(_num(value) + 0.5))


def js_int(value: Any) -> int:
    """parseInt: leading integer of the text, else 0."""
    match = re.match(r"\s*([-+]?\d+)", str(value))
    return int(match.group(1)) if match else 0


def human_bytes(value: Any) -> str:
    size = float(js_int(value))
    for unit in ("bytes", "K", "MB", "GB", "TB"):
        if abs(size) < 1024 or unit == "TB":
            return f"{int(size)} {unit}" if unit == "bytes" else f"{round(size, 1):g} {unit}"
        size /= 1024
    return str(size)


def pct(value: Any, maximum: Any = 100, floor: Any = False) -> str:
    ratio = _num(value) / (_num(maximum) or 100) * 100
    return f"{math.floor(ratio) if floor else round(ratio)}%"


def short_float(value: Any) -> float:
    number = _num(value)
    return 0.0 if math.isnan(number) else round(number, 2)


def find_items(items: Any, key: str, substring: Any) -> list[Any]:
    if not isinstance(items, list):
        return []
    return [i for i in items if isinstance(i, dict) and str(substring) in str(i.get(key, ""))]


def includes(haystack: Any, needle: Any) -> bool:
    if isinstance(haystack, str):
        return str(needle) in haystack
    if isinstance(haystack, list):
        return needle in haystack
    return False


def matches(text: Any, pattern: Any) -> bool:
    if text is None:
        return False
    try:
        return re.search(str(pattern), str(text)) is not None
    except re.error:
        return False


XYOPS_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": lambda *a: min(_num(x) for x in a), "max": lambda *a: max(_num(x) for x in a),
    "floor": lambda x: math.floor(_num(x)), "ceil": lambda x: math.ceil(_num(x)), "round": js_round,
    "clamp": lambda v, lo, hi: max(_num(lo), min(_num(hi), _num(v))), "bytes": human_bytes,
    "number": lambda v: f"{js_int(v):,}" if v else 0, "pct": pct, "integer": js_int, "float": short_float,
    "stringify": lambda v: json.dumps(v, separators=(",", ":"), default=str),
    "encode": lambda v: quote(str(v), safe="-_.!~*'()"),
    "count": lambda v: len(v) if isinstance(v, list | dict | str) else 0,
    "find": find_items, "includes": includes, "match": matches,
}


def make_engine(extra: dict[str, Callable[..., Any]] | None = None) -> JexlExtended:
    from pyjexl import JexlExtended

    engine = JexlExtended()
    for name, fn in {**XYOPS_FUNCTIONS, **(extra or {})}.items():
        engine.add_function(name, fn)
    return engine


_EXTRA: dict[str, Callable[..., Any]] = {}


@functools.cache
def _engine() -> JexlExtended:
    """Built on the first expression: the parser library costs ~3 MiB and ~20 ms at import, and a
    conductor with no conditions, monitors or templated hooks never needs it."""
    return make_engine(_EXTRA)


def register_function(name: str, fn: Callable[..., Any]) -> None:
    """Context-aware helpers such as `server(id)` and `event(id)` are added by their rooms."""
    _EXTRA[name] = fn
    if _engine.cache_info().currsize:
        _engine().add_function(name, fn)


@functools.lru_cache(maxsize=4096)
def _parsed(expression: str) -> Any:
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(f"Expression is too long (limit {MAX_EXPRESSION_LENGTH} characters)")
    try:
        return _engine().parse(expression)
    except Exception as exc:  # the parser raises several types for bad input
        missing = expression.count("(") - expression.count(")")
        if 0 < missing <= 16:  # xyOps's parser accepts groups left open at the end of input
            try:
                return _engine().parse(expression + ")" * missing)
            except Exception:
                pass
        raise ExpressionError(f"Invalid expression: {exc}") from None


def compile_check(expression: str) -> None:
    """Raise ExpressionError when the expression does not parse (save-time validation)."""
    _parsed(expression)


def evaluate(expression: str, context: dict[str, Any]) -> Any:
    """Evaluate with missing paths as None; errors become ExpressionError."""
    parsed = _parsed(expression)
    try:
        return _engine().evaluate(parsed, context)
    except Exception as exc:
        raise ExpressionError(str(exc)) from None


def is_present_null(expression: str, context: dict[str, Any]) -> bool:
    """True when `expression` is a plain path (`a.b.c`) whose last key exists and holds null.

    Why: Python has one None where JavaScript has null and undefined, and templates render
    them differently (secrets-and-webhooks.md §6): a stored null prints "null", a missing
    path prints the fallback. JEXL has no null literal, so `{{ null }}` is a missing path.
    """
    from pyjexl.parser import Identifier

    node = _parsed(expression)
    if not isinstance(node, Identifier) or node.relative:
        return False
    try:
        subject = _engine().evaluate(node.subject, context) if node.subject is not None else context
    except Exception:
        return False
    if isinstance(subject, list):  # pyjexl resolves a property of a list on its first item
        subject = subject[0] if subject else None
    return isinstance(subject, dict) and node.value in subject and subject[node.value] is None
