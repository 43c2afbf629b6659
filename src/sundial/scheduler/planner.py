"""What one scheduler tick launches: pure decisions, no storage, no clock.

The service hands in the events, the loop cursor and the stored per-event state; the
planner answers with the launches due and the state rows to write. Keeping this pure makes
the catch-up and skip rules testable without a conductor, and keeps the tick's storage
work (see ``sundial.scheduler.slots``) a separate, batchable step.

Rules (docs/scheduler.md "After downtime"):

* The loop cursor is the last fully processed minute. While the loop is live, every minute
  after it is owed to every event, so a slow tick never drops runs.
* After downtime (conductor stopped, scheduler paused, not primary) only catch-up events
  replay the missed minutes; the others evaluate the current minute only -- plus, for all,
  any minute a crashed or paused run had already begun launching (a begun minute is
  always finished).
* A catch-up event that cannot run (disabled, category or plugin disabled, no launcher
  triggers) freezes its own cursor and replays from there once it can run again.
* A catch-up event's own cursor may also be set by ``update_state`` (the time machine):
  moved back, the minutes after it are owed again (slots already launched are not launched
  twice, see the service); moved ahead, the event waits until the clock passes it.
* No event replays more than ``max_catchup`` scheduled minutes in one tick: the newest
  ones are kept and the rest are reported as dropped.
* Minutes are found by jumping from one hit to the next (EventPlan.next_launches), never
  by walking every minute, and a tick looks only at events due, so a large idle catalogue
  costs almost nothing per minute.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sundial.scheduler.timing import MINUTE
from sundial.scheduler.triggers import EventPlan, Launch, TriggerError, is_enabled

Lookup = Callable[[str], Mapping[str, Any] | None]


@dataclass(frozen=True, slots=True)
class StateRow:
    """Stored per-event scheduler state; ``cursor`` None = follows the loop cursor."""

    cursor: int | None = None
    nth: int | None = None

    @property
    def empty(self) -> bool:
        return self.cursor is None and not self.nth


@dataclass(frozen=True, slots=True)
class Due:
    """One launch the tick owes: the event record, the EventPlan launch and its trigger."""

    event: Mapping[str, Any]
    launch: Launch
    trigger: Mapping[str, Any]
    quiet: Mapping[str, Any] | None = None

    @property
    def key(self) -> tuple[str, int, int]:
        """The exactly-once key: (event id, nominal second, trigger number)."""
        return str(self.event["id"]), int(self.launch.now // 1), self.launch.trigger_index


@dataclass(slots=True)
class TickPlan:
    minute: int
    due: list[Due] = field(default_factory=list)
    changes: dict[str, StateRow | None] = field(default_factory=dict)
    replayed: int = 0
    truncated: list[str] = field(default_factory=list)  # events whose backlog exceeded max_catchup
    errors: list[tuple[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class PlanEntry:
    """An event's parsed triggers, kept while the stored record object stays the same."""

    doc: Mapping[str, Any]
    zone: str
    plan: EventPlan | None
    hits: EventPlan | None  # the same plan without every-Nth: the minutes that count as hits
    catchup: bool
    quiet: Mapping[str, Any] | None
    error: str | None = None
    _searched_from: int | None = None
    _found: int | None = None

    def first_hit_after(self, cursor: int) -> int | None:
        """The first hit minute after ``cursor``; cached, since cursors mostly move forward."""
        if self.hits is None:
            return None
        cached = self._searched_from is not None and self._searched_from <= cursor
        if not cached or (self._found is not None and self._found <= cursor):
            self._searched_from = cursor
            found = count_hits(self.hits, cursor, 1)
            self._found = found[0] if found else None
        return self._found


def count_hits(plan: EventPlan, after: int, cap: int, until: int | None = None) -> list[int]:
    """Up to ``cap`` hit minutes after ``after`` (and not after ``until``), in order."""
    minutes: list[int] = []
    cursor = after
    end = None if until is None else until + MINUTE
    while len(minutes) < cap:
        batch = plan.next_launches(cursor, cap - len(minutes), end_epoch=end)
        if not batch:
            break
        for launch in batch:
            if not minutes or minutes[-1] != launch.minute:
                minutes.append(launch.minute)
        cursor = batch[-1].minute
    return minutes[:cap]


