"""Cron expressions converted to timing objects."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sched_reference import PROFILE

from sundial.scheduler.cron import CronError, cron_to_schedule_trigger, cron_to_timing
from sundial.scheduler.timing import Timing


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("* * * * *", {}),
        ("29 18 * * *", {"minutes": [29], "hours": [18]}),
        ("*/15 * * * *", {"minutes": [0, 15, 30, 45]}),
        ("5/20 * * * *", {"minutes": [5, 25, 45]}),
        ("10-20/5 * * * *", {"minutes": [10, 15, 20]}),
        ("0 9-17 * * mon-fri", {"minutes": [0], "hours": list(range(9, 18)), "weekdays": [1, 2, 3, 4, 5]}),
        ("30 2 1,15 * *", {"minutes": [30], "hours": [2], "days": [1, 15]}),
        ("0 0 * JAN-Mar *", {"minutes": [0], "hours": [0], "months": [1, 2, 3]}),
        ("0 0 * * 7", {"minutes": [0], "hours": [0], "weekdays": [0]}),
        ("0 0 * * sun,SAT", {"minutes": [0], "hours": [0], "weekdays": [0, 6]}),
        ("0 0 L * *", {"minutes": [0], "hours": [0], "days": [-1]}),
        ("0 0 1,L * *", {"minutes": [0], "hours": [0], "days": [-1, 1]}),
        ("0-59 0-23 1-31 1-12 0-6", {}),
        ("0 0 */2 * mon", {"minutes": [0], "hours": [0], "days": list(range(1, 32, 2)), "weekdays": [1]}),
        ("0 0 1-31 * 1", {"minutes": [0], "hours": [0]}),
        ("  0   12  *  *  * ", {"minutes": [0], "hours": [12]}),
        ("@hourly", {"minutes": [0]}),
        ("@daily", {"minutes": [0], "hours": [0]}),
        ("@midnight", {"minutes": [0], "hours": [0]}),
        ("@weekly", {"minutes": [0], "hours": [0], "weekdays": [0]}),
        ("@monthly", {"minutes": [0], "hours": [0], "days": [1]}),
        ("@yearly", {"minutes": [0], "hours": [0], "days": [1], "months": [1]}),
        ("@ANNUALLY", {"minutes": [0], "hours": [0], "days": [1], "months": [1]}),
    ],
)
def test_conversion(expression: str, expected: dict[str, list[int]]) -> None:
    assert cron_to_timing(expression).to_dict() == expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * * *", "needs 5 fields"),
        ("* * * * * *", "needs 5 fields"),
        ("", "needs 5 fields"),
        ("60 * * * *", "minute: 60 is out of range 0-59"),
        ("* 24 * * *", "hour: 24 is out of range 0-23"),
        ("* * 0 * *", "day-of-month: 0 is out of range 1-31"),
        ("* * * 13 *", "month: 13 is out of range 1-12"),
        ("* * * * 8", "day-of-week: 8 is out of range 0-7"),
        ("x * * * *", "minute: 'x' is not a number or a known name"),
        ("* * * foo *", "month: 'foo' is not a number"),
        ("*/0 * * * *", "step '0' must be a positive whole number"),
        ("*/x * * * *", "step 'x' must be a positive whole number"),
        ("5-1 * * * *", "range '5-1' runs backwards"),
        ("1,,2 * * * *", "empty item"),
        ("1- * * * *", "'' is not a number"),
        ("0 0 30 2 *", "can never run"),
        ("0 0 1 * mon", "day-of-month OR day-of-week"),
        ("@reboot", "startup trigger"),
        ("@sometimes", "unknown cron shorthand"),
    ],
)
def test_invalid_expressions_say_why(expression: str, message: str) -> None:
    with pytest.raises(CronError, match=message.replace("(", r"\(").replace("*", r"\*")):
        cron_to_timing(expression)


def test_schedule_trigger_shape() -> None:
    assert cron_to_schedule_trigger("*/30 9 * * 1-5", "Europe/London") == {
        "type": "schedule",
        "enabled": True,
        "minutes": [0, 30],
        "hours": [9],
        "weekdays": [1, 2, 3, 4, 5],
        "timezone": "Europe/London",
    }


def _cron_list(values: list[int]) -> str:
    return ",".join(str(v) for v in values)


@PROFILE
@given(
    minutes=st.lists(st.integers(0, 59), min_size=1, max_size=8),
    hours=st.lists(st.integers(0, 23), min_size=1, max_size=5),
    months=st.lists(st.integers(1, 12), min_size=1, max_size=4),
    weekdays=st.lists(st.integers(0, 7), min_size=1, max_size=3),
)
def test_lists_round_trip(minutes: list[int], hours: list[int], months: list[int], weekdays: list[int]) -> None:
    expression = f"{_cron_list(minutes)} {_cron_list(hours)} * {_cron_list(months)} {_cron_list(weekdays)}"
    expected = Timing(
        minutes=() if set(minutes) == set(range(60)) else tuple(minutes),
        hours=() if set(hours) == set(range(24)) else tuple(hours),
        months=() if set(months) == set(range(1, 13)) else tuple(months),
        weekdays=() if {w % 7 for w in weekdays} == set(range(7)) else tuple(w % 7 for w in weekdays),
    )
    assert cron_to_timing(expression) == expected


@PROFILE
@given(start=st.integers(0, 59), span=st.integers(0, 59), step=st.integers(1, 30))
def test_stepped_ranges_match_python_range(start: int, span: int, step: int) -> None:
    end = min(start + span, 59)
    values = list(range(start, end + 1, step))
    expected = () if values == list(range(60)) else tuple(values)
    assert cron_to_timing(f"{start}-{end}/{step} * * * *").minutes == expected
