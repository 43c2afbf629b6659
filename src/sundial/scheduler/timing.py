"""The xyOps timing object and the instants at which it launches, in a given timezone.

A timing lists allowed ``years``, ``months``, ``days``, ``weekdays`` (0 = Sunday), ``hours``
and ``minutes``; an empty list allows every value. ``days`` may hold -7..-1, counted back from
the end of the month (-1 is the last day). A local wall-clock minute *matches* when every
non-empty list contains the corresponding field; that is the xyOps rule, see :func:`matches`.

The scheduler runs on real (UTC) minutes, and local clocks jump around daylight saving
changes. Sundial resolves that with one rule:

    A matching local minute launches at the first real minute at which the local clock
    shows that time or a later one -- exactly once.

Consequences, which is what DESIGN.md asks for:

* Spring forward (a skipped stretch, e.g. 02:00-02:59 in New York, 02:00-02:29 on Lord Howe
  Island, 02:45-03:44 in Chatham): every matching minute inside the gap launches at the first
  real minute after the jump (03:00 in New York). Several skipped matches and a match on the
  jump minute itself collapse into one launch: one launch per real minute, never two.
* Fall back (a repeated stretch, e.g. 01:00-01:59 twice in New York): a matching minute
  launches on its first occurrence only; the replay of the hour launches nothing.
* Zones without DST (Asia/Kolkata) and UTC are unaffected; offsets with seconds (local mean
  time before ~1972) are floored to the minute like any wall-clock reading.

Formally, let ``H(t)`` be the latest local wall minute shown at any real minute ``<= t``. The
real minute ``M`` launches when some matching wall minute ``w`` has ``H(M - 60) < w <= H(M)``.
:func:`fires_at` answers that for one minute (the tick loop's question);
:func:`iter_runs`, :func:`next_runs` and :func:`runs_between` list such minutes in order by
skipping through matching dates rather than walking minute by minute, and stop on timings
that can never match (see :func:`never_matches`) instead of searching forever.
"""

from __future__ import annotations

import calendar
import math
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from itertools import islice
from typing import Any
from zoneinfo import ZoneInfo

MINUTE = 60
FIELDS: tuple[str, ...] = ("years", "months", "days", "weekdays", "hours", "minutes")

# Python's datetime spans years 1..9999; stay one day inside so offsets never overflow.
MIN_YEAR = 1
MAX_YEAR = 9999
_FIRST_DATE = date(MIN_YEAR, 1, 2)
_LAST_DATE = date(MAX_YEAR, 12, 30)

_ONE_MINUTE = timedelta(minutes=1)
_LONGEST_MONTH = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}
# The Gregorian calendar, weekdays included, repeats every 400 years.
_CALENDAR_CYCLE_YEARS = 400


def _field_is_valid(name: str, value: int) -> bool:
    """Ranges of each timing field, as xyOps validates them (years capped by Python's datetime)."""
    if name == "years":
        return MIN_YEAR <= value <= MAX_YEAR
    if name == "months":
        return 1 <= value <= 12
    if name == "days":
        return -7 <= value <= 31 and value != 0
    if name == "weekdays":
        return 0 <= value <= 6
    if name == "hours":
        return 0 <= value <= 23
    return 0 <= value <= 59


@dataclass(frozen=True, slots=True)
class Timing:
    """Allowed values per field, each sorted and de-duplicated; empty means "any".

    Frozen and hashable so per-timing facts (such as satisfiability) can be cached.
    Construction refuses out-of-range values so the search code never meets garbage;
    the API-facing messages come from ``sundial.scheduler.triggers``.
    """

    years: tuple[int, ...] = ()
    months: tuple[int, ...] = ()
    days: tuple[int, ...] = ()
    weekdays: tuple[int, ...] = ()
    hours: tuple[int, ...] = ()
    minutes: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for name in FIELDS:
            values = tuple(sorted(set(getattr(self, name))))
            for value in values:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(f"timing field {name} must hold integers, got {value!r}")
                if not _field_is_valid(name, value):
                    raise ValueError(f"timing field {name} out of range: {value}")
            object.__setattr__(self, name, values)

    @classmethod
    def build(cls, **fields: Iterable[int]) -> Timing:
        """Keyword convenience: ``Timing.build(hours=[3], minutes=[0, 30])``."""
        return cls(**{name: tuple(values) for name, values in fields.items()})

    @classmethod
    def from_mapping(cls, source: Mapping[str, Any]) -> Timing:
        """Read the six fields from a (validated) schedule trigger; other keys are ignored."""
        picked: dict[str, tuple[int, ...]] = {}
        for name in FIELDS:
            values = source.get(name)
            if values:
                picked[name] = tuple(int(v) for v in values)
        return cls(**picked)

    def to_dict(self) -> dict[str, list[int]]:
        """The xyOps shape: only the restricted fields, as lists."""
        return {name: list(getattr(self, name)) for name in FIELDS if getattr(self, name)}