def build_entry(event: Mapping[str, Any], default_zone: str) -> PlanEntry:
    raw = event.get("triggers")
    triggers: list[Any] = raw if isinstance(raw, list) else []
    enabled = [t for t in triggers if is_enabled(t)]
    catchup = any(t.get("type") == "catchup" for t in enabled)
    quiet = next((t for t in enabled if t.get("type") == "quiet"), None)
    try:
        plan = EventPlan.from_triggers(triggers, default_zone)
    except TriggerError as exc:
        return PlanEntry(event, default_zone, None, None, catchup, quiet, error=exc.description)
    if not plan.launchers:
        return PlanEntry(event, default_zone, None, None, catchup, quiet)
    hits = dataclasses.replace(plan, nth_every=None) if plan.nth_every else plan
    return PlanEntry(event, default_zone, plan, hits, catchup, quiet)


@dataclass(frozen=True, slots=True)
class _Context:
    """The inputs one tick shares across all events."""

    minute: int
    loop_cursor: int
    live: bool
    owed_until: int | None
    state: Mapping[str, StateRow]
    default_zone: str
    categories: Lookup
    plugins: Lookup


class TickPlanner:
    """Holds one PlanEntry per event between ticks and plans each tick."""

    def __init__(self, max_catchup: int = 1000) -> None:
        self.max_catchup = max_catchup
        self.entries: dict[str, PlanEntry] = {}
        self.reported: set[tuple[str, str]] = set()

    def entry(self, event: Mapping[str, Any], default_zone: str) -> PlanEntry:
        event_id = str(event["id"])
        entry = self.entries.get(event_id)
        if entry is None or entry.doc is not event or entry.zone != default_zone:
            entry = self.entries[event_id] = build_entry(event, default_zone)
        return entry

    def plan(self, events: Iterable[Mapping[str, Any]], *, minute: int, loop_cursor: int, live: bool,
             state: Mapping[str, StateRow], default_zone: str, categories: Lookup, plugins: Lookup,
             owed_until: int | None = None) -> TickPlan:
        """Launches owed for minutes up to ``minute``, given the last processed ``loop_cursor``.

        ``owed_until``: after downtime, the last minute a previous run had begun launching
        (slots claimed past the cursor); minutes up to it are finished for every event.
        """
        context = _Context(minute, loop_cursor, live, owed_until, state, default_zone, categories, plugins)
        tick = TickPlan(minute)
        seen: set[str] = set()
        for event in events:
            event_id = str(event.get("id"))
            seen.add(event_id)
            try:
                self._plan_event(tick, event, context)
            except Exception as exc:  # one broken record must never stop the tick
                tick.errors.append((event_id, f"{type(exc).__name__}: {exc}"))
        for event_id in set(state) - seen:
            tick.changes[event_id] = None  # deleted events leave no state behind
        self.entries = {k: v for k, v in self.entries.items() if k in seen}
        return tick

    def _plan_event(self, tick: TickPlan, event: Mapping[str, Any], context: _Context) -> None:
        event_id = str(event["id"])
        entry = self.entry(event, context.default_zone)
        if entry.error and (event_id, entry.error) not in self.reported:
            self.reported.add((event_id, entry.error))
            tick.errors.append((event_id, entry.error))
        row = context.state.get(event_id, StateRow())
        if entry.plan is None or blocked(event, context.categories, context.plugins):
            if entry.catchup and row.cursor is None:
                tick.changes[event_id] = StateRow(context.loop_cursor, row.nth)  # freeze where it stopped
            return
        if entry.catchup and row.cursor is not None and row.cursor >= context.minute:
            return  # the time machine moved this event's cursor ahead: nothing runs until it passes
        minutes, truncated = self._minutes_for(entry, row, context)
        if truncated:
            tick.truncated.append(event_id)
        counter = row.nth or 0
        for minute in minutes:
            launches, counter = entry.plan.launches_at(minute, counter)
            tick.due.extend(_dues(event, launches, entry.quiet))
            if minute < tick.minute:
                tick.replayed += len(launches)
        new_row = StateRow(None, counter if entry.plan.nth_every else None)
        if new_row != row:
            tick.changes[event_id] = None if new_row.empty else new_row

    def _minutes_for(self, entry: PlanEntry, row: StateRow, context: _Context) -> tuple[list[int], bool]:
        """Which minutes this event is owed: all since its cursor (catch-up, or a live loop), else
        the current one plus any minute a crashed or paused run had begun launching."""
        if entry.catchup:
            start = row.cursor if row.cursor is not None else context.loop_cursor
            return self._owed_minutes(entry, start, context.minute)
        if context.live:
            return self._owed_minutes(entry, context.loop_cursor, context.minute)
        begun: list[int] = []
        until = context.owed_until
        if until is not None and context.loop_cursor < until < context.minute:
            begun = self._owed_minutes(entry, context.loop_cursor, until)[0]
        return begun + self._owed_minutes(entry, context.minute - MINUTE, context.minute)[0], False

    def _owed_minutes(self, entry: PlanEntry, start: int, minute: int) -> tuple[list[int], bool]:
        """Hit minutes in (start, minute], and whether older ones were dropped by the bound."""
        if minute - start == MINUTE:  # the usual case: only this minute, answered from the cache
            return ([minute] if entry.first_hit_after(start) == minute else []), False
        if entry.hits is None or start >= minute:
            return [], False
        minutes = count_hits(entry.hits, start, self.max_catchup + 1, until=minute)
        if len(minutes) <= self.max_catchup:
            return minutes, False
        return newest_hits(entry.hits, start, minute, self.max_catchup), True


