"""The scheduler service: a wall-clock-aligned minute loop that launches each slot exactly once.

One tick per minute boundary (never a polling loop): plan the minute (pure, see
``planner``), build the jobs, then in one transaction per chunk claim the slots
(``schedule_slots``), insert the jobs and, with the last chunk, advance the cursor. Only
once the minute is durable are its jobs handed to the job manager (``adopt``).

Why each step is where it is:

* Slot rows and job rows share a transaction, and the unique slot key refuses a second
  claim, so a crash or a second conductor can never launch a slot twice; a crash between
  commit and adopt loses nothing because the job manager re-attaches stored ``ready`` and
  ``start_delay`` jobs at start.
* The cursor moves only with the minute's last chunk, so after a crash the minute is
  planned again and the chunks already stored are recognised by their slots.
* Precision seconds, delays and interval offsets become ``start_delay`` jobs whose exact
  release is a job-manager timer; the loop itself only wakes at minute boundaries.
* ``scheduler_stagger_ms`` spaces the starts of a minute's jobs in waves (job-manager
  timers); waves grow with the minute's size so the starts span about a second
  (``MAX_SPREAD_SECONDS``) however many events are due -- never a serial queue, and the
  hand-over itself is immediate.
"""

from __future__ import annotations

import asyncio
import math
import os
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from sundial.activity import ActivityLog
from sundial.config import Config
from sundial.ids import generate_id
from sundial.jobs.build import LaunchError
from sundial.jobs.launch import Launcher
from sundial.jobs.manager import JobManager
from sundial.logs import Logger
from sundial.scheduler import slots
from sundial.scheduler.clock import SchedulerClock, host_timezone
from sundial.scheduler.deciding import PluginDecider, to_row
from sundial.scheduler.planner import (
    Due,
    StateRow,
    TickPlan,
    TickPlanner,
    blocked,
    build_entry,
    overrides_for,
    shape_job,
)
from sundial.scheduler.plugins import (
    Deferred,
    PluginSettings,
    SecretSource,
    TriggerPlugins,
    make_item,
    plugin_trigger,
    test_answer,
    trigger_item,
)
from sundial.scheduler.state_edit import StateEdit, parse_state_edit
from sundial.scheduler.timing import MINUTE, as_zone
from sundial.scheduler.triggers import Launch, is_enabled
from sundial.state import StateService
from sundial.storage.engine import Storage, Tx
from sundial.storage.lists import ConfigList

CHUNK = 2000  # launches per transaction: a big minute commits in a few batches
CHUNK_ENV = "SUNDIAL_SCHEDULER_CHUNK"  # tests: small chunks to crash between them
FAULT_ENV = "SUNDIAL_FAULT_INJECT"  # tests: "scheduler:<step>" ends the process there (as vault/faults.py)
MAX_SPREAD_SECONDS = 1.0
DEFAULT_MAX_CATCHUP = 1000


async def _no_secrets(plugin_id: str) -> dict[str, str]:
    return {}


class _Paused(Exception):
    """The scheduler was paused while a tick was storing; the open chunk rolls back."""


@dataclass
class TickStats:
    """Timings of one tick, relative to its minute boundary (real seconds)."""

    minute: int
    boundary: float
    planned: int = 0
    stored: int = 0
    refused: int = 0
    duplicates: int = 0
    deferred: int = 0
    replayed: int = 0
    plan_s: float = 0.0
    stored_s: float = 0.0
    skews: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        skews = sorted(self.skews)
        return {"minute": self.minute, "planned": self.planned, "stored": self.stored, "refused": self.refused,
                "duplicates": self.duplicates, "deferred": self.deferred, "replayed": self.replayed,
                "adopted": len(skews), "plan_s": round(self.plan_s, 4), "stored_s": round(self.stored_s, 4),
                "last_adopt_s": round(skews[-1], 4) if skews else None,
                "skew_p50_s": round(statistics.median(skews), 4) if skews else None,
                "skew_p99_s": round(skews[min(len(skews) - 1, int(len(skews) * 0.99))], 4) if skews else None}


@dataclass
class _Batch:
    """Built launches of one chunk: (slot key, job or None when the launch was refused); the
    final chunk also carries the launches left to scheduler plugins (stored as waiting)."""

    items: list[tuple[slots.SlotKey, dict[str, Any] | None]]
    final: bool
    pending: list[Deferred] = field(default_factory=list)


