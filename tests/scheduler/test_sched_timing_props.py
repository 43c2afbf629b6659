"""Property tests: the skip-ahead timing search against minute-by-minute references."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import assume, given
from hypothesis import strategies as st
from sched_reference import (
    ALL_ZONES,
    DST_ZONES,
    PROFILE,
    fewer,
    local_wall,
    reference_date_matches,
    reference_matches,
    reference_runs,
    transitions,
)

from sundial.scheduler.timing import (
    Timing,
    date_parts,
    fires_at,
    matches,
    never_matches,
    next_runs,
    runs_between,
)

EPOCH_2005 = int(datetime(2005, 1, 1, tzinfo=UTC).timestamp())
EPOCH_2035 = int(datetime(2035, 12, 1, tzinfo=UTC).timestamp())


def _subset(values: range, max_size: int = 4) -> st.SearchStrategy[list[int]]:
    return st.one_of(st.just([]), st.lists(st.sampled_from(values), min_size=1, max_size=max_size, unique=True))


@st.composite
def window_near_change(draw: st.DrawFn) -> tuple[str, int, int]:
    """A zone and a window of up to a day, usually straddling a UTC-offset change."""
    zone = draw(st.sampled_from(ALL_ZONES))
    changes = transitions(zone)
    near_change: bool = draw(st.booleans())
    if changes and near_change:
        anchor = draw(st.sampled_from(changes))
        start = anchor + draw(st.integers(-20 * 3600, 2 * 3600))
    else:
        start = draw(st.integers(EPOCH_2005, EPOCH_2035))
    length = draw(st.integers(60, 86400))
    return zone, start, start + length


@st.composite
def timing_for_window(draw: st.DrawFn, zone: str, start: int) -> dict[str, list[int]]:
    """Mostly hour/minute timings; date fields borrow the window's own date so they can match."""
    local = datetime.fromtimestamp(start, ZoneInfo(zone))
    month_length = calendar.monthrange(local.year, local.month)[1]
    own_days = [local.day, local.day + 1, local.day - month_length - 1, local.day - month_length]
    days = draw(st.one_of(st.just([]), st.lists(st.sampled_from([d for d in own_days if d and -7 <= d <= 31]))))
    return {
        "years": draw(st.sampled_from([[], [local.year], [local.year, local.year + 1]])),
        "months": draw(st.sampled_from([[], [local.month], [local.month % 12 + 1, local.month]])),
        "days": sorted(set(days)),
        "weekdays": draw(_subset(range(7), 3)),
        "hours": draw(_subset(range(24))),
        "minutes": draw(st.one_of(_subset(range(60), 5), st.just([0, 15, 30, 45]))),
    }


@PROFILE
@given(data=st.data())
def test_runs_between_equals_minute_walk(data: st.DataObject) -> None:
    zone, start, end = data.draw(window_near_change())
    fields = data.draw(timing_for_window(zone, start))
    expected = reference_runs(fields, ZoneInfo(zone), start, end)
    assert runs_between(Timing.build(**fields), zone, start, end) == expected


@PROFILE
@given(data=st.data())
def test_next_runs_equals_minute_walk(data: st.DataObject) -> None:
    zone, start, end = data.draw(window_near_change())
    fields = data.draw(timing_for_window(zone, start))
    expected = reference_runs(fields, ZoneInfo(zone), start + 1, end)
    found = next_runs(Timing.build(**fields), zone, start, len(expected) + 1)
    assert found[: len(expected)] == expected
    assert all(run >= end for run in found[len(expected) :])


@PROFILE
@given(data=st.data())
def test_fires_at_agrees_with_minute_walk(data: st.DataObject) -> None:
    zone, start, end = data.draw(window_near_change())
    fields = data.draw(timing_for_window(zone, start))
    expected = set(reference_runs(fields, ZoneInfo(zone), start, end))
    ticks = data.draw(st.lists(st.integers(start, end - 1), min_size=1, max_size=6))
    ticks += sorted(expected)[:3]
    timing = Timing.build(**fields)
    for tick in ticks:
        aligned = tick - tick % 60
        if aligned >= start:
            assert fires_at(timing, zone, tick) == (aligned in expected), tick