def newest_hits(plan: EventPlan, start: int, minute: int, limit: int) -> list[int]:
    """The newest ``limit`` hit minutes in (start, minute], by bisecting the window's start.

    Costs about ``limit * log2(window in minutes)`` hit look-ups instead of listing a long
    backlog in full (a day of every-minute runs is 1,440 hits; a month is 43,200).
    """
    low, high = start, minute  # at least `limit` hits after low; fewer than `limit` after high
    while high - low > MINUTE:
        middle = (low + high) // 2 // MINUTE * MINUTE
        if len(count_hits(plan, middle, limit, until=minute)) >= limit:
            low = middle
        else:
            high = middle
    return count_hits(plan, low, limit, until=minute)


def blocked(event: Mapping[str, Any], categories: Lookup, plugins: Lookup) -> bool:
    """Disabled event, category or plugin: the scheduler skips the event (spec §3.2)."""
    if not event.get("enabled"):
        return True
    category = categories(str(event.get("category") or ""))
    if category is not None and not category.get("enabled", True):
        return True
    plugin_id = str(event.get("plugin") or "")
    plugin = plugins(plugin_id) if plugin_id else None
    return plugin is not None and not plugin.get("enabled", True)


def _dues(event: Mapping[str, Any], launches: list[Launch], quiet: Mapping[str, Any] | None) -> list[Due]:
    triggers = event.get("triggers") or []
    return [Due(event, launch, triggers[launch.trigger_index], quiet) for launch in launches]



# --------------------------------------------------------------------------------------------
# Shaping the job of a due launch (spec §3.2 "for trig in chosen")


def overrides_for(due: Due) -> dict[str, Any]:
    """Run-time overrides for Launcher.build: the trigger's params (merged over the event's)."""
    params = due.trigger.get("params")
    return {"params": copy.deepcopy(dict(params))} if isinstance(params, Mapping) else {}


def shape_job(job: dict[str, Any], due: Due, to_real: Callable[[float], float]) -> dict[str, Any]:
    """Stamp a built job with what the scheduler knows: nominal time, trigger data, delay, quiet."""
    launch = due.launch
    job["now"] = launch.now
    if launch.trigger_type != "schedule":
        job["stype"] = launch.trigger_type
    _add_tags(job, due.trigger.get("tags"))
    _add_data(job, due.trigger.get("data"))
    workflow = job.get("workflow")
    if isinstance(workflow, dict) and launch.trigger_id:
        workflow["start"] = launch.trigger_id
    if launch.start_at > launch.minute:  # delay, precision second or interval offset
        job["state"] = "start_delay"
        job["until"] = round(to_real(launch.start_at), 3)
    for mode in ("invisible", "ephemeral"):
        if due.quiet is not None and due.quiet.get(mode):
            job[mode] = True
    return job


def _add_tags(job: dict[str, Any], tags: Any) -> None:
    if isinstance(tags, list) and tags:
        job["tags"] = list(dict.fromkeys([*(job.get("tags") or []), *(t for t in tags if isinstance(t, str))]))


def _add_data(job: dict[str, Any], data: Any) -> None:
    """An object is shallow-merged into input.data; a list becomes input.data.items."""
    if not isinstance(data, Mapping | list):
        return
    if not isinstance(job.get("input"), dict):
        job["input"] = {}
    if not isinstance(job["input"].get("data"), dict):
        job["input"]["data"] = {}
    if isinstance(data, Mapping):
        job["input"]["data"].update(copy.deepcopy(dict(data)))
    else:
        job["input"]["data"]["items"] = copy.deepcopy(data)
