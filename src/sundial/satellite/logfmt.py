"""The agent's log rows in the conductor's bracket-column format (config.md §5.1).

`[hires_epoch][date][hostname][pid][component][category][code][msg][data]`, so the same
grep/awk tooling (and `admin_search_logs`-style parsing) reads both sides. The agent keeps
Python's `logging` calls; this formatter maps each record onto the columns:

| logging level | category | code |
|---|---|---|
| ERROR, CRITICAL | `error` | `error` / `critical` (or `extra={"code": ...}`) |
| WARNING | `error` | `warning` |
| INFO | `debug` | 3 |
| DEBUG | `debug` | 9 |

An exception's traceback goes to the `data` column as JSON. The row itself comes from
:mod:`sundial.logrows`, which the conductor's logs use too.
"""

from __future__ import annotations

import logging
import socket
import time
import traceback
from typing import Any

from sundial.logrows import format_row

DEFAULT_COLUMNS = ["hires_epoch", "date", "hostname", "pid", "component", "category", "code", "msg", "data"]
COMPONENT = "Satellite"


def _category_and_code(record: logging.LogRecord) -> tuple[str, Any]:
    code = getattr(record, "code", None)
    if record.levelno >= logging.WARNING:
        return "error", code or record.levelname.lower()
    return "debug", code or (3 if record.levelno >= logging.INFO else 9)


class BracketFormatter(logging.Formatter):
    """`logging` records as bracket-column rows (no trailing newline: the handler adds it)."""

    def __init__(self, columns: list[str] | None = None, hostname: str | None = None,
                 component: str = COMPONENT) -> None:
        super().__init__()
        self.columns = list(columns or DEFAULT_COLUMNS)
        self.hostname = (hostname or socket.gethostname()).lower()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        category, code = _category_and_code(record)
        data: Any = getattr(record, "data", None)
        if record.exc_info and record.exc_info[0] is not None:
            data = {"exception": "".join(traceback.format_exception_only(*record.exc_info[:2])).strip(),
                    "traceback": traceback.format_exception(*record.exc_info)}
        return format_row(self.columns, {
            "hires_epoch": record.created,
            "date": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created)),
            "hostname": self.hostname, "pid": record.process, "component": self.component,
            "category": category, "code": code, "msg": record.getMessage(), "data": data,
        })
