"""Scheduler plugins decide beside the minute loop, so a slow plugin never delays other launches.

The minute loop stores a plugin-decided launch as a ``schedule_pending`` row (its slot key and
built job) in the transaction that moves its cursor, then moves on. This decider takes the
waiting rows, runs each scheduler plugin with them (one run per plugin at a time, different
plugins in parallel), and stores the answer in one transaction: the approved jobs, their slots,
the warnings, and the removal of the rows answered.

Why it is shaped like this:

* Exactly once: a slot is claimed only in the answer's transaction (unique key), and a row
  leaves ``schedule_pending`` in that same transaction. A crash while a plugin decides leaves
  the rows, so the plugin is asked again after the restart; a crash after the commit leaves no
  row, so it is never asked twice. The rows live in the database, so a new primary finishes
  what an old one began.
* A plugin slower than a minute does not pile up runs: while it runs, the next minutes' rows
  wait, and its next run takes all of them at once (each item carries its own ``now``).
* A pause (or losing primary) while a plugin runs rolls the answer back: the rows wait, and
  the plugin is asked again once the scheduler runs, like a minute begun before a pause.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError

from sundial.activity import ActivityLog
from sundial.jobs.build import LaunchError
from sundial.jobs.manager import JobManager
from sundial.logs import Logger
from sundial.scheduler import slots
from sundial.scheduler.plugins import Decision, Deferred, PluginSettings, TriggerPlugins
from sundial.state import StateService
from sundial.storage.engine import Storage

Lookup = Callable[[str], Mapping[str, Any] | None]


class _Paused(Exception):
    """The scheduler stopped running (paused, not primary) while a plugin decided: keep the rows."""


def to_row(entry: Deferred) -> slots.PendingRow:
    """The stored form of a waiting launch (the item's job is the row's job, stored once)."""
    item = {k: v for k, v in entry.item.items() if k != "job"}
    return slots.PendingRow(entry.key, entry.plugin_id, entry.minute, {"job": entry.job, "item": item})


def from_row(row: slots.PendingRow) -> Deferred:
    job = dict(row.doc.get("job") or {})
    return Deferred(row.key, row.minute, job, row.plugin_id, {**(row.doc.get("item") or {}), "job": job})


@dataclass(slots=True)
class PluginRunStats:
    """One plugin run, for ``get_scheduler_status``."""

    plugin: str
    items: int
    first_minute: int
    last_minute: int
    started: float
    seconds: float = 0.0
    approved: int = 0
    refused: int = 0
    stored: int = 0
    failed: str = ""

    def summary(self) -> dict[str, Any]:
        return {"plugin": self.plugin, "items": self.items, "minutes": [self.first_minute, self.last_minute],
                "started": round(self.started, 3), "seconds": round(self.seconds, 3), "approved": self.approved,
                "refused": self.refused, "stored": self.stored, **({"failed": self.failed} if self.failed else {})}


class PluginDecider:
    """Runs waiting plugin launches through their plugins, one task per plugin, beside the loop."""

    def __init__(self, *, storage: Storage, events: Lookup, state: StateService, jobs: JobManager,
                 activity: ActivityLog, log: Logger, plugins: TriggerPlugins,
                 settings: Callable[[], PluginSettings], is_primary: Callable[[], bool],
                 hand_over: Callable[[list[dict[str, Any]]], None]) -> None:
        self.storage = storage
        self.events = events
        self.state = state
        self.jobs = jobs
        self.activity = activity
        self.log = log
        self.plugins = plugins
        self.settings = settings
        self.is_primary = is_primary
        self.hand_over = hand_over
        self.history: deque[PluginRunStats] = deque(maxlen=20)
        self._running: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._run())
        self.kick()  # rows left by a crash or by the previous primary

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._running.values()) if t is not None]
        for task in tasks:
            task.cancel()  # a running plugin child is killed with its group (process.run_plugin)
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task, self._running = None, {}

    def kick(self) -> None:
        """Look for waiting launches soon (after a tick stored some, or a run ended)."""
        self._wake.set()

    def busy(self) -> list[str]:
        """Plugins deciding right now."""
        return sorted(self._running)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._dispatch()
            except Exception as exc:  # a database hiccup: the next tick kicks again
                self.log.error("scheduler", f"Scheduler plugin launches could not be read: {exc!r}")

    async def _dispatch(self) -> None:
        """Start one run per plugin that has waiting launches and is not already running."""
        if not self.is_primary() or not self.state.scheduler_enabled:
            return
        async with self.storage.read() as conn:
            rows = await slots.load_pending(conn)
        groups: dict[str, list[Deferred]] = {}
        for row in rows:
            if row.plugin_id not in self._running:
                groups.setdefault(row.plugin_id, []).append(from_row(row))
        for plugin_id, entries in groups.items():
            self._running[plugin_id] = asyncio.create_task(self._decide(plugin_id, entries))

    # -- one plugin run --------------------------------------------------------------------------
    async def _decide(self, plugin_id: str, entries: list[Deferred]) -> None:
        stats = PluginRunStats(plugin_id, len(entries), entries[0].minute, entries[-1].minute, time.time())
        again = True
        try:
            decision = await self.plugins.decide(plugin_id, entries, self.settings())
            stats.approved, stats.refused = len(decision.approved), decision.refused
            stats.stored = len(await self._store(entries, decision))
        except _Paused:
            again = False  # the rows wait; the first tick after the resume kicks again
            stats.failed = "scheduler paused or not primary while the plugin decided: it will be asked again"
        except Exception as exc:  # storage trouble: the rows wait for the next tick's kick
            again = False
            stats.failed = repr(exc)
            self.log.error("scheduler", f"Scheduler plugin {plugin_id}: answer could not be stored: {exc!r}")
        finally:
            stats.seconds = time.time() - stats.started
            self.history.append(stats)
            self._running.pop(plugin_id, None)
        if again:
            self.kick()  # launches that arrived while it ran

    async def _store(self, entries: list[Deferred], decision: Decision) -> list[dict[str, Any]]:
        """The answer's transaction; a slot claimed concurrently (another primary) is re-checked once."""
        for attempt in (1, 2):
            try:
                return await self._store_once(entries, decision)
            except IntegrityError:
                if attempt == 2:
                    raise
        return []

    async def _store_once(self, entries: list[Deferred], decision: Decision) -> list[dict[str, Any]]:
        approved = {entry.key for entry in decision.approved}
        async with self.storage.transaction() as tx:
            if not self.is_primary() or not self.state.scheduler_enabled:
                raise _Paused
            waiting = await slots.drop_pending(tx.conn, [entry.key for entry in entries])
            mine = approved & waiting  # a row gone already was answered by another run
            taken = await slots.taken_slots(tx.conn, sorted(mine))
            launch = [entry for entry in entries if entry.key in mine and entry.key not in taken
                      and self.events(entry.event_id) is not None]  # not deleted while it decided
            claims = [(entry.key, self._prepare(entry)) for entry in launch]
            await slots.claim_slots(tx.conn, [(key, job["id"] if job else "") for key, job in claims])
            jobs = [job for _, job in claims if job is not None]
            await self.jobs.store.insert_in(tx.conn, jobs)
            for description, payload in decision.warnings:
                await self.activity.record(tx, "warning", description, keywords=["scheduler"], **payload)
            tx.after_commit(lambda: self.hand_over(jobs))
        return jobs

    def _prepare(self, entry: Deferred) -> dict[str, Any] | None:
        """The job manager's last check (jobs per minute); a refusal keeps the slot with no job."""
        try:
            return self.jobs.prepare(entry.job)
        except LaunchError as exc:
            self.log.error("scheduler", f"Event {entry.event_id}: scheduled launch at {entry.key[1]} "
                                        f"refused: {exc.description}")
            return None

    def status(self) -> dict[str, Any]:
        return {"deciding": self.busy(), "runs": [stats.summary() for stats in self.history]}
