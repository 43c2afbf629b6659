"""Crontab expressions turned into the xyOps timing object.

xyOps stores every schedule as a timing object (its UI's "crontab" preset is saved as a
``schedule`` trigger), so cron is only an input convenience: parse once, store the timing.

Supported: five fields (minute hour day-of-month month day-of-week); ``*``, single values,
``a-b`` ranges, ``/step`` on ``*``, ranges or a single start (``5/15`` = 5, 20, 35, 50),
comma lists, month and weekday names (``jan``..``dec``, ``sun``..``sat``, any case), ``7`` as
Sunday, ``L`` as the last day of the month (stored as day -1), and the shorthands
``@yearly @annually @monthly @weekly @daily @midnight @hourly``.

One cron rule has no timing equivalent: when both day-of-month and day-of-week are
restricted, cron runs on days matching *either*, while a timing requires *both*. Such
expressions are refused with an explanation rather than silently changing meaning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sundial.scheduler.timing import Timing, never_matches

MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
WEEKDAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")

SHORTHANDS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_NUMBER = re.compile(r"^\d+$")


class CronError(ValueError):
    """An expression that cannot be read or has no timing equivalent; the message says why."""


@dataclass(frozen=True, slots=True)
class _FieldSpec:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    names_start: int = 0

    def value_of(self, token: str) -> int:
        """A number or a name; names count from ``names_start`` (jan = 1, sun = 0)."""
        lowered = token.lower()
        if lowered in self.names:
            return self.names.index(lowered) + self.names_start
        if not _NUMBER.match(token):
            raise CronError(f"cron {self.name}: '{token}' is not a number or a known name")
        return int(token)


_MINUTE = _FieldSpec("minute", 0, 59)
_HOUR = _FieldSpec("hour", 0, 23)
_DAY = _FieldSpec("day-of-month", 1, 31)
_MONTH = _FieldSpec("month", 1, 12, MONTH_NAMES, 1)
# 7 is accepted as a second spelling of Sunday and folded onto 0 afterwards.
_WEEKDAY = _FieldSpec("day-of-week", 0, 7, WEEKDAY_NAMES, 0)


def _step_of(spec: _FieldSpec, text: str) -> int:
    if not _NUMBER.match(text) or int(text) == 0:
        raise CronError(f"cron {spec.name}: step '{text}' must be a positive whole number")
    return int(text)


def _bounds_of(spec: _FieldSpec, base: str, stepped: bool) -> tuple[int, int]:
    """The range a list item covers before stepping: ``*``, ``a-b``, or ``a`` (to the top if stepped)."""
    if base == "*":
        return spec.low, spec.high
    if "-" in base:
        first_text, _, last_text = base.partition("-")
        first, last = spec.value_of(first_text), spec.value_of(last_text)
        if first > last:
            raise CronError(f"cron {spec.name}: range '{base}' runs backwards")
        return first, last
    value = spec.value_of(base)
    return value, spec.high if stepped else value


def _expand_item(spec: _FieldSpec, item: str) -> set[int]:
    base, slash, step_text = item.partition("/")
    step = _step_of(spec, step_text) if slash else 1
    first, last = _bounds_of(spec, base, stepped=bool(slash))
    for value in (first, last):
        if not spec.low <= value <= spec.high:
            raise CronError(f"cron {spec.name}: {value} is out of range {spec.low}-{spec.high}")
    return set(range(first, last + 1, step))


def _expand_field(spec: _FieldSpec, text: str) -> set[int]:
    if not text:
        raise CronError(f"cron {spec.name}: empty field")
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise CronError(f"cron {spec.name}: empty item in list '{text}'")
        values |= _expand_item(spec, item)
    return values


def _as_timing_list(values: set[int], full: set[int]) -> tuple[int, ...]:
    """An unrestricted field is stored empty, the timing object's spelling of "any"."""
    return () if values >= full else tuple(sorted(values))


def _day_of_month_values(text: str) -> set[int]:
    """Day-of-month items, plus ``L`` for the last day (timing day -1)."""
    values: set[int] = set()
    plain_items = []
    for item in text.split(","):
        if item.upper() == "L":
            values.add(-1)
        else:
            plain_items.append(item)
    if plain_items:
        values |= _expand_field(_DAY, ",".join(plain_items))
    return values


def _weekday_values(text: str) -> set[int]:
    return {value % 7 for value in _expand_field(_WEEKDAY, text)}


def _day_fields(day_text: str, weekday_text: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Apply cron's day rule: a restricted day-of-month and day-of-week are ORed, not ANDed."""
    days = _as_timing_list(_day_of_month_values(day_text), set(range(1, 32)))
    weekdays = _as_timing_list(_weekday_values(weekday_text), set(range(7)))
    both_restricted = not day_text.startswith("*") and not weekday_text.startswith("*")
    if both_restricted and days and weekdays:
        raise CronError(
            "cron runs on days matching day-of-month OR day-of-week when both are set, "
            "which a schedule cannot express; use '*' in one of them, or two events"
        )
    if both_restricted and (not days or not weekdays):
        return (), ()  # one side already allows every day, so the OR does too
    return days, weekdays


def cron_to_timing(expression: str) -> Timing:
    """Parse a cron expression into a timing object; raise CronError naming the bad field."""
    text = " ".join(expression.split())
    if text.startswith("@"):
        if text.lower() == "@reboot":
            raise CronError("cron @reboot has no schedule equivalent; use a startup trigger")
        if text.lower() not in SHORTHANDS:
            raise CronError(f"unknown cron shorthand '{text}'")
        text = SHORTHANDS[text.lower()]
    parts = text.split(" ")
    if len(parts) != 5:
        raise CronError(f"cron expression needs 5 fields (minute hour day month weekday), got {len(parts)}")
    minute_text, hour_text, day_text, month_text, weekday_text = parts
    days, weekdays = _day_fields(day_text, weekday_text)
    timing = Timing(
        minutes=_as_timing_list(_expand_field(_MINUTE, minute_text), set(range(60))),
        hours=_as_timing_list(_expand_field(_HOUR, hour_text), set(range(24))),
        days=days,
        months=_as_timing_list(_expand_field(_MONTH, month_text), set(range(1, 13))),
        weekdays=weekdays,
    )
    impossible = never_matches(timing)
    if impossible is not None:
        raise CronError(f"cron expression can never run: {impossible[1]}")
    return timing


def cron_to_schedule_trigger(expression: str, timezone: str | None = None) -> dict[str, Any]:
    """A ready-to-validate ``schedule`` trigger for an expression (enabled, optional timezone)."""
    trigger: dict[str, Any] = {"type": "schedule", "enabled": True, **cron_to_timing(expression).to_dict()}
    if timezone:
        trigger["timezone"] = timezone
    return trigger
