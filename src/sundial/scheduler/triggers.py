"""Event triggers: save-time validation and the pure time arithmetic of every trigger kind.

Two halves:

* :func:`validate_triggers` / :func:`normalise_triggers` run when an event is saved. The
  messages and their order follow xyOps (first failing check wins, per-entry checks on every
  trigger, composition rules on enabled triggers only), so API clients see familiar errors.
  Sundial adds a few checks xyOps lacks, each because the value would otherwise be stored and
  then silently never fire or break the tick: schedules that can never match (Feb 30 only),
  years past 9999, non-whole schedule values, interval durations under one second,
  non-numeric delays, precision seconds outside 0..59 and unknown plugin-trigger timezones.
* :class:`EventPlan` answers, without storage, what the scheduler would launch for an
  event: in one minute (:meth:`EventPlan.launches_at`, the tick loop's question) or over
  the coming minutes (:func:`next_launches`, skipping ahead instead of ticking).
"""

from __future__ import annotations

import copy
import hashlib
import math
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol
from zoneinfo import ZoneInfoNotFoundError, available_timezones

from sundial.scheduler.cron import CronError, cron_to_timing
from sundial.scheduler.timing import (
    FIELDS,
    MINUTE,
    Timing,
    as_zone,
    fires_at,
    iter_runs,
    never_matches,
)

LAUNCHER_TYPES = frozenset({"schedule", "single", "interval"})
ON_DEMAND_TYPES = frozenset({"manual", "magic", "keyboard", "startup"})
MODIFIER_TYPES = frozenset({"catchup", "nth", "range", "blackout", "delay", "precision", "quiet", "plugin"})
TRIGGER_TYPES = LAUNCHER_TYPES | ON_DEMAND_TYPES | MODIFIER_TYPES

_TIMEZONE_SYNTAX = re.compile(r"^[\w/\-+]+$", re.ASCII)

# At most one enabled trigger of these kinds; the names are the ones xyOps prints.
_SINGLETON_LABELS = {
    "startup": "startup",
    "catchup": "catch-up",
    "nth": "every-nth",
    "manual": "manual",
    "precision": "precision",
    "quiet": "quiet",
    "plugin": "plugin",
}
_EXCLUSIVE_PAIRS = (
    ("interval", "precision", "Interval and precision triggers are mutually exclusive."),
    ("interval", "delay", "Interval and delay triggers are mutually exclusive."),
    ("precision", "delay", "Precision and delay triggers are mutually exclusive."),
)

_FIELD_LIMITS = {
    "years": (1, 9999),
    "months": (1, 12),
    "days": (-7, 31),
    "weekdays": (0, 6),
    "hours": (0, 23),
    "minutes": (0, 59),
}