# --------------------------------------------------------------------------------------------
# Wall-clock matching (the xyOps rule)


def weekday_sunday_first(day: date) -> int:
    """xyOps numbers weekdays from Sunday = 0; Python from Monday = 0."""
    return (day.weekday() + 1) % 7


def reverse_day(day: date) -> int:
    """Day counted back from the month end: the last day is -1."""
    return day.day - calendar.monthrange(day.year, day.month)[1] - 1


def _date_matches(timing: Timing, day: date) -> bool:
    if timing.years and day.year not in timing.years:
        return False
    if timing.months and day.month not in timing.months:
        return False
    if timing.days and day.day not in timing.days and reverse_day(day) not in timing.days:
        return False
    return not timing.weekdays or weekday_sunday_first(day) in timing.weekdays


def matches(timing: Timing, local: datetime) -> bool:
    """Does this wall-clock reading match? Uses the datetime's own fields, whatever its tzinfo.

    This is the per-minute test xyOps applies; which real minutes launch around DST changes
    is decided by :func:`fires_at`, which builds on it.
    """
    if timing.hours and local.hour not in timing.hours:
        return False
    if timing.minutes and local.minute not in timing.minutes:
        return False
    return _date_matches(timing, local.date())


def date_parts(epoch: float, tz: tzinfo | str) -> dict[str, int]:
    """Local calendar parts of an instant, in the xyOps ``dargs`` shape handed to plugins."""
    local = datetime.fromtimestamp(epoch, as_zone(tz))
    return {
        "year": local.year,
        "month": local.month,
        "day": local.day,
        "rday": reverse_day(local.date()),
        "weekday": weekday_sunday_first(local.date()),
        "hour": local.hour,
        "minute": local.minute,
    }


# --------------------------------------------------------------------------------------------
# Satisfiability: refuse to search for what cannot exist


def _days_in_month_matching(timing: Timing, year: int, month: int) -> list[int]:
    """Days of one month allowed by days (incl. reverse days) and weekdays, ascending."""
    first_weekday, length = calendar.monthrange(year, month)
    if timing.days:
        wanted = {d if d > 0 else length + d + 1 for d in timing.days if d <= length}
        candidates: Iterable[int] = sorted(wanted)
    else:
        candidates = range(1, length + 1)
    if not timing.weekdays:
        return list(candidates)
    sunday_first = (first_weekday + 1) % 7
    return [d for d in candidates if (sunday_first + d - 1) % 7 in timing.weekdays]


def _month_day_pair_exists(timing: Timing) -> bool:
    months = timing.months or tuple(range(1, 13))
    days = timing.days or (1,)
    return any(d < 0 or d <= _LONGEST_MONTH[m] for m in months for d in days)


def _some_listed_year_matches(timing: Timing) -> bool:
    """Check one year per 400-year calendar class: identical calendars give identical answers."""
    seen_classes: set[int] = set()
    for year in timing.years:
        if year % _CALENDAR_CYCLE_YEARS in seen_classes:
            continue
        seen_classes.add(year % _CALENDAR_CYCLE_YEARS)
        for month in timing.months or range(1, 13):
            if _days_in_month_matching(timing, year, month):
                return True
    return False


@lru_cache(maxsize=4096)
def never_matches(timing: Timing) -> tuple[str, str] | None:
    """Why a timing can never match any date, as ``(field, reason)``; None if it can.

    Hours and minutes cannot make a timing impossible (every wall minute launches somewhere,
    see the module docstring), so only the date fields are examined. Without a ``years``
    list any possible month/day pair eventually falls on every weekday, so the check is
    exact and cheap.
    """
    if not _month_day_pair_exists(timing):
        months = list(timing.months) or "any month"
        return "days", f"no day {list(timing.days)} exists in {months}"
    if not timing.years or _some_listed_year_matches(timing):
        return None
    if timing.weekdays and _some_listed_year_matches(Timing.build(**_without(timing, "weekdays"))):
        return "weekdays", f"no matching date in years {list(timing.years)} falls on {list(timing.weekdays)}"
    return "years", f"no matching date exists in years {list(timing.years)}"