class SchedulerService:
    def __init__(self, *, config: Config, storage: Storage, lists: dict[str, ConfigList], state: StateService,
                 launcher: Launcher, jobs: JobManager, activity: ActivityLog, log: Logger,
                 is_primary: Callable[[], bool] = lambda: True, clock: SchedulerClock | None = None,
                 plugin_secrets: SecretSource | None = None) -> None:
        self.config = config
        self.storage = storage
        self.lists = lists
        self.state = state
        self.launcher = launcher
        self.jobs = jobs
        self.activity = activity
        self.log = log
        self.is_primary = is_primary
        self.clock = clock or SchedulerClock.from_env()
        self.planner = TickPlanner(self._max_catchup())
        self.loop_cursor: int | None = None
        self.event_state: dict[str, StateRow] = {}
        self.history: deque[TickStats] = deque(maxlen=20)
        self._live = False
        self._tasks: list[asyncio.Task[Any]] = []
        self._tick_lock = asyncio.Lock()
        self.trigger_plugins = TriggerPlugins(
            plugins=lists["plugins"].get, secrets_for=plugin_secrets or _no_secrets,
            active_jobs=lambda: list(jobs.active.values()),
            log_error=lambda message: log.error("scheduler", message), to_real=self.clock.to_real)
        self.decider = PluginDecider(
            storage=storage, events=lists["events"].get, state=state, jobs=jobs, activity=activity, log=log,
            plugins=self.trigger_plugins, settings=self._plugin_settings, is_primary=is_primary,
            hand_over=lambda stored: self._hand_over(stored, None))

    # -- life cycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        await self._load_state()
        self._tasks = [asyncio.create_task(self._run())]
        self.decider.start()
        if self.clock.fast:
            self.log.debug(2, f"Scheduler clock runs {self.clock.speed:g} times faster than real time (test mode)")
        self.log.debug(3, f"Scheduler started; cursor {self.loop_cursor}, zone {self.default_zone()}")

    async def _load_state(self) -> None:
        async with self.storage.read() as conn:
            self.loop_cursor, self.event_state = await slots.load_state(conn)

    async def stop(self) -> None:
        await self.decider.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _run(self) -> None:
        """Tick at once (a restart may have crossed a boundary), then at every minute boundary."""
        await self._launch_startup_triggers()
        minute = self._current_minute()
        while True:
            await self.safe_tick(minute)
            minute = await self._next_boundary()

    def _current_minute(self) -> int:
        return int(self.clock.now() // MINUTE) * MINUTE

    async def _next_boundary(self) -> int:
        """Sleep until the next minute starts; a clock jump forward returns the current minute."""
        target = self._current_minute() + MINUTE
        while True:  # short naps re-read the clock, so a stepped clock is noticed within 30 s
            delay = self.clock.to_real(target) - time.time()
            if delay <= 0:
                break
            await asyncio.sleep(min(delay, 30.0))
        return max(target, self._current_minute())

    async def safe_tick(self, minute: int) -> TickStats | None:
        """A tick that logs instead of raising: nothing in one minute may stop the loop."""
        try:
            return await self.tick(minute)
        except Exception as exc:
            self.log.error("scheduler", f"Scheduler tick for minute {minute} failed: {exc!r}")
            return None

    # -- one tick ----------------------------------------------------------------------------
    async def tick(self, minute: int) -> TickStats | None:
        """Launch everything owed up to ``minute`` (a multiple of 60) unless already processed."""
        async with self._tick_lock:
            if not self.is_primary() or not self.state.scheduler_enabled:
                self._live = False
                return None
            if not self._live:  # after start, a pause or a failover another run may have moved on
                await self._load_state()
            if self.loop_cursor is not None and minute <= self.loop_cursor:
                return None  # done before (or the clock went back): never twice
            stats = TickStats(minute, self.clock.to_real(minute))
            plan = await self._plan(minute)
            stats.plan_s = time.time() - stats.boundary
            stats.planned, stats.replayed = len(plan.due), plan.replayed
            try:
                await self._store(plan, stats)
            except _Paused:
                self._live = False
                self.log.debug(3, f"Scheduler paused while storing minute {minute}; rest of the minute not launched")
                return stats
            self._live = True
            self.history.append(stats)
            self._log_tick(stats)
            self.decider.kick()  # launches waiting for plugins: this minute's, or older ones after a pause
            return stats

    async def _plan(self, minute: int) -> TickPlan:
        cursor = self.loop_cursor if self.loop_cursor is not None else minute - MINUTE
        owed_until = None
        if not self._live:  # first tick after start or resume: finish any minute begun before
            async with self.storage.read() as conn:
                owed_until = await slots.last_claimed_after(conn, cursor)
        self.planner.max_catchup = self._max_catchup()
        plan = self.planner.plan(self.lists["events"].all(), minute=minute, loop_cursor=cursor, live=self._live,
                                 state=self.event_state, default_zone=self.default_zone(),
                                 categories=self.lists["categories"].get, plugins=self.lists["plugins"].get,
                                 owed_until=owed_until)
        for event_id, message in plan.errors:
            self.log.error("scheduler", f"Event {event_id}: schedule cannot be evaluated: {message}")
        return plan

    def _log_tick(self, stats: TickStats) -> None:
        if stats.planned:
            self.log.debug(6, f"Scheduler minute {stats.minute}: {stats.stored} jobs stored "
                              f"({stats.duplicates} already launched, {stats.refused} refused) "
                              f"in {stats.stored_s:.3f} s", stats.summary())

    # -- storing ----------------------------------------------------------------------------
    async def _store(self, plan: TickPlan, stats: TickStats) -> None:
        """Store the minute chunk by chunk; hand its jobs over once all are durable (or on failure,
        those that are), so a big minute is not slowed by the job manager working in between.

        Launches a scheduler plugin must approve are built now and stored as waiting rows with
        the final chunk (which also moves the cursor); the decider (``deciding``) asks the plugins
        beside this loop, so a slow plugin never delays the next minutes. A crash while a plugin
        decides leaves the rows, and the plugin is asked again after the restart."""
        launches = [due for due in plan.due if not due.launch.plugin_decides]
        waiting = self._build_deferred([due for due in plan.due if due.launch.plugin_decides], stats)
        size = chunk_size()
        chunks = [launches[i:i + size] for i in range(0, len(launches), size)] or [[]]
        note = self._gap_note(plan)
        stored: list[dict[str, Any]] = []
        try:
            for index, chunk in enumerate(chunks):
                final = index == len(chunks) - 1
                batch = _Batch(self._build(chunk, stats), final=final, pending=waiting if final else [])
                stored += await self._commit(batch, plan, stats, note)
                if launches:
                    fault_point("after_commit" if batch.final else "between_chunks")
                await asyncio.sleep(0)
        finally:
            stats.stored_s = time.time() - stats.boundary
            self._hand_over(stored, stats)

    def _build_deferred(self, deferred: list[Due], stats: TickStats) -> list[Deferred]:
        """Jobs for launches a plugin decides: built now, so the plugin sees the job it approves."""
        zone = self.default_zone()
        waiting: list[Deferred] = []
        stats.deferred = len(deferred)
        for due in deferred:
            own = plugin_trigger(due.event)
            try:
                job = self.launcher.build(dict(due.event), overrides_for(due), source="plugin")
                shape_job(job, due, self.clock.to_real)
                job["splugin"] = str((own or {}).get("plugin_id") or "")
                waiting.append(Deferred(due.key, due.launch.minute, job, job["splugin"], trigger_item(due, job, zone)))
            except Exception as exc:  # LaunchError, or a record the builder chokes on: never the tick
                stats.refused += 1
                reason = exc.description if isinstance(exc, LaunchError) else repr(exc)
                self.log.error("scheduler", f"Event {due.event.get('id')}: scheduled launch at "
                                            f"{due.launch.now} refused: {reason}")
        return waiting

    async def test_plugin(self, plugin: Mapping[str, Any], params: Mapping[str, Any], zone: str | None,
                          epoch: float | None) -> dict[str, Any]:
        """Run a scheduler plugin by hand with one item, as a tick would, and launch nothing.

        The item's job is a stand-in (no event): the plugin sees the shape it gets at a tick."""
        zone = zone or self.default_zone()
        minute = int((self.clock.now() if epoch is None else epoch) // MINUTE) * MINUTE
        trigger = {"type": "plugin", "enabled": True, "plugin_id": str(plugin.get("id")), "params": dict(params)}
        job = {"id": generate_id("j"), "event": "", "now": minute, "source": "plugin",
               "splugin": str(plugin.get("id")), "test": True}
        asked = await self.trigger_plugins.ask(plugin, [make_item(trigger, zone, minute, job)],
                                               self._plugin_settings())
        return test_answer(asked)

    def _plugin_settings(self) -> PluginSettings:
        host = str(self.config.get("local_api_hostname") or "localhost")
        credentials = self.config.get("default_plugin_credentials.scheduler")
        return PluginSettings(base_url=f"http://{host}:{self.config.get('WebServer.port')}",
                              script_folder=self.config.path("temp_dir") / "plugins",
                              data_root=self.config.home / "data", default_zone=self.default_zone(),
                              credentials=credentials if isinstance(credentials, dict) else None)

    def _build(self, chunk: list[Due], stats: TickStats) -> list[tuple[slots.SlotKey, dict[str, Any] | None]]:
        """Jobs for a chunk; a refused (or unbuildable) launch keeps its slot with no job."""
        built: list[tuple[slots.SlotKey, dict[str, Any] | None]] = []
        for due in chunk:
            try:
                job = self.launcher.build(dict(due.event), overrides_for(due), source="scheduler")
                shape_job(job, due, self.clock.to_real)
                built.append((due.key, self.jobs.prepare(job)))
            except Exception as exc:  # LaunchError, or a record the builder chokes on: never the tick
                stats.refused += 1
                reason = exc.description if isinstance(exc, LaunchError) else repr(exc)
                self.log.error("scheduler", f"Event {due.event.get('id')}: scheduled launch at "
                                            f"{due.launch.now} refused: {reason}")
                built.append((due.key, None))
        return built

    async def _commit(self, batch: _Batch, plan: TickPlan, stats: TickStats,
                      note: str | None) -> list[dict[str, Any]]:
        """One transaction; a concurrent claim of the same slot (unique key) is retried once.
        Returns the jobs stored (slots claimed before by a crashed run are left out)."""
        for attempt in (1, 2):
            try:
                return await self._commit_once(batch, plan, stats, note)
            except IntegrityError:
                if attempt == 2:
                    raise
                self.log.debug(3, "Scheduler slot claimed concurrently; re-checking the chunk")
        return []

    async def _commit_once(self, batch: _Batch, plan: TickPlan, stats: TickStats,
                           note: str | None) -> list[dict[str, Any]]:
        async with self.storage.transaction() as tx:
            if not self.state.scheduler_enabled:
                raise _Paused
            taken = await slots.taken_slots(tx.conn, [key for key, _ in batch.items])
            fresh = [(key, job) for key, job in batch.items if key not in taken]
            await slots.claim_slots(tx.conn, [(key, job["id"] if job else "") for key, job in fresh])
            jobs = [job for _, job in fresh if job is not None]
            await self.jobs.store.insert_in(tx.conn, jobs)
            if batch.final:
                await self._add_pending(tx, batch.pending)
                await slots.write_state(tx.conn, self.storage.is_sqlite, plan.minute, plan.changes)
                await slots.prune_slots(tx.conn, plan.minute)
                if note:
                    await self.activity.record(tx, "scheduler_catchup", note, keywords=["scheduler"])
            tx.after_commit(lambda: self._committed(batch, plan, stats, jobs, len(batch.items) - len(fresh)))
        return jobs

    @staticmethod
    async def _add_pending(tx: Tx, pending: list[Deferred]) -> None:
        """Waiting rows for the plugins; a launch already launched or already waiting (a minute
        repeated after a crash, a cursor moved back) is not stored again."""
        keys = [entry.key for entry in pending]
        known = await slots.taken_slots(tx.conn, keys) | await slots.pending_keys(tx.conn, keys)
        await slots.add_pending(tx.conn, [to_row(entry) for entry in pending if entry.key not in known])

    def _committed(self, batch: _Batch, plan: TickPlan, stats: TickStats, jobs: list[dict[str, Any]],
                   duplicates: int) -> None:
        stats.stored += len(jobs)
        stats.duplicates += duplicates
        if batch.final:
            self.loop_cursor = plan.minute
            for event_id, row in plan.changes.items():
                if row is None:
                    self.event_state.pop(event_id, None)
                else:
                    self.event_state[event_id] = row

    def _gap_note(self, plan: TickPlan) -> str | None:
        """One activity note when minutes were missed (downtime, pause) or backlogs were cut."""
        missed = 0 if self.loop_cursor is None else (plan.minute - self.loop_cursor) // MINUTE - 1
        resumed = missed > 0 and not self._live
        if not resumed and not plan.truncated:
            return None
        parts = []
        if resumed:
            parts.append(f"Scheduler resumed after {missed} missed minutes: catch-up events replayed "
                         f"{plan.replayed} launches; other events skipped their missed runs.")
        if plan.truncated:
            parts.append(f"{len(plan.truncated)} events had more than {self.planner.max_catchup} missed runs; "
                         "only the newest were replayed (scheduler_max_catchup).")
        return " ".join(parts)

    # -- handing jobs to the job manager --------------------------------------------------------
    def _hand_over(self, jobs: list[dict[str, Any]], stats: TickStats | None) -> None:
        """Adopt every stored job at once; the stagger becomes job-manager timers, not sleeps here.

        Wave k of ready jobs waits ``k * scheduler_stagger_ms`` in ``start_delay``, so satellites
        see the starts spread out while the scheduler itself never waits on the job manager.
        """
        stagger = self._stagger_seconds()
        size = wave_size(len(jobs), stagger)
        now = time.time()
        for index, job in enumerate(jobs):
            offset = (index // size) * stagger
            if offset and job.get("state") == "ready":
                job.update(state="start_delay", until=round(now + offset, 3))
            self.jobs.adopt(job)
            if stats is not None:
                stats.skews.append(now - stats.boundary)

    # -- startup triggers (spec §5) --------------------------------------------------------------
    async def _launch_startup_triggers(self) -> None:
        if not self.is_primary() or not self.state.scheduler_enabled:
            return
        for event in self.lists["events"].all():
            trigger = next((t for t in event.get("triggers") or [] if isinstance(t, dict)
                            and t.get("type") == "startup" and t.get("enabled")), None)
            if trigger is None or blocked(event, self.lists["categories"].get, self.lists["plugins"].get):
                continue
            try:
                due = _startup_due(event, trigger, self.clock.now())
                job = shape_job(self.launcher.build(dict(event), overrides_for(due), source="startup"), due,
                                self.clock.to_real)
                job.pop("stype", None)
                await self.jobs.accept(job)
            except Exception as exc:  # one event's refusal must not keep the loop from starting
                reason = exc.description if isinstance(exc, LaunchError) else repr(exc)
                self.log.error("scheduler", f"Event {event.get('id')}: startup launch refused: {reason}")

    # -- per-event state: the "time machine" (update_state) and its display ---------------------
    def check(self, update: Any) -> StateEdit:
        """Validate an ``update_state`` object (StateEditError, a ValueError, when refused)."""
        return parse_state_edit(update)

    def guard(self) -> asyncio.Lock:
        """Held while an edit is written, so a tick never stores state it planned before the edit."""
        return self._tick_lock

    async def write(self, tx: Tx, event_id: str, edit: StateEdit) -> None:
        """Apply an edit to the event's stored row inside the caller's transaction."""
        row = edit.apply(await slots.event_row(tx.conn, event_id))
        await slots.put_event_row(tx.conn, self.storage.is_sqlite, event_id, row)

        def remember() -> None:
            if row.empty:
                self.event_state.pop(event_id, None)
            else:
                self.event_state[event_id] = row

        tx.after_commit(remember)

    async def event_states(self) -> dict[str, dict[str, int]]:
        """``{event id: {cursor?, nth?}}`` as stored (any conductor may answer, so read the database).

        A catch-up event with no cursor of its own follows the loop cursor, so that is its cursor.
        """
        async with self.storage.read() as conn:
            loop, rows = await slots.load_state(conn)
        states: dict[str, dict[str, int]] = {}
        for event in self.lists["events"].all():
            event_id = str(event.get("id"))
            row = rows.get(event_id, StateRow())
            cursor = row.cursor if row.cursor is not None else (loop if _has_catchup(event) else None)
            state = {key: value for key, value in (("cursor", cursor), ("nth", row.nth)) if value is not None}
            if state:
                states[event_id] = state
        return states

    # -- settings and previews --------------------------------------------------------------
    def default_zone(self) -> str:
        return str(self.config.get("tz") or "") or host_timezone()

    def _max_catchup(self) -> int:
        value = self.config.get("scheduler_max_catchup", DEFAULT_MAX_CATCHUP)
        return max(1, int(value)) if isinstance(value, int | float) else DEFAULT_MAX_CATCHUP

    def _stagger_seconds(self) -> float:
        value = self.config.get("scheduler_stagger_ms", 50)
        return max(0.0, float(value)) / 1000 if isinstance(value, int | float) else 0.05

    def upcoming(self, event: Mapping[str, Any], count: int, after: float | None = None) -> dict[str, Any]:
        """The event's next ``count`` scheduled launches, as plain data for "when will this run?"."""
        zone = self.default_zone()
        entry = build_entry(event, zone)
        row = self.event_state.get(str(event.get("id")), StateRow())
        start = self.clock.now() if after is None else after
        launches = entry.plan.next_launches(start, count, nth_counter=row.nth or 0) if entry.plan else []
        triggers = event.get("triggers") or []
        rows = [{"epoch": launch.minute, "now": launch.now, "start": launch.start_at, "type": launch.trigger_type,
                 "trigger": launch.trigger_index, "trigger_id": launch.trigger_id,
                 "plugin": launch.plugin_decides,
                 "local": _local(launch.now, triggers[launch.trigger_index], zone)} for launch in launches]
        return {"rows": rows, "timezone": zone, "catchup": entry.catchup, "cursor": row.cursor, "nth": row.nth,
                "error": entry.error,
                "runs": not blocked(event, self.lists["categories"].get, self.lists["plugins"].get),
                "scheduler_enabled": self.state.scheduler_enabled}

    def status(self) -> dict[str, Any]:
        return {"enabled": self.state.scheduler_enabled, "primary": self.is_primary(), "cursor": self.loop_cursor,
                "now": self.clock.now(), "clock_speed": self.clock.speed, "timezone": self.default_zone(),
                "event_state": {k: {"cursor": v.cursor, "nth": v.nth} for k, v in self.event_state.items()},
                "ticks": [stats.summary() for stats in self.history], "plugins": self.decider.status()}


def chunk_size() -> int:
    raw = os.environ.get(CHUNK_ENV, "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else CHUNK


def fault_point(step: str) -> None:
    """Test-only crash at a named step: exit like SIGKILL (no cleanup, no finally)."""
    if os.environ.get(FAULT_ENV) == f"scheduler:{step}":
        sys.stderr.write(f"FAULT INJECTED at scheduler:{step}\n")
        sys.stderr.flush()
        os._exit(137)


def wave_size(launches: int, stagger: float) -> int:
    """Jobs per start wave: one per wave when few are due (xyOps-like spacing), more when
    many are, so that the waves of a minute span at most MAX_SPREAD_SECONDS."""
    if stagger <= 0:
        return max(launches, 1)
    waves = max(1, int(MAX_SPREAD_SECONDS / stagger))
    return max(1, math.ceil(launches / waves))


def _local(epoch: float, trigger: Mapping[str, Any], default_zone: str) -> str:
    zone = trigger.get("timezone") if trigger.get("type") == "schedule" else None
    try:
        return datetime.fromtimestamp(epoch, as_zone(str(zone or default_zone))).isoformat()
    except Exception:
        return datetime.fromtimestamp(epoch).isoformat()


def _has_catchup(event: Mapping[str, Any]) -> bool:
    return any(is_enabled(t) and t.get("type") == "catchup" for t in event.get("triggers") or [])


def _startup_due(event: Mapping[str, Any], trigger: Mapping[str, Any], now: float) -> Due:
    index = (event.get("triggers") or []).index(trigger)
    minute = int(now // MINUTE) * MINUTE
    launch = Launch(minute, now, minute, index, "startup", trigger.get("id"))
    return Due(event, launch, trigger)
