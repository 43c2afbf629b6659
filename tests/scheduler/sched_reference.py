"""Slow, obviously-correct reference computations and shared Hypothesis settings.

Nothing here imports the code under test: the references restate the rules from the spec and
docs/scheduler.md in the most literal way (walk every real minute, look at the local clock),
so agreement with the fast skip-ahead code means something.
"""

from __future__ import annotations

import calendar
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, settings

# Profiles: the default keeps tests/scheduler well under 20 s on two cores; set
# SUNDIAL_SCHEDULER_PROFILE=scheduler-thorough for a long soak.
settings.register_profile(
    "scheduler",
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.register_profile(
    "scheduler-thorough",
    max_examples=1500,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
PROFILE = settings.get_profile(os.environ.get("SUNDIAL_SCHEDULER_PROFILE", "scheduler"))


def fewer(divisor: int) -> settings:
    """The active profile with fewer examples, for the expensive long-span properties."""
    return settings(PROFILE, max_examples=max(PROFILE.max_examples // divisor, 5))


DST_ZONES = (
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",  # 30-minute DST shift
    "Pacific/Chatham",  # +12:45 / +13:45, changes at 02:45
    "America/Sao_Paulo",  # historical changes at midnight (the day starts at 01:00)
    "Pacific/Apia",  # skipped all of 2011-12-30
)
STEADY_ZONES = ("Asia/Kolkata", "UTC")
ALL_ZONES = DST_ZONES + STEADY_ZONES

ONE_MINUTE = timedelta(minutes=1)


def local_wall(epoch: int, zone: ZoneInfo) -> datetime:
    """What a wall clock in ``zone`` shows at ``epoch``, to the minute, without zone."""
    shown = datetime.fromtimestamp(epoch, zone)
    return datetime(shown.year, shown.month, shown.day, shown.hour, shown.minute)


def reference_matches(timing: Mapping[str, Sequence[int]], wall: datetime) -> bool:
    """The xyOps rule read literally: each non-empty list must contain the clock's value."""
    month_length = calendar.monthrange(wall.year, wall.month)[1]
    readings = {
        "years": [wall.year],
        "months": [wall.month],
        "days": [wall.day, wall.day - month_length - 1],
        "weekdays": [int(wall.strftime("%w"))],
        "hours": [wall.hour],
        "minutes": [wall.minute],
    }
    return all(
        not timing.get(name) or any(value in timing[name] for value in values) for name, values in readings.items()
    )


def reference_runs(timing: Mapping[str, Sequence[int]], zone: ZoneInfo, start: int, end: int) -> list[int]:
    """Launch minutes in ``[start, end)`` by walking every real minute.

    The rule of docs/scheduler.md: a minute launches when the local clock newly reaches (for the
    first time) a matching wall minute, or jumps past one. The walk starts a day early so that
    "newly" is known at ``start``.
    """
    first_tick = start - start % 60 - 86400
    highest = local_wall(first_tick, zone)
    runs = []
    for tick in range(first_tick + 60, end, 60):
        shown = local_wall(tick, zone)
        if shown <= highest:
            continue
        newly_reached = highest + ONE_MINUTE
        hit = False
        while newly_reached <= shown and not hit:
            hit = reference_matches(timing, newly_reached)
            newly_reached += ONE_MINUTE
        highest = shown
        if hit and tick >= start:
            runs.append(tick)
    return runs


def reference_date_matches(timing: Mapping[str, Sequence[int]], day: date) -> bool:
    return reference_matches({**timing, "hours": [], "minutes": []}, datetime(day.year, day.month, day.day))


@cache
def transitions(zone_name: str, first_year: int = 2005, last_year: int = 2035) -> tuple[int, ...]:
    """Instants where the zone's UTC offset changes, found by daily sampling then bisection."""
    zone = ZoneInfo(zone_name)
    found = []
    day = 86400
    tick = int(datetime(first_year, 1, 1, tzinfo=UTC).timestamp())
    stop = int(datetime(last_year + 1, 1, 1, tzinfo=UTC).timestamp())

    def offset(epoch: int) -> timedelta | None:
        return datetime.fromtimestamp(epoch, zone).utcoffset()

    while tick < stop:
        if offset(tick) != offset(tick + day):
            low, high = tick, tick + day
            while high - low > 60:
                middle = (low + high) // 2 // 60 * 60
                if offset(middle) == offset(low):
                    low = middle
                else:
                    high = middle
            found.append(high)
        tick += day
    return tuple(found)
