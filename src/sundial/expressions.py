"""JEXL expressions (the dialect of xyOps targets, alerts and templates) behind one small API.

Parsing is ~70x slower than evaluating, so parsed expressions are cached. Wrapped here so
the engine can be swapped without touching its callers.
"""

from __future__ import annotations

import functools
from typing import Any

from pyjexl import JEXL

_ENGINE = JEXL()
MAX_EXPRESSION_LENGTH = 4096


class ExpressionError(ValueError):
    pass


@functools.lru_cache(maxsize=4096)
def _parsed(expression: str) -> Any:
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(f"Expression is too long (limit {MAX_EXPRESSION_LENGTH} characters)")
    try:
        return _ENGINE.parse(expression)
    except Exception as exc:  # the parser raises several types for bad input
        raise ExpressionError(f"Invalid expression: {exc}") from None


def compile_check(expression: str) -> None:
    """Raise ExpressionError when the expression does not parse (save-time validation)."""
    _parsed(expression)


def evaluate(expression: str, context: dict[str, Any]) -> Any:
    """Evaluate with missing paths as None; errors become ExpressionError."""
    parsed = _parsed(expression)
    try:
        return _ENGINE.evaluate(parsed, context)
    except Exception as exc:
        raise ExpressionError(str(exc)) from None
