"""The XYBK backup format (xyOps Data Export v1.0): NDJSON lines, optionally gzipped.

Three kinds of entry: a storage put `{"key", "value"}`, a storage command `{"cmd", "args"}`,
and a database record `{"index", "id", "record"}`; `#` lines are comments. Lists are written
as xyOps's paged lists (header key plus page keys) after a `listDelete`, whatever Sundial
stores internally, so xyOps and Sundial read each other's files.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from sundial import __version__

HEADER = "# xyOps Data Export v1.0"
FOOTER = "# End of file"
DEFAULT_PAGE_SIZE = 100
ROSTER_PAGE_SIZE = 1000
# Storage commands an XYBK file may carry (xyOps's list); others are refused line by line.
ALLOWED_COMMANDS = frozenset({
    "put", "copy", "rename", "delete", "listCreate", "listPush", "listUnshift", "listCopy", "listRename",
    "listDelete", "hashCreate", "hashPut", "hashUpdate", "hashCopy", "hashRename", "hashDelete", "hashDeleteAll",
})
_BINARY = re.compile(r"\.\w+$")
_KEY_DROP = re.compile(r"[^A-Za-z0-9_./-]")


class LineError(ValueError):
    """One unusable line; the message is what the import report shows."""


def is_binary_key(key: str) -> bool:
    """xyOps's rule: a key ending in a file extension holds raw bytes (base64 in the file)."""
    return bool(_BINARY.search(key))


def normalize_key(key: str) -> str:
    """Storage key rules: lower case, `[a-z0-9_./-]` only, single slashes, no edge slashes."""
    key = _KEY_DROP.sub("", str(key)).lower()
    key = re.sub(r"/{2,}", "/", key)
    return key.strip("/")


def dumps(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def header_lines(hostname: str | None = None) -> list[str]:
    """The exporter's header: xyOps's first line verbatim, so xyOps accepts the file."""
    return [HEADER, f"# Hostname: {hostname or socket.gethostname()}",
            f"# Date/Time: {time.strftime('%a %b %d %Y %H:%M:%S GMT%z')}", "# Format: NDJSON",
            f"# Generator: Sundial {__version__}", ""]


def list_lines(key: str, items: list[Any], page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[str]:
    """A whole list as xyOps writes it: `listDelete`, header, then one put per page."""
    pages = [items[i:i + page_size] for i in range(0, len(items), page_size)] or [[]]
    yield dumps({"cmd": "listDelete", "args": [key, False]})
    yield dumps({"key": key, "value": {"type": "list", "length": len(items), "page_size": page_size,
                                       "first_page": 0, "last_page": len(pages) - 1}})
    for number, page in enumerate(pages):
        yield dumps({"key": f"{key}/{number}", "value": {"type": "list_page", "items": page}})


@dataclass(frozen=True)
class Put:
    key: str
    value: Any


@dataclass(frozen=True)
class Command:
    cmd: str
    args: list[Any]


@dataclass(frozen=True)
class DbRecord:
    index: str
    id: str
    record: dict[str, Any]


Entry = Put | Command | DbRecord


def is_json_line(line: str | bytes) -> bool:
    """Only lines whose first non-space character is `{` are entries (xyOps's rule)."""
    if isinstance(line, bytes):
        return line.lstrip().startswith(b"{")
    return line.lstrip().startswith("{")


def parse_line(line: str | bytes) -> Entry | None:
    """One line as an entry; None for comments, blanks and other non-JSON text; LineError if unusable."""
    if not is_json_line(line):
        return None
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise LineError(f"Invalid JSON: {str(exc).split(':', 1)[0]}") from None
    if not isinstance(data, dict):
        raise LineError("Not a JSON object")
    if "cmd" in data:
        return _command(data)
    if "index" in data:
        return _db_record(data)
    if "key" in data:
        if not isinstance(data["key"], str) or not normalize_key(data["key"]):
            raise LineError("Storage put with an empty or non-string key")
        return Put(normalize_key(data["key"]), data.get("value"))
    raise LineError("Unknown format (expected key/value, cmd/args or index/id/record)")


def _command(data: dict[str, Any]) -> Command:
    cmd, args = data.get("cmd"), data.get("args")
    if not isinstance(cmd, str) or cmd not in ALLOWED_COMMANDS:
        raise LineError(f"Storage command not allowed: {str(cmd)[:40]}")
    if not isinstance(args, list) or not args or not isinstance(args[0], str):
        raise LineError(f"Storage command {cmd} needs an args array starting with a key")
    return Command(cmd, [normalize_key(args[0]), *args[1:]])


def _db_record(data: dict[str, Any]) -> DbRecord:
    index, rid, record = data.get("index"), data.get("id"), data.get("record")
    if not isinstance(index, str) or not isinstance(rid, str) or not rid:
        raise LineError("Database record needs string index and id")
    if not isinstance(record, dict):
        raise LineError(f"Database record {index}/{rid[:40]} has no record object")
    return DbRecord(index, rid, record)
