"""Today's counters: the `max_per_day` caps of web hooks, channels and e-mail, and the daily job
stats (`job_<condition>` overall and per event, server, category, plugin and group) that `day`
limits read and `dash_stats` shows.

Stored as one record per day (`stats/daily/<YYYY-MM-DD>`, expiring after two days), so a
restart does not hand out a fresh daily allowance. Counting is in memory first: the check and
the increment happen without an await between them, so two concurrent firings cannot both
take the last slot. Caps (`take`) are written at once; job stats (`add`) are written about a
second later in one write for however many jobs finished meanwhile, and on `flush`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from typing import Any

from sundial.storage.engine import Storage
from sundial.storage.records import get_record, put_record

KEEP_SECONDS = 2 * 86400
FLUSH_DELAY = 1.0


def today() -> str:
    return time.strftime("%Y-%m-%d", time.localtime())


def day_of(epoch: float) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(epoch))


class DailyCounters:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._day = ""
        self._loaded = False  # today's stored record has been read into _counts
        self._started = time.time()  # when today's counting began (`timeStart`)
        self._counts: dict[str, int] = {}
        self._unsaved: dict[str, dict[str, int]] = {}  # day -> snapshot not yet written
        self._lock = asyncio.Lock()
        self._flush_task: asyncio.Task[None] | None = None

    # -- the day ---------------------------------------------------------------------------------
    def _roll_now(self) -> None:
        """Start a new day in memory when the date changed; the old day's counts wait to be written."""
        day = today()
        if day == self._day:
            return
        if self._day and self._counts:
            self._unsaved[self._day] = dict(self._counts)
        self._day, self._counts, self._loaded, self._started = day, {}, False, time.time()

    async def _roll(self) -> None:
        """`_roll_now`, then fold in what an earlier run of the conductor stored for today."""
        self._roll_now()
        if self._loaded:
            return
        async with self.storage.read() as conn:
            stored: Any = await get_record(conn, f"stats/daily/{self._day}")
        for key, value in (stored or {}).items():
            if isinstance(value, int) and not isinstance(value, bool):
                self._counts[key] = self._counts.get(key, 0) + value
        self._loaded = True

    async def load(self) -> None:
        """Read today's stored counts (at start-up, before any launch reads `count`)."""
        async with self._lock:
            await self._roll()

    # -- reads -----------------------------------------------------------------------------------
    async def get(self, name: str) -> int:
        async with self._lock:
            await self._roll()
            return self._counts.get(name, 0)

    def count(self, name: str) -> int:
        """Today's count, without waiting (launch checks are synchronous)."""
        self._roll_now()
        return self._counts.get(name, 0)

    def today_stats(self) -> dict[str, Any]:
        """Today's counters as nested objects (`events.e1.job_complete` -> `{events: {e1: {...}}}`)."""
        self._roll_now()
        out: dict[str, Any] = {"timeStart": int(self._started)}
        for name, value in sorted(self._counts.items()):
            node = out
            *path, leaf = name.split(".")
            for part in path:
                child = node.get(part)
                node = node.setdefault(part, {}) if not isinstance(child, dict) else child
            if not isinstance(node.get(leaf), dict):
                node[leaf] = value
        return out

    # -- changes ---------------------------------------------------------------------------------
    async def take(self, name: str, limit: int) -> int | None:
        """Count one use unless `limit` (> 0) is reached; returns the new count, or None if refused."""
        async with self._lock:
            await self._roll()
            count = self._counts.get(name, 0)
            if limit > 0 and count >= limit:
                return None
            self._counts[name] = count + 1
            await self._write()
            return count + 1

    async def reset(self) -> None:
        """`admin_reset_daily_stats`: today's counts start again from zero, now (`timeStart`), and
        that is stored at once so a restart does not bring the old counts back. Day limits and
        daily caps count from the reset on, as in xyOps where they read the same stats."""
        async with self._lock:
            await self._roll()
            self._counts, self._started = {}, time.time()
            await self._write()

    def add(self, names: Iterable[str], delta: int = 1, day: str | None = None) -> None:
        """Change counters now, write them soon. A `day` other than today changes nothing (a job
        deleted after midnight no longer counts against today); counts never drop below zero."""
        self._roll_now()
        if day is not None and day != self._day:
            return
        for name in names:
            value = self._counts.get(name, 0) + delta
            if value > 0:
                self._counts[name] = value
            else:
                self._counts.pop(name, None)
        self._unsaved[self._day] = {}  # marks today dirty; the snapshot is taken at write time
        if self._flush_task is None or self._flush_task.done():
            with contextlib.suppress(RuntimeError):  # no running loop: the next flush writes it
                self._flush_task = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(FLUSH_DELAY)
        try:
            await self.flush()
        except Exception:  # the database is away: keep today marked, the next change or close retries
            self._unsaved.setdefault(self._day, {})

    async def close(self) -> None:
        """At stop: write now instead of a second from now."""
        if self._flush_task is not None:
            self._flush_task.cancel()
            await asyncio.gather(self._flush_task, return_exceptions=True)
        await self.flush()

    async def flush(self) -> None:
        """Write whatever changed since the last write (called again at stop)."""
        async with self._lock:
            if self._unsaved:
                await self._write()

    async def _write(self) -> None:
        """Under the lock: today's snapshot and any finished day's left-overs, in one transaction."""
        pending = {**self._unsaved, self._day: dict(self._counts)}
        self._unsaved = {}
        if not self._loaded:  # never read today's record: fold it in first so nothing is lost
            await self._roll()
            pending[self._day] = dict(self._counts)
        async with self.storage.transaction() as tx:
            for day, snapshot in pending.items():
                await put_record(self.storage, tx, f"stats/daily/{day}", snapshot, expires=time.time() + KEEP_SECONDS)