def _without(timing: Timing, field: str) -> dict[str, tuple[int, ...]]:
    return {name: getattr(timing, name) for name in FIELDS if name != field}


# --------------------------------------------------------------------------------------------
# From local wall minutes to real launch minutes


@lru_cache(maxsize=512)
def _zone_named(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def as_zone(tz: tzinfo | str) -> tzinfo:
    """Accept a zone object or an IANA name (cached); unknown names raise ZoneInfoNotFoundError."""
    return _zone_named(tz) if isinstance(tz, str) else tz


def _floor_minute(epoch: float) -> int:
    return math.floor(epoch / MINUTE) * MINUTE


def _ceil_minute(epoch: float) -> int:
    return math.ceil(epoch / MINUTE) * MINUTE


def _wall_minute(tick: int, zone: tzinfo) -> datetime:
    """Naive local wall time shown at a real instant, floored to the minute."""
    return datetime.fromtimestamp(tick, zone).replace(tzinfo=None, second=0, microsecond=0)


def _is_replay(tick: int, zone: tzinfo) -> bool:
    """True inside a repeated (fall-back) stretch, on its second pass."""
    return bool(datetime.fromtimestamp(tick, zone).fold)


def _high_water_wall(tick: int, zone: tzinfo) -> datetime:
    """H(tick): the latest wall minute the clock has shown at any real minute up to ``tick``.

    Outside a replayed stretch that is simply the current wall minute. Inside one, the clock
    already showed later times before falling back: find the last minute before the
    fall-back by bisection between the first pass of this wall time and now.
    """
    wall = _wall_minute(tick, zone)
    if not _is_replay(tick, zone):
        return wall
    first_pass = wall.replace(tzinfo=zone, fold=0).timestamp()
    before, inside = _floor_minute(first_pass), tick
    while inside - before > MINUTE:
        middle = _floor_minute((before + inside) / 2)
        if _is_replay(middle, zone):
            inside = middle
        else:
            before = middle
    return _wall_minute(before, zone)


def _first_tick_reaching(wall: datetime, zone: tzinfo) -> int:
    """The first real minute whose local wall minute is ``wall`` or later.

    For an existing wall time this is its first occurrence (fold 0). For a skipped one the
    two folds bracket the jump; bisect between them for the first minute after it.
    """
    early = wall.replace(tzinfo=zone, fold=0).timestamp()
    late = wall.replace(tzinfo=zone, fold=1).timestamp()
    if late >= early:  # exists, possibly twice: the earlier reading comes first
        return _ceil_minute(early)
    below, above = _floor_minute(late), _ceil_minute(early)
    while above - below > MINUTE:
        middle = _floor_minute((below + above) / 2)
        if _wall_minute(middle, zone) >= wall:
            above = middle
        else:
            below = middle
    return above


class _DayClock:
    """Maps the wall minutes of one local date to launch ticks.

    Almost every day has one UTC offset from midnight to midnight; then a launch tick is
    plain arithmetic from the day's start. Only on a transition day is each wall minute
    resolved through the zone.
    """

    __slots__ = ("_day", "_start", "_zone")

    def __init__(self, day: date, zone: tzinfo) -> None:
        self._day = day
        self._zone = zone
        self._start = _uniform_day_start(day, zone)

    def tick_for(self, hour: int, minute: int) -> int:
        if self._start is not None:
            return _ceil_minute(self._start + hour * 3600 + minute * MINUTE)
        return _first_tick_reaching(datetime.combine(self._day, time(hour, minute)), self._zone)


def _uniform_day_start(day: date, zone: tzinfo) -> float | None:
    """The instant of local midnight when the whole day shares one offset, else None."""
    midnight = datetime.combine(day, time())
    instants = []
    for offset_hours in (0, 12, 24):
        moment = midnight + timedelta(hours=offset_hours)
        early = moment.replace(tzinfo=zone, fold=0).timestamp()
        if moment.replace(tzinfo=zone, fold=1).timestamp() != early:
            return None
        instants.append(early)
    if instants[1] - instants[0] != 12 * 3600 or instants[2] - instants[1] != 12 * 3600:
        return None
    return instants[0]


# --------------------------------------------------------------------------------------------
# Skipping through matching dates and times


def _candidate_years(timing: Timing, first: int, last: int) -> Iterable[int]:
    if timing.years:
        return (y for y in timing.years if first <= y <= last)
    return range(first, last + 1)


def _matching_dates(timing: Timing, first: date, last: date) -> Iterator[date]:
    """Dates in ``[first, last]`` matching the date fields, ascending, month by month."""
    for year in _candidate_years(timing, first.year, last.year):
        for month in timing.months or range(1, 13):
            if (year, month) < (first.year, first.month):
                continue
            if (year, month) > (last.year, last.month):
                return
            for day_number in _days_in_month_matching(timing, year, month):
                day = date(year, month, day_number)
                if day < first:
                    continue
                if day > last:
                    return
                yield day


def _times_of_day(timing: Timing, earliest: time | None) -> Iterator[tuple[int, int]]:
    """Matching (hour, minute) pairs of a day from ``earliest`` on, ascending."""
    hours: Sequence[int] = timing.hours or range(24)
    minutes: Sequence[int] = timing.minutes or range(60)
    start_hour = 0 if earliest is None else earliest.hour
    for hour in islice(hours, bisect_left(hours, start_hour), None):
        first_minute = 0
        if earliest is not None and hour == earliest.hour:
            first_minute = bisect_left(minutes, earliest.minute)
        for minute in islice(minutes, first_minute, None):
            yield hour, minute


def _search_start(after_epoch: float, zone: tzinfo) -> datetime | None:
    """The first wall minute that would launch strictly after ``after_epoch``."""
    first_tick = int(datetime.combine(_FIRST_DATE, time(), zone).timestamp())
    last_tick = int(datetime.combine(_LAST_DATE, time(), zone).timestamp())
    tick = max(_floor_minute(after_epoch), first_tick)
    if tick >= last_tick:
        return None
    return _high_water_wall(tick, zone) + _ONE_MINUTE


def _iter_runs_until(timing: Timing, zone: tzinfo, after_epoch: float, last_date: date) -> Iterator[int]:
    if never_matches(timing) is not None:
        return
    start_wall = _search_start(after_epoch, zone)
    if start_wall is None:
        return
    last_yielded = _floor_minute(after_epoch)
    for day in _matching_dates(timing, start_wall.date(), min(last_date, _LAST_DATE)):
        clock = _DayClock(day, zone)
        earliest = start_wall.time() if day == start_wall.date() else None
        for hour, minute in _times_of_day(timing, earliest):
            tick = clock.tick_for(hour, minute)
            if tick > last_yielded:  # collapses skipped-hour matches onto one launch
                last_yielded = tick
                yield tick


def iter_runs(timing: Timing, tz: tzinfo | str, after_epoch: float) -> Iterator[int]:
    """Launch minutes (epoch seconds, multiples of 60) strictly after ``after_epoch``, lazily.

    Ends when the calendar (year 9999) runs out, or at once for a timing that can never match.
    """
    return _iter_runs_until(timing, as_zone(tz), after_epoch, _LAST_DATE)


def next_runs(timing: Timing, tz: tzinfo | str, after_epoch: float, count: int) -> list[int]:
    """The next ``count`` launch minutes after ``after_epoch``; fewer (maybe none) if no more exist."""
    return list(islice(iter_runs(timing, tz, after_epoch), max(count, 0)))


def runs_between(timing: Timing, tz: tzinfo | str, start_epoch: float, end_epoch: float) -> list[int]:
    """Launch minutes ``t`` with ``start_epoch <= t < end_epoch``, ascending.

    The date search stops two local days past ``end_epoch`` so sparse timings cost nothing.
    """
    zone = as_zone(tz)
    if end_epoch <= start_epoch:
        return []
    last_date = _local_date_bound(end_epoch, zone)
    runs = []
    for tick in _iter_runs_until(timing, zone, start_epoch - 1, last_date):
        if tick >= end_epoch:
            break
        runs.append(tick)
    return runs


def fires_at(timing: Timing, tz: tzinfo | str, epoch: float) -> bool:
    """Does the real minute containing ``epoch`` launch this timing? The tick loop's question."""
    zone = as_zone(tz)
    tick = _floor_minute(epoch)
    candidates = _iter_runs_until(timing, zone, tick - MINUTE, _local_date_bound(tick + MINUTE, zone))
    return next(candidates, None) == tick


def _local_date_bound(epoch: float, zone: tzinfo) -> date:
    """A local date safely past ``epoch``: offsets never exceed a day."""
    try:
        return min(datetime.fromtimestamp(epoch, zone).date() + timedelta(days=2), _LAST_DATE)
    except (OverflowError, ValueError, OSError):
        return _LAST_DATE if epoch > 0 else _FIRST_DATE
