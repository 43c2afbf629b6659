"""The plugin side of the wire protocol: read the job document, print updates and log text.

Each update is one compact JSON line carrying ``xy: 1`` and is flushed at once, so progress and the
final result reach the agent even when the plugin is killed right after printing them.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from typing import Any

import orjson

__all__ = ["PluginError", "finish", "lookup", "read_job", "send", "substitute", "text", "truthy"]

_PLACEHOLDER = re.compile(r"\[([^\[\]]+)\]")


class PluginError(Exception):
    """A failure that ends the job with ``code`` and the message as its description."""

    def __init__(self, description: str, code: int | str = 1) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


def read_job() -> dict[str, Any]:
    """The one JSON line the agent writes to our stdin (the job document)."""
    line = sys.stdin.buffer.readline()
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise PluginError(f"Could not parse the job document on STDIN: {exc}") from None
    if not isinstance(doc, dict):
        raise PluginError("The job document on STDIN is not a JSON object.")
    return doc


def send(**message: Any) -> None:
    """Print one protocol message (``xy`` added) and flush it."""
    out = sys.stdout.buffer
    out.write(orjson.dumps({"xy": 1, **message}, default=str) + b"\n")
    out.flush()


def finish(code: int | str, description: str, **extra: Any) -> None:
    """The final message: a ``code`` means complete, later lines are ignored by the agent."""
    send(code=code, description=description, **extra)


def text(line: str) -> None:
    """A line for the job log (never mistaken for JSON: it does not start with ``{``)."""
    out = sys.stdout.buffer
    out.write(line.rstrip("\n").encode("utf-8", "replace") + b"\n")
    out.flush()


def truthy(value: Any) -> bool:
    """Checkbox values arrive as bools, but hand-written jobs send "1", "true", 1 or "on"."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def lookup(doc: Mapping[str, Any], path: str) -> Any:
    """``a.b.0.c`` inside nested objects and arrays; ``None`` when any step is missing."""
    node: Any = doc
    for part in path.strip().split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def substitute(template: str, doc: Mapping[str, Any]) -> str:
    """Replace ``[path]`` placeholders with values from the job; unknown paths are left as written
    (an IPv6 literal such as ``[::1]`` in a URL must survive)."""

    def one(match: re.Match[str]) -> str:
        value = lookup(doc, match.group(1))
        if value is None:
            return match.group(0)
        if isinstance(value, dict | list):
            return orjson.dumps(value).decode("utf-8")
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return _PLACEHOLDER.sub(one, template)