class TriggerError(Exception):
    """A refused trigger list. ``code`` is the API error code (always "api" here)."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


# --------------------------------------------------------------------------------------------
# Value helpers: JSON numbers as xyOps (JavaScript) sees them


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_whole(value: Any) -> bool:
    return _is_number(value) and float(value).is_integer()


def _is_positive_whole(value: Any) -> bool:
    return _is_whole(value) and value > 0


def js_truthy(value: Any) -> bool:
    """JavaScript truthiness: empty arrays and objects count as true, NaN as false."""
    if value is None or value is False:
        return False
    if _is_number(value) or isinstance(value, float):
        return bool(value) and not (isinstance(value, float) and math.isnan(value))
    if isinstance(value, str):
        return value != ""
    return True


def _show(value: Any) -> str:
    """Print numbers the way JavaScript does (5.0 -> "5") so messages match xyOps."""
    if _is_whole(value):
        return str(int(value))
    return str(value)


def is_enabled(trigger: Any) -> bool:
    return isinstance(trigger, Mapping) and js_truthy(trigger.get("enabled"))


# --------------------------------------------------------------------------------------------
# Validation


@dataclass(frozen=True, slots=True)
class ValidationContext:
    """What validation needs from the rest of the system, passed in to keep this module pure.

    ``timezones``: the configured IANA list (None = every zone this Python knows).
    ``scheduler_plugins``: ids of existing plugins of type ``scheduler``.
    ``check_plugin_params``: returns an error message for bad plugin-trigger params, or None.
    """

    timezones: Collection[str] | None = None
    scheduler_plugins: Collection[str] = ()
    check_plugin_params: Callable[[str, Mapping[str, Any]], str | None] | None = None

    def knows_timezone(self, name: str) -> bool:
        return name in (self.timezones if self.timezones is not None else _known_timezones())


@lru_cache(maxsize=1)
def _known_timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def _schedule_field_error(name: str, message: str) -> TriggerError:
    return TriggerError("api", f"Malformed trigger parameter: {name} ({message})")


def _check_schedule_value(name: str, value: Any) -> None:
    if not _is_number(value):
        raise _schedule_field_error(name, "must be array of numbers")
    low, high = _FIELD_LIMITS[name]
    if not low <= value <= high or (name == "days" and value == 0):
        raise _schedule_field_error(name, f"out of range: {_show(value)}")
    if not _is_whole(value):
        raise _schedule_field_error(name, f"not a whole number: {_show(value)}")


def _check_schedule_fields(trigger: Mapping[str, Any]) -> None:
    """Field errors carry no entry number, as in xyOps; keys are checked in stored order."""
    for name in trigger:
        if name not in _FIELD_LIMITS:
            continue
        values = trigger[name]
        if not isinstance(values, list):
            raise _schedule_field_error(name, "must be array")
        for value in values:
            _check_schedule_value(name, value)


def _check_timezone(trigger: Mapping[str, Any], prefix: str, context: ValidationContext) -> None:
    zone = trigger.get("timezone")
    if not js_truthy(zone):
        return
    text = _show(zone)
    if not _TIMEZONE_SYNTAX.match(text):
        raise TriggerError("api", f"{prefix}: Invalid timezone: {text}")
    if not isinstance(zone, str) or not context.knows_timezone(zone):
        raise TriggerError("api", f"{prefix}: Unknown timezone: {text}")


def _crontab_fields(trigger: Mapping[str, Any], prefix: str) -> dict[str, Any] | None:
    """A ``crontab`` expression given on a schedule trigger, as the timing lists it stands for.

    The spec stores every schedule as lists (the UI's crontab preset is saved as a schedule),
    so an expression is only an input form: it replaces the lists and is not kept.
    """
    if "crontab" not in trigger:
        return None
    expression = trigger["crontab"]
    if not isinstance(expression, str) or not expression.strip():
        raise TriggerError("api", f"{prefix}: Malformed crontab expression (must be a non-empty string)")
    try:
        return cron_to_timing(expression).to_dict()
    except CronError as exc:
        raise TriggerError("api", f"{prefix}: Invalid crontab expression: {exc}") from None


def _check_schedule(trigger: Mapping[str, Any], prefix: str, context: ValidationContext) -> None:
    from_cron = _crontab_fields(trigger, prefix)
    if from_cron is not None:
        trigger = {**{k: v for k, v in trigger.items() if k not in _FIELD_LIMITS}, **from_cron}
    _check_schedule_fields(trigger)
    _check_timezone(trigger, prefix, context)
    impossible = never_matches(Timing.from_mapping(trigger))
    if impossible is not None:
        name, reason = impossible
        raise TriggerError("api", f"{prefix}: Schedule can never run: {name} ({reason})")


def _check_interval(trigger: Mapping[str, Any], prefix: str, context: ValidationContext) -> None:
    if not _is_positive_whole(trigger.get("start")):
        raise TriggerError("api", f"{prefix}: Invalid starting date/time specified for interval")
    duration: Any = trigger.get("duration")
    if not js_truthy(duration):
        raise TriggerError("api", f"{prefix}: Interval rule is missing duration.")
    if not _is_number(duration) or duration < 1:
        raise TriggerError("api", f"{prefix}: Interval duration must be a number of seconds, 1 or more.")


def _check_single(trigger: Mapping[str, Any], prefix: str, context: ValidationContext) -> None:
    if not _is_positive_whole(trigger.get("epoch")):
        raise TriggerError("api", f"{prefix}: Invalid date/time specified for single shot")


def _check_keyboard(trigger: Mapping[str, Any], prefix: str, context: ValidationContext) -> None:
    keys = trigger.get("keys")
    if not isinstance(keys, list) or not keys:
        raise TriggerError("api", f"{prefix}: Keyboard trigger has no shortcuts.")


def _check_nth(trigger: Mapping[str, Any], prefix: str, context: ValidationContext) -> None:
    every: Any = trigger.get("every")
    if not _is_whole(every) or every < 2:
        raise TriggerError("api", f"{prefix}: Every Nth value is invalid (must be 2 or higher).")


def _check_range(trigger: Mapping[str, Any], prefix: str, context: ValidationContext) -> None:
    start: Any = trigger.get("start")
    end: Any = trigger.get("end")
    if js_truthy(start) and not _is_positive_whole(start):
        raise TriggerError("api", f"{prefix}: Invalid start date/time specified for range")
    if js_truthy(end) and not _is_positive_whole(end):
        raise TriggerError("api", f"{prefix}: Invalid end date/time specified for range")
    if js_truthy(start) and js_truthy(end) and start > end:
        raise TriggerError("api", f"{prefix}: Invalid date range.  The start date cannot come after the end date.")


def _check_blackout(trigger: Mapping[str, Any], prefix: str, context: ValidationContext) -> None:
    start: Any = trigger.get("start")
    end: Any = trigger.get("end")
    if not js_truthy(start) or not js_truthy(end):
        raise TriggerError("api", f"{prefix}: Both a start and an end date are required for blackout.")
    if not _is_positive_whole(start):
        raise TriggerError("api", f"{prefix}: Invalid start date/time specified for blackout")
    if not _is_positive_whole(end):
        raise TriggerError("api", f"{prefix}: Invalid end date/time specified for blackout")
    if start > end:
        raise TriggerError(
            "api",
            f"{prefix}: Invalid date range for blackout.  The start date cannot come after the end date.",
        )


def _check_delay(trigger: Mapping[str, Any], prefix: str, context: ValidationContext) -> None:
    duration = trigger.get("duration")
    if not js_truthy(duration):
        raise TriggerError("api", f"{prefix}: Starting delay rule is missing duration.")
    if not _is_number(duration):
        raise TriggerError("api", f"{prefix}: Starting delay duration must be a number of seconds.")


def _check_precision(trigger: Mapping[str, Any], prefix: str, context: ValidationContext) -> None:
    seconds = trigger.get("seconds")
    if not js_truthy(seconds):
        raise TriggerError("api", f"{prefix}: Precision rule is missing seconds array.")
    if not isinstance(seconds, list):
        raise TriggerError("api", f"{prefix}: Precision seconds must be an array of numbers.")
    for second in seconds:
        if not _is_whole(second) or not 0 <= second <= 59:
            raise TriggerError(
                "api",
                f"{prefix}: Precision seconds must be whole numbers 0-59 (out of range: {_show(second)})",
            )


def _check_quiet(trigger: Mapping[str, Any], prefix: str, context: ValidationContext) -> None:
    if not js_truthy(trigger.get("invisible")) and not js_truthy(trigger.get("ephemeral")):
        raise TriggerError("api", f"{prefix}: Quiet rule must have one or more modes enabled.")


def _check_plugin(trigger: Mapping[str, Any], prefix: str, context: ValidationContext) -> None:
    plugin_id = trigger.get("plugin_id")
    if not isinstance(plugin_id, str) or plugin_id not in context.scheduler_plugins:
        raise TriggerError("api", f"{prefix}: Scheduler Plugin not found: {plugin_id}")
    if context.check_plugin_params is not None:
        params = trigger.get("params") or {}
        problem = context.check_plugin_params(plugin_id, params if isinstance(params, Mapping) else {})
        if problem:
            raise TriggerError("api", f"{prefix}: {problem}")
    _check_timezone(trigger, prefix, context)


def _no_checks(trigger: Mapping[str, Any], prefix: str, context: ValidationContext) -> None:
    """manual, magic, startup and catch-up carry nothing that can be wrong."""


_Checker = Callable[[Mapping[str, Any], str, ValidationContext], None]

_CHECKERS: dict[str, _Checker] = {
    "schedule": _check_schedule,
    "interval": _check_interval,
    "single": _check_single,
    "keyboard": _check_keyboard,
    "nth": _check_nth,
    "range": _check_range,
    "blackout": _check_blackout,
    "delay": _check_delay,
    "precision": _check_precision,
    "quiet": _check_quiet,
    "plugin": _check_plugin,
    "manual": _no_checks,
    "magic": _no_checks,
    "startup": _no_checks,
    "catchup": _no_checks,
}


def _check_entry(number: int, trigger: Any, context: ValidationContext) -> None:
    prefix = f"Malformed trigger entry #{number}"
    if not isinstance(trigger, Mapping):
        raise TriggerError("api", f"{prefix} (not an object)")
    kind = trigger.get("type")
    checker = _CHECKERS.get(kind) if isinstance(kind, str) else None
    if checker is None:
        raise TriggerError("api", f"{prefix}: Unknown type")
    checker(trigger, prefix, context)


def _check_composition(triggers: Sequence[Any]) -> None:
    """Rules between enabled triggers; disabled ones may sit in the list freely."""
    kinds = [t.get("type") for t in triggers if is_enabled(t)]
    for kind, label in _SINGLETON_LABELS.items():
        if kinds.count(kind) > 1:
            raise TriggerError("api", f"Only one {label} rule is allowed in trigger list.")
    for first, second, message in _EXCLUSIVE_PAIRS:
        if first in kinds and second in kinds:
            raise TriggerError("api", message)


def validate_triggers(triggers: Any, context: ValidationContext | None = None) -> None:
    """Refuse a trigger list with the first problem found (TriggerError, code "api").

    Every entry is checked, disabled ones included, before the composition rules.
    """
    if triggers is None:
        return
    if not isinstance(triggers, list):
        raise TriggerError("api", "Malformed event parameter: triggers (must be array)")
    context = context or ValidationContext()
    for number, trigger in enumerate(triggers, start=1):
        _check_entry(number, trigger, context)
    _check_composition(triggers)


# --------------------------------------------------------------------------------------------
# Normalisation after validation


def floor_to_minute(epoch: float) -> int:
    return math.floor(epoch / MINUTE) * MINUTE


def magic_token(key: str, event_id: str) -> str:
    """What is stored for a magic link: the plain key itself never is."""
    return hashlib.sha256(f"{key}{event_id}".encode()).hexdigest()


def _normalise_entry(trigger: Mapping[str, Any], event_id: str) -> dict[str, Any]:
    entry = copy.deepcopy(dict(trigger))
    kind = entry.get("type")
    if kind == "schedule" and "crontab" in entry:
        expression = entry.pop("crontab")
        for name in _FIELD_LIMITS:
            entry.pop(name, None)
        entry.update(cron_to_timing(str(expression)).to_dict())
    elif kind == "single":
        entry["epoch"] = floor_to_minute(entry["epoch"])
    elif kind in ("range", "blackout"):
        for edge in ("start", "end"):
            if js_truthy(entry.get(edge)):
                entry[edge] = floor_to_minute(entry[edge])
    elif kind == "magic" and "key" in entry:
        key = entry.pop("key")
        if js_truthy(key):
            entry["token"] = magic_token(_show(key), event_id)
    return entry


def normalise_triggers(triggers: Sequence[Mapping[str, Any]] | None, event_id: str) -> list[dict[str, Any]]:
    """Copies ready to store: single/range/blackout epochs floored, magic keys turned into tokens.

    Call after :func:`validate_triggers`; the input is not modified.
    """
    return [_normalise_entry(trigger, event_id) for trigger in triggers or []]


# --------------------------------------------------------------------------------------------
# Pure runtime arithmetic of single kinds


def _ceil_div(numerator: float, denominator: float) -> int:
    return int(-(-numerator // denominator))


def interval_hits(start: float, duration: float, minute: int) -> list[float]:
    """Second offsets within ``minute`` at which an interval fires (xyOps rule).

    A start inside the minute does not count until the next minute (``start > minute``),
    so an unaligned start's own instant never fires; this matches xyOps.
    """
    if start > minute or duration <= 0:
        return []
    steps = _ceil_div(minute - start, duration)
    hits = []
    while (instant := start + steps * duration) < minute + MINUTE:
        hits.append(instant - minute)
        steps += 1
    return hits


def single_fires(epoch: Any, minute: int) -> bool:
    """A single shot fires in the minute equal to its epoch; an unfloored legacy epoch never does."""
    return _is_whole(epoch) and epoch == minute


def in_range(start: float | None, end: float | None, epoch: float) -> bool:
    """Inside an allowed window; an open side is unbounded, a window with no sides is empty."""
    if start is None and end is None:
        return False
    return (start is None or start <= epoch) and (end is None or epoch <= end)


def in_blackout(start: float, end: float, epoch: float) -> bool:
    return start <= epoch <= end


def precision_offsets(trigger: Mapping[str, Any] | None) -> list[int]:
    """Seconds within a hit minute at which a precision trigger starts jobs (listed order)."""
    if trigger is None or not isinstance(trigger.get("seconds"), list):
        return []
    return [int(s) for s in trigger["seconds"] if _is_whole(s) and 0 <= s <= 59]


# --------------------------------------------------------------------------------------------
# Event plans: what the scheduler launches, minute by minute


@dataclass(frozen=True, slots=True)
class Launch:
    """One job the scheduler would start.

    ``minute``: the scheduled minute (the exactly-once key). ``now``: the job's nominal time
    (minute plus precision/interval offset). ``start_at``: when it actually starts (after any
    delay). ``plugin_decides``: a scheduler plugin must still approve it.
    """

    minute: int
    now: float
    start_at: float
    trigger_index: int
    trigger_type: str
    trigger_id: str | None = None
    plugin_decides: bool = False


class _Launcher(Protocol):
    index: int
    kind: str
    trigger_id: str | None

    def first_after(self, cursor: int) -> int | None: ...

    def fires_at(self, minute: int) -> bool: ...

    def offsets(self, minute: int) -> list[float]: ...


@dataclass(slots=True)
class _ScheduleLauncher:
    index: int
    trigger_id: str | None
    timing: Timing
    zone: Any
    kind: str = "schedule"
    _searched_from: int | None = None
    _found: int | None = None

    def first_after(self, cursor: int) -> int | None:
        """Remember the last search: cursors only move forward, so it usually still holds."""
        cached = self._searched_from is not None and self._searched_from <= cursor
        if not cached or (self._found is not None and self._found <= cursor):
            self._searched_from = cursor
            self._found = next(iter_runs(self.timing, self.zone, cursor), None)
        return self._found

    def fires_at(self, minute: int) -> bool:
        return fires_at(self.timing, self.zone, minute)

    def offsets(self, minute: int) -> list[float]:
        return []


@dataclass(slots=True)
class _IntervalLauncher:
    index: int
    trigger_id: str | None
    start: float
    duration: float
    kind: str = "interval"

    def first_after(self, cursor: int) -> int | None:
        """The minute of the first hit that interval_hits would report after ``cursor``."""
        if self.duration <= 0:
            return None
        lowest = max(math.ceil(self.start / MINUTE) * MINUTE, cursor + MINUTE)
        steps = max(_ceil_div(lowest - self.start, self.duration), 0)
        return floor_to_minute(self.start + steps * self.duration)

    def fires_at(self, minute: int) -> bool:
        return bool(self.offsets(minute))

    def offsets(self, minute: int) -> list[float]:
        return interval_hits(self.start, self.duration, minute)


@dataclass(slots=True)
class _SingleLauncher:
    index: int
    trigger_id: str | None
    epoch: Any
    kind: str = "single"

    def first_after(self, cursor: int) -> int | None:
        if _is_whole(self.epoch) and self.epoch % MINUTE == 0 and self.epoch > cursor:
            return int(self.epoch)
        return None

    def fires_at(self, minute: int) -> bool:
        return single_fires(self.epoch, minute)

    def offsets(self, minute: int) -> list[float]:
        return []


@dataclass(frozen=True, slots=True)
class _Window:
    start: float | None
    end: float | None


def _epoch_or_none(value: Any) -> float | None:
    return value if _is_number(value) and js_truthy(value) else None


# _blocked_until's answer when no range ever opens again.
_NEVER = -1


@dataclass(slots=True)
class EventPlan:
    """An event's enabled triggers, read once, ready to answer "what launches when".

    Modifiers apply only to scheduler launches, in the xyOps order: a minute needs a firing
    launcher, then must lie inside some range (if any) and outside every blackout, then pass
    every-Nth; each firing launcher then yields jobs shaped by plugin, precision (or interval
    offsets) and delay.
    """

    launchers: list[_Launcher] = field(default_factory=list)
    ranges: list[_Window] = field(default_factory=list)
    blackouts: list[_Window] = field(default_factory=list)
    nth_every: int | None = None
    delay_seconds: float | None = None
    precision_seconds: list[int] = field(default_factory=list)
    plugin_id: str | None = None

    @classmethod
    def from_triggers(cls, triggers: Sequence[Any], default_timezone: str) -> EventPlan:
        """Build from stored triggers; raises TriggerError for an unusable timezone or timing."""
        plan = cls()
        firsts: dict[str, Mapping[str, Any]] = {}
        for index, trigger in enumerate(triggers):
            if not is_enabled(trigger) or not isinstance(trigger.get("type"), str):
                continue
            kind = trigger["type"]
            firsts.setdefault(kind, trigger)
            plan._add(index, trigger, default_timezone)
        plan._apply_modifiers(firsts)
        return plan

    def _add(self, index: int, trigger: Mapping[str, Any], default_timezone: str) -> None:
        kind, trigger_id = trigger["type"], trigger.get("id")
        if kind == "schedule":
            self.launchers.append(_schedule_launcher(index, trigger, default_timezone))
        elif kind == "interval" and _is_number(trigger.get("start")) and _is_number(trigger.get("duration")):
            self.launchers.append(_IntervalLauncher(index, trigger_id, trigger["start"], trigger["duration"]))
        elif kind == "single":
            self.launchers.append(_SingleLauncher(index, trigger_id, trigger.get("epoch")))
        elif kind == "range":
            self.ranges.append(_Window(_epoch_or_none(trigger.get("start")), _epoch_or_none(trigger.get("end"))))
        elif kind == "blackout":
            start, end = _epoch_or_none(trigger.get("start")), _epoch_or_none(trigger.get("end"))
            if start is not None and end is not None:
                self.blackouts.append(_Window(start, end))

    def _apply_modifiers(self, firsts: Mapping[str, Mapping[str, Any]]) -> None:
        if "nth" in firsts and _is_whole(firsts["nth"].get("every")):
            self.nth_every = int(firsts["nth"]["every"])
        if "delay" in firsts and _is_number(firsts["delay"].get("duration")):
            self.delay_seconds = firsts["delay"]["duration"] or None
        self.precision_seconds = precision_offsets(firsts.get("precision"))
        if "plugin" in firsts:
            self.plugin_id = firsts["plugin"].get("plugin_id")

    # -- one minute ------------------------------------------------------------------------

    def admits(self, minute: int) -> bool:
        """Inside some range (when ranges exist) and outside every blackout."""
        if self.ranges and not any(in_range(r.start, r.end, minute) for r in self.ranges):
            return False
        return not any(in_blackout(b.start or 0, b.end or 0, minute) for b in self.blackouts)

    def launches_at(self, minute: int, nth_counter: int = 0) -> tuple[list[Launch], int]:
        """Jobs launched in one scheduler minute, and the every-Nth counter to store after it."""
        minute = floor_to_minute(minute)
        chosen = [launcher for launcher in self.launchers if launcher.fires_at(minute)]
        return self._launch_chosen(minute, chosen, nth_counter)

    def _launch_chosen(self, minute: int, chosen: list[_Launcher], nth_counter: int) -> tuple[list[Launch], int]:
        if not chosen or not self.admits(minute):
            return [], nth_counter
        if self.nth_every is not None:
            nth_counter -= 1
            if nth_counter > 0:
                return [], nth_counter
            nth_counter = self.nth_every
        return self._expand(minute, chosen), nth_counter

    def _seconds_for(self, minute: int, chosen: list[_Launcher]) -> list[float]:
        """xyOps quirk: an interval hit replaces the precision seconds for every job of the minute."""
        seconds: list[float] = list(self.precision_seconds)
        for launcher in chosen:
            hits = launcher.offsets(minute)
            if hits:
                seconds = hits
        return seconds

    def _expand(self, minute: int, chosen: list[_Launcher]) -> list[Launch]:
        seconds = self._seconds_for(minute, chosen)
        start_at = minute + self.delay_seconds if self.delay_seconds else minute
        launches = []
        for launcher in chosen:
            if self.plugin_id is not None:
                launches.append(_launch(launcher, minute, minute, start_at, plugin_decides=True))
            elif seconds:
                launches.extend(_launch(launcher, minute, minute + s, minute + s) for s in seconds)
            else:
                launches.append(_launch(launcher, minute, minute, start_at))
        return launches

    # -- looking ahead ---------------------------------------------------------------------

    def next_launches(
        self,
        after_epoch: float,
        count: int,
        end_epoch: float | None = None,
        nth_counter: int = 0,
    ) -> list[Launch]:
        """The next ``count`` launches in minutes after ``after_epoch`` (and before ``end_epoch``).

        Jumps from one launcher hit to the next and over whole blackouts and gaps between
        ranges, so sparse schedules cost little; stops early when nothing can launch again.
        """
        cursor = floor_to_minute(after_epoch)
        found: list[Launch] = []
        while len(found) < count:
            upcoming = {launcher.index: launcher.first_after(cursor) for launcher in self.launchers}
            minute = min((m for m in upcoming.values() if m is not None), default=None)
            if minute is None or (end_epoch is not None and minute >= end_epoch):
                break
            skip_to = self._blocked_until(minute)
            if skip_to is not None:
                if skip_to == _NEVER:
                    break
                cursor = skip_to
                continue
            chosen = [launcher for launcher in self.launchers if upcoming[launcher.index] == minute]
            launches, nth_counter = self._launch_chosen(minute, chosen, nth_counter)
            found.extend(launches)
            cursor = minute
        return found[:count]

    def _blocked_until(self, minute: int) -> int | None:
        """None if ``minute`` may launch; else the cursor to resume from (or _NEVER)."""
        if self.ranges and not any(in_range(r.start, r.end, minute) for r in self.ranges):
            later_starts = [r.start for r in self.ranges if r.start is not None and r.start > minute]
            if not later_starts:
                return _NEVER
            return math.ceil(min(later_starts) / MINUTE) * MINUTE - MINUTE
        covering = [b.end for b in self.blackouts if in_blackout(b.start or 0, b.end or 0, minute)]
        if covering:
            return floor_to_minute(max(e for e in covering if e is not None))
        return None


def _launch(launcher: _Launcher, minute: int, now: float, start_at: float, plugin_decides: bool = False) -> Launch:
    return Launch(minute, now, start_at, launcher.index, launcher.kind, launcher.trigger_id, plugin_decides)


def _schedule_launcher(index: int, trigger: Mapping[str, Any], default_timezone: str) -> _ScheduleLauncher:
    zone_name = trigger.get("timezone") or default_timezone
    try:
        zone = as_zone(zone_name)
        timing = Timing.from_mapping({name: trigger.get(name) for name in FIELDS})
    except (ZoneInfoNotFoundError, ValueError, TypeError) as error:
        raise TriggerError("api", f"Malformed trigger entry #{index + 1}: {error}") from error
    return _ScheduleLauncher(index, trigger.get("id"), timing, zone)


def next_launches(
    triggers: Sequence[Any],
    *,
    after_epoch: float,
    count: int,
    default_timezone: str,
    end_epoch: float | None = None,
    nth_counter: int = 0,
) -> list[Launch]:
    """The next ``count`` scheduler launches of an event with these triggers (see EventPlan)."""
    plan = EventPlan.from_triggers(triggers, default_timezone)
    return plan.next_launches(after_epoch, count, end_epoch=end_epoch, nth_counter=nth_counter)
