"""Reading the bracket-column component logs back (`admin_search_logs`).

A log is read as a stream, live file or gzip archive alike, keeping only the last N matching
rows, so searching a large log costs one pass and bounded memory. Runs in a thread.
"""

from __future__ import annotations

import gzip
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sundial.logrows import parse_row


@dataclass(frozen=True)
class LogQuery:
    match: str = ""
    regex: bool = False
    case: bool = False
    rows: int = 100
    cols: tuple[str, ...] = ()

    def matcher(self) -> re.Pattern[str]:
        """Raises re.error for a bad pattern (the API reports it)."""
        pattern = self.match if self.regex else re.escape(self.match)
        return re.compile(pattern, 0 if self.case else re.IGNORECASE)


def search_log(path: Path, columns: list[str], query: LogQuery) -> tuple[list[dict[str, str]], int]:
    """(the last `rows` matching rows, as column dicts with `cols` only; rows in the file).

    A missing file is an empty log, as xyOps answers for a day with no archive.
    """
    wanted = list(query.cols) or columns
    matcher = query.matcher() if query.match else None
    kept: deque[str] = deque(maxlen=query.rows)
    total = 0
    for line in _lines(path):
        if not line.strip():
            continue
        total += 1
        if matcher is None or matcher.search(line):
            kept.append(line)
    rows = []
    for line in kept:
        row = parse_row(line, columns)
        rows.append({col: row.get(col, "") for col in wanted})
    return rows, total


def _lines(path: Path) -> Iterator[str]:
    if not path.is_file():
        return
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
            yield from handle
    except (OSError, EOFError):  # a truncated archive: what was read still counts
        return
