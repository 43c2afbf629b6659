"""One bracket-column log row (`[c1][c2]...[cN]`, config.md §5.1), for the conductor and the agent.

The conductor's component logs and the satellite's own log share this format so that the same
grep/awk tooling and `admin_search_logs` read both; the module imports nothing of the conductor,
so the agent can use it too (it travels in the agent wheel).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

__all__ = ["clean", "format_row", "parse_row"]


def clean(value: Any) -> str:
    """One column's text: JSON for objects, 3 decimals for floats, no CR/LF, no `][`."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        text = orjson.dumps(value, default=str).decode()
    elif isinstance(value, float):
        text = f"{value:.3f}"
    else:
        text = str(value)
    return text.replace("\r", " ").replace("\n", " ").replace("][", "")


def format_row(columns: Iterable[str], values: dict[str, Any]) -> str:
    """The row without its line end (a file writer adds one; `logging` handlers add their own)."""
    return "".join(f"[{clean(values.get(col))}]" for col in columns)


def parse_row(line: str, columns: list[str]) -> dict[str, str]:
    """Split a row back into its named columns (what `admin_search_logs` returns)."""
    body = line.rstrip("\n")
    if body.startswith("["):
        body = body[1:]
    if body.endswith("]"):
        body = body[:-1]
    parts = body.split("][")
    return {col: parts[i] if i < len(parts) else "" for i, col in enumerate(columns)}
