"""Worked examples of the timing rules, DST included, written from docs/scheduler.md."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from sundial.scheduler.timing import (
    Timing,
    date_parts,
    fires_at,
    iter_runs,
    matches,
    never_matches,
    next_runs,
    runs_between,
)


def at(zone: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0, fold: int = 0) -> int:
    """Epoch of a local wall time (fold=1 picks the second pass of a repeated time)."""
    return int(datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone), fold=fold).timestamp())


def walls(zone: str, runs: list[int]) -> list[str]:
    return [datetime.fromtimestamp(run, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M%z") for run in runs]


NY = "America/New_York"


class TestMatches:
    def test_empty_lists_match_everything(self) -> None:
        assert matches(Timing(), datetime(2025, 12, 18, 18, 29))

    def test_every_listed_field_must_match(self) -> None:
        timing = Timing.build(years=[2025], months=[12], days=[18], weekdays=[4], hours=[18], minutes=[29])
        assert matches(timing, datetime(2025, 12, 18, 18, 29))
        assert not matches(Timing.build(weekdays=[3], minutes=[29]), datetime(2025, 12, 18, 18, 29))

    def test_reverse_days_count_from_the_month_end(self) -> None:
        assert matches(Timing.build(days=[-1]), datetime(2024, 2, 29))
        assert not matches(Timing.build(days=[-1]), datetime(2023, 2, 27))
        assert matches(Timing.build(days=[-1]), datetime(2023, 2, 28))
        assert matches(Timing.build(days=[-7]), datetime(2025, 1, 25))

    def test_day_or_reverse_day_either_counts(self) -> None:
        timing = Timing.build(days=[1, -1])
        assert matches(timing, datetime(2025, 4, 1))
        assert matches(timing, datetime(2025, 4, 30))
        assert not matches(timing, datetime(2025, 4, 15))

    def test_out_of_range_values_are_refused_at_construction(self) -> None:
        with pytest.raises(ValueError, match="hours out of range: 24"):
            Timing.build(hours=[24])
        with pytest.raises(ValueError, match="days out of range: 0"):
            Timing.build(days=[0])

    def test_round_trips_through_the_xyops_shape(self) -> None:
        timing = Timing.from_mapping({"type": "schedule", "hours": [9, 3, 9], "minutes": [], "timezone": "UTC"})
        assert timing.to_dict() == {"hours": [3, 9]}


class TestSpringForward:
    def test_skipped_hour_runs_once_at_the_jump(self) -> None:
        # New York, 2024-03-10: 02:00 -> 03:00. A 02:30 job runs at 03:00 EDT that day.
        runs = next_runs(Timing.build(hours=[2], minutes=[30]), NY, at(NY, 2024, 3, 9, 12, 0), 3)
        assert walls(NY, runs) == ["2024-03-10 03:00-0400", "2024-03-11 02:30-0400", "2024-03-12 02:30-0400"]

    def test_several_skipped_matches_and_the_jump_minute_collapse_into_one(self) -> None:
        runs = runs_between(
            Timing.build(minutes=[0, 15, 30, 45]), NY, at(NY, 2024, 3, 10, 1, 30), at(NY, 2024, 3, 10, 3, 30)
        )
        assert walls(NY, runs) == [
            "2024-03-10 01:30-0500",
            "2024-03-10 01:45-0500",
            "2024-03-10 03:00-0400",
            "2024-03-10 03:15-0400",
        ]

    def test_lord_howe_half_hour_gap(self) -> None:
        zone = "Australia/Lord_Howe"  # 2024-10-06 02:00 -> 02:30
        runs = runs_between(
            Timing.build(hours=[2], minutes=[0, 10, 40]), zone, at(zone, 2024, 10, 6), at(zone, 2024, 10, 7)
        )
        assert walls(zone, runs) == ["2024-10-06 02:30+1100", "2024-10-06 02:40+1100"]

    def test_chatham_gap_at_quarter_to(self) -> None:
        zone = "Pacific/Chatham"  # 2024-09-29 02:45 -> 03:45
        runs = runs_between(Timing.build(hours=[3], minutes=[0]), zone, at(zone, 2024, 9, 29), at(zone, 2024, 9, 30))
        assert walls(zone, runs) == ["2024-09-29 03:45+1345"]

    def test_sao_paulo_midnight_gap_keeps_the_day(self) -> None:
        zone = "America/Sao_Paulo"  # 2018-11-04 00:00 -> 01:00: the day starts at 01:00
        runs = runs_between(
            Timing.build(hours=[0], minutes=[0]), zone, at(zone, 2018, 11, 3, 12), at(zone, 2018, 11, 5, 12)
        )
        assert walls(zone, runs) == ["2018-11-04 01:00-0200", "2018-11-05 00:00-0200"]

    def test_apia_skipped_day_runs_once_on_the_next(self) -> None:
        zone = "Pacific/Apia"  # 2011-12-30 never happened
        runs = runs_between(Timing.build(days=[30], hours=[9]), zone, at(zone, 2011, 12, 29), at(zone, 2012, 1, 1))
        assert walls(zone, runs) == ["2011-12-31 00:00+1400"]


class TestFallBack:
    def test_repeated_hour_runs_once_on_its_first_pass(self) -> None:
        # New York, 2024-11-03: 01:00-01:59 happens twice.
        runs = runs_between(Timing.build(hours=[1], minutes=[30]), NY, at(NY, 2024, 11, 3), at(NY, 2024, 11, 4))
        assert runs == [at(NY, 2024, 11, 3, 1, 30, fold=0)]

    def test_hourly_job_skips_the_replay(self) -> None:
        runs = runs_between(Timing.build(minutes=[0]), NY, at(NY, 2024, 11, 3, 0, 0), at(NY, 2024, 11, 3, 3, 1))
        assert walls(NY, runs) == [
            "2024-11-03 00:00-0400",
            "2024-11-03 01:00-0400",
            "2024-11-03 02:00-0500",
            "2024-11-03 03:00-0500",
        ]

    def test_searching_from_inside_the_replay_does_not_repeat(self) -> None:
        inside_replay = at(NY, 2024, 11, 3, 1, 20, fold=1)
        runs = next_runs(Timing.build(minutes=[0, 30]), NY, inside_replay, 2)
        assert walls(NY, runs) == ["2024-11-03 02:00-0500", "2024-11-03 02:30-0500"]

    def test_london_and_lord_howe(self) -> None:
        london = "Europe/London"
        runs = runs_between(
            Timing.build(hours=[1], minutes=[15]), london, at(london, 2024, 10, 27), at(london, 2024, 10, 28)
        )
        assert walls(london, runs) == ["2024-10-27 01:15+0100"]
        howe = "Australia/Lord_Howe"  # 2024-04-07 02:00 -> 01:30
        runs = runs_between(Timing.build(hours=[1], minutes=[45]), howe, at(howe, 2024, 4, 7), at(howe, 2024, 4, 8))
        assert walls(howe, runs) == ["2024-04-07 01:45+1100"]

    def test_fires_at_is_false_during_the_replay(self) -> None:
        timing = Timing.build(hours=[1])
        assert fires_at(timing, NY, at(NY, 2024, 11, 3, 1, 10, fold=0))
        assert not fires_at(timing, NY, at(NY, 2024, 11, 3, 1, 10, fold=1))


class TestCalendar:
    def test_kolkata_half_hour_offset(self) -> None:
        zone = "Asia/Kolkata"
        runs = next_runs(Timing.build(hours=[0], minutes=[0]), zone, at(zone, 2025, 1, 1, 12), 2)
        assert walls(zone, runs) == ["2025-01-02 00:00+0530", "2025-01-03 00:00+0530"]

    def test_leap_day_only_runs_in_leap_years(self) -> None:
        runs = next_runs(Timing.build(months=[2], days=[29], hours=[0], minutes=[0]), "UTC", at("UTC", 2025, 1, 1), 3)
        assert walls("UTC", runs) == [
            "2028-02-29 00:00+0000",
            "2032-02-29 00:00+0000",
            "2036-02-29 00:00+0000",
        ]

    def test_leap_day_on_a_monday_skips_decades(self) -> None:
        timing = Timing.build(months=[2], days=[29], weekdays=[1], hours=[6], minutes=[0])
        assert walls("UTC", next_runs(timing, "UTC", at("UTC", 2025, 1, 1), 2)) == [
            "2044-02-29 06:00+0000",
            "2072-02-29 06:00+0000",
        ]

    def test_last_day_of_every_month(self) -> None:
        runs = next_runs(Timing.build(days=[-1], hours=[23], minutes=[59]), "UTC", at("UTC", 2024, 1, 1), 3)
        assert walls("UTC", runs) == [
            "2024-01-31 23:59+0000",
            "2024-02-29 23:59+0000",
            "2024-03-31 23:59+0000",
        ]

    def test_day_31_only_in_long_months(self) -> None:
        runs = next_runs(Timing.build(days=[31], hours=[0], minutes=[0]), "UTC", at("UTC", 2025, 3, 31, 1), 2)
        assert walls("UTC", runs) == ["2025-05-31 00:00+0000", "2025-07-31 00:00+0000"]

    def test_listed_years_end_the_search(self) -> None:
        timing = Timing.build(years=[2025], months=[12], days=[25], hours=[8], minutes=[0])
        assert next_runs(timing, "UTC", at("UTC", 2025, 1, 1), 5) == [at("UTC", 2025, 12, 25, 8)]
        assert next_runs(timing, "UTC", at("UTC", 2026, 1, 1), 5) == []

    def test_runs_between_is_half_open(self) -> None:
        timing = Timing.build(minutes=[0])
        start, end = at("UTC", 2025, 1, 1, 0), at("UTC", 2025, 1, 1, 3)
        assert runs_between(timing, "UTC", start, end) == [start, start + 3600, start + 7200]
        assert runs_between(timing, "UTC", end, start) == []

    def test_iter_runs_is_lazy_and_ordered(self) -> None:
        runs = iter_runs(Timing(), "UTC", 0)
        assert [next(runs) for _ in range(3)] == [60, 120, 180]

    def test_date_parts_use_the_xyops_shape(self) -> None:
        assert date_parts(1766111340, "America/Los_Angeles") == {
            "year": 2025,
            "month": 12,
            "day": 18,
            "rday": -14,
            "weekday": 4,
            "hour": 18,
            "minute": 29,
        }


class TestImpossibleTimings:
    @pytest.mark.parametrize(
        ("fields", "field"),
        [
            ({"months": [2], "days": [30, 31]}, "days"),
            ({"months": [4, 6, 9, 11], "days": [31]}, "days"),
            ({"years": [2023, 2025], "months": [2], "days": [29]}, "years"),
            ({"years": [2025], "months": [12], "days": [25], "weekdays": [0]}, "weekdays"),
        ],
    )
    def test_never_matching_timings_are_named_and_end_at_once(self, fields: dict[str, list[int]], field: str) -> None:
        timing = Timing.build(**fields)
        reason = never_matches(timing)
        assert reason is not None and reason[0] == field
        assert next_runs(timing, "UTC", 0, 10) == []
        assert runs_between(timing, "UTC", 0, 10**10) == []

    def test_possible_timings_are_not_flagged(self) -> None:
        assert never_matches(Timing.build(months=[2], days=[29], weekdays=[3])) is None
        assert never_matches(Timing.build(months=[2], days=[-1, 30])) is None

    def test_search_starts_at_the_beginning_of_the_calendar(self) -> None:
        assert next_runs(Timing.build(minutes=[0]), "UTC", -(10**13), 1) == [at("UTC", 1, 1, 2, 1)]

    def test_search_stops_at_the_end_of_the_calendar(self) -> None:
        assert next_runs(Timing(), "UTC", at("UTC", 9999, 12, 31), 1) == []
        assert next_runs(Timing.build(years=[9999], months=[12], days=[-2], hours=[0], minutes=[0]), "UTC", 0, 2) == [
            at("UTC", 9999, 12, 30)
        ]
