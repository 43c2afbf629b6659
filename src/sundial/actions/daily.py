"""Per-day invocation counters behind the `max_per_day` caps of web hooks, channels and e-mail.

Stored as one record per day (`stats/daily/<YYYY-MM-DD>`, expiring after two days), so a
restart does not hand out a fresh daily allowance. Counting is in memory first: the check and
the increment happen without an await between them, so two concurrent firings cannot both
take the last slot.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sundial.storage.engine import Storage
from sundial.storage.records import get_record, put_record

KEEP_SECONDS = 2 * 86400


def today() -> str:
    return time.strftime("%Y-%m-%d", time.localtime())


class DailyCounters:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._day = ""
        self._counts: dict[str, int] = {}
        self._lock = asyncio.Lock()

    async def _roll(self) -> None:
        day = today()
        if day == self._day:
            return
        async with self.storage.read() as conn:
            stored: Any = await get_record(conn, f"stats/daily/{day}")
        self._day = day
        self._counts = {k: int(v) for k, v in (stored or {}).items() if isinstance(v, int)}

    async def get(self, name: str) -> int:
        async with self._lock:
            await self._roll()
            return self._counts.get(name, 0)

    async def take(self, name: str, limit: int) -> int | None:
        """Count one use unless `limit` (> 0) is reached; returns the new count, or None if refused."""
        async with self._lock:
            await self._roll()
            count = self._counts.get(name, 0)
            if limit > 0 and count >= limit:
                return None
            self._counts[name] = count + 1
            snapshot, day = dict(self._counts), self._day
            async with self.storage.transaction() as tx:
                await put_record(self.storage, tx, f"stats/daily/{day}", snapshot, expires=time.time() + KEEP_SECONDS)
            return count + 1