@PROFILE
@given(
    zone=st.sampled_from(ALL_ZONES),
    epoch=st.integers(EPOCH_2005, EPOCH_2035),
    hours=_subset(range(24)),
    weekdays=_subset(range(7)),
    days=_subset(range(-7, 32)),
)
def test_matches_is_the_literal_field_rule(
    zone: str, epoch: int, hours: list[int], weekdays: list[int], days: list[int]
) -> None:
    days = [d for d in days if d != 0]
    wall = local_wall(epoch, ZoneInfo(zone))
    fields = {"hours": hours, "weekdays": weekdays, "days": days}
    assert matches(Timing.build(**fields), wall) == reference_matches(fields, wall)
    parts = date_parts(epoch, zone)
    assert (parts["year"], parts["month"], parts["day"], parts["hour"]) == (
        wall.year,
        wall.month,
        wall.day,
        wall.hour,
    )


# Long spans: leap days, month ends and reverse days, with a noon launch time (no zone here
# changes offset at noon), so the expected launch of a matching date is simply its local noon.
NOON_ZONES = tuple(z for z in ALL_ZONES if z != "Pacific/Apia")


@st.composite
def sparse_dates(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "years": draw(st.one_of(st.just([]), st.lists(st.integers(1990, 2080), min_size=1, max_size=6))),
        "months": draw(st.one_of(st.just([]), st.lists(st.integers(1, 12), min_size=1, max_size=3))),
        "days": draw(
            st.one_of(
                st.just([]),
                st.lists(st.sampled_from([-7, -3, -2, -1, 1, 15, 28, 29, 30, 31]), min_size=1, max_size=3),
            )
        ),
        "weekdays": draw(_subset(range(7), 2)),
        "hours": [12],
        "minutes": [0],
    }


@fewer(3)
@given(
    zone=st.sampled_from(NOON_ZONES),
    start_day=st.dates(date(1990, 1, 1), date(2040, 12, 31)),
    fields=sparse_dates(),
)
def test_sparse_dates_skip_ahead_like_a_day_walk(zone: str, start_day: date, fields: dict[str, Any]) -> None:
    tz = ZoneInfo(zone)
    span_end = start_day + timedelta(days=30 * 365)
    expected: list[int] = []
    day = start_day
    while day < span_end and len(expected) < 4:
        if reference_date_matches(fields, day):
            expected.append(int(datetime(day.year, day.month, day.day, 12, tzinfo=tz).timestamp()))
        day += timedelta(days=1)
    after = int(datetime(start_day.year, start_day.month, start_day.day, tzinfo=tz).timestamp())
    found = next_runs(Timing.build(**fields), zone, after, 4)
    assert found[: len(expected)] == expected
    horizon = int(datetime(span_end.year, span_end.month, span_end.day, tzinfo=tz).timestamp())
    assert all(run >= horizon for run in found[len(expected) :])


@fewer(4)
@given(fields=sparse_dates())
def test_never_matches_iff_no_date_in_a_calendar_cycle(fields: dict[str, Any]) -> None:
    """Every possible year calendar (7 first weekdays x leap or not) occurs in 2001-2028."""
    years = fields["years"] or range(2001, 2029)
    exists = any(
        reference_date_matches(fields, date(year, month, day))
        for year in years
        for month in fields["months"] or range(1, 13)
        for day in range(1, calendar.monthrange(year, month)[1] + 1)
    )
    assert (never_matches(Timing.build(**fields)) is None) == exists
    if not exists:
        assert next_runs(Timing.build(**fields), "UTC", 0, 3) == []


@PROFILE
@given(zone=st.sampled_from(DST_ZONES), data=st.data())
def test_every_matching_wall_minute_launches_exactly_once(zone: str, data: st.DataObject) -> None:
    """Around a change, each matching wall minute maps to one launch, and no launch is doubled."""
    change = data.draw(st.sampled_from(transitions(zone)))
    fields = {"minutes": data.draw(_subset(range(60), 6))}
    assume(fields["minutes"])
    start, end = change - 4 * 3600, change + 4 * 3600
    runs = runs_between(Timing.build(**fields), zone, start, end)
    assert runs == sorted(set(runs))
    walls = {local_wall(run, ZoneInfo(zone)) for run in runs}
    assert len(walls) == len(runs)
