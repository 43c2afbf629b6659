"""Launch arithmetic of trigger kinds: the spec's test vectors, catch-up replays, properties."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sched_reference import PROFILE

from sundial.scheduler.triggers import (
    EventPlan,
    Launch,
    TriggerError,
    in_blackout,
    in_range,
    interval_hits,
    next_launches,
    precision_offsets,
    single_fires,
)

# Spec section 8: 2025-12-18 18:29:00 America/Los_Angeles, a Thursday.
EPOCH = 1766111340
PACIFIC = "America/Los_Angeles"


def on(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "enabled": True, **fields}


def launches_at_epoch(*triggers: dict[str, Any]) -> list[Launch]:
    launches, _ = EventPlan.from_triggers(list(triggers), PACIFIC).launches_at(EPOCH)
    return launches


FULL = {"years": [2025], "months": [12], "days": [18], "weekdays": [4], "hours": [18], "minutes": [29]}


@pytest.mark.parametrize(
    ("triggers", "count"),
    [
        ([on("schedule", minutes=[28])], 0),
        ([on("schedule", minutes=[])], 1),
        ([on("schedule", minutes=[29])], 1),
        ([on("schedule", hours=[18], minutes=[29])], 1),
        ([on("schedule", hours=[18], minutes=[29], weekdays=[4])], 1),
        ([on("schedule", hours=[18], minutes=[29], weekdays=[4], days=[18])], 1),
        ([on("schedule", hours=[18], minutes=[29], weekdays=[4], days=[18], months=[12])], 1),
        ([on("schedule", **FULL)], 1),
        ([on("schedule", **{**FULL, "weekdays": [3]})], 0),
        ([on("schedule", hours=[21], minutes=[29], timezone="America/New_York")], 1),
        ([on("schedule", hours=[18], minutes=[29], timezone="America/New_York")], 0),
        ([on("interval", start=EPOCH - 90, duration=90)], 1),
        ([on("single", epoch=EPOCH)], 1),
        ([on("schedule"), on("range", start=EPOCH - 30, end=EPOCH + 30)], 1),
        ([on("schedule"), on("range", start=EPOCH + 3600, end=EPOCH + 7200)], 0),
        ([on("schedule"), on("blackout", start=EPOCH - 30, end=EPOCH + 30)], 0),
        ([on("schedule"), on("blackout", start=EPOCH + 3600, end=EPOCH + 7200)], 1),
        ([{**on("schedule"), "enabled": False}], 0),
        ([on("manual"), on("startup"), on("magic", token="t")], 0),
    ],
)
def test_spec_vectors(triggers: list[dict[str, Any]], count: int) -> None:
    assert len(launches_at_epoch(*triggers)) == count


def test_interval_every_30_seconds_gives_two_delayed_jobs() -> None:
    launches = launches_at_epoch(on("interval", start=EPOCH, duration=30))
    assert [(la.now, la.start_at) for la in launches] == [(EPOCH, EPOCH), (EPOCH + 30, EPOCH + 30)]


def test_delay_starts_the_job_later() -> None:
    [launch] = launches_at_epoch(on("schedule", minutes=[29]), on("delay", duration=30))
    assert (launch.minute, launch.now, launch.start_at) == (EPOCH, EPOCH, EPOCH + 30)


def test_precision_makes_one_job_per_second() -> None:
    launches = launches_at_epoch(on("schedule", minutes=[29]), on("precision", seconds=[0, 15, 30, 45]))
    assert [la.start_at - EPOCH for la in launches] == [0, 15, 30, 45]
    assert all(la.now == la.start_at and la.minute == EPOCH for la in launches)


def test_plugin_defers_the_decision() -> None:
    [launch] = launches_at_epoch(on("schedule", minutes=[29]), on("plugin", plugin_id="p1"))
    assert launch.plugin_decides and launch.now == EPOCH


def test_several_matching_launchers_give_several_jobs() -> None:
    launches = launches_at_epoch(on("schedule", id="a"), on("single", epoch=EPOCH, id="b"))
    assert [(la.trigger_index, la.trigger_type, la.trigger_id) for la in launches] == [
        (0, "schedule", "a"),
        (1, "single", "b"),
    ]


def test_interval_hit_overrides_precision_for_the_whole_minute() -> None:
    """xyOps quirk, kept: the schedule's job in the same minute takes the interval's offsets."""
    launches = launches_at_epoch(on("schedule", minutes=[29]), on("interval", start=EPOCH - 45, duration=30))
    assert [(la.trigger_type, la.now - EPOCH) for la in launches] == [
        ("schedule", 15),
        ("schedule", 45),
        ("interval", 15),
        ("interval", 45),
    ]


class TestCatchUpReplays:
    """Spec 3.3: replaying (cursor, now] is next_launches over that window."""

    def test_three_missed_minutes(self) -> None:
        now = EPOCH
        launches = next_launches(
            [on("schedule", minutes=[27, 28, 29])],
            after_epoch=now - 1800,
            end_epoch=now + 60,
            count=100,
            default_timezone=PACIFIC,
        )
        assert [la.now for la in launches] == [now - 120, now - 60, now]

    def test_missed_single_shot(self) -> None:
        launches = next_launches(
            [on("single", epoch=EPOCH - 120)],
            after_epoch=EPOCH - 180,
            end_epoch=EPOCH + 60,
            count=10,
            default_timezone=PACIFIC,
        )
        assert [la.now for la in launches] == [EPOCH - 120]

    def test_missed_interval_hits(self) -> None:
        launches = next_launches(
            [on("interval", start=EPOCH - 270, duration=90)],
            after_epoch=EPOCH - 240,
            end_epoch=EPOCH + 60,
            count=10,
            default_timezone=PACIFIC,
        )
        assert [la.now for la in launches] == [EPOCH - 180, EPOCH - 90, EPOCH]


class TestModifiers:
    def test_every_nth_launches_the_first_then_every_nth(self) -> None:
        plan = EventPlan.from_triggers([on("schedule"), on("nth", every=3)], "UTC")
        counter, launched = 0, []
        for minute in range(0, 600, 60):
            launches, counter = plan.launches_at(minute, counter)
            launched.append(bool(launches))
        assert launched == [True, False, False, True, False, False, True, False, False, True]

    def test_ranges_and_blackouts_are_inclusive(self) -> None:
        assert in_range(60, 120, 60) and in_range(60, 120, 120) and not in_range(60, 120, 180)
        assert in_range(None, 120, 0) and in_range(60, None, 10**10)
        assert not in_range(None, None, 60)
        assert in_blackout(60, 120, 120) and not in_blackout(60, 120, 180)

    def test_a_range_with_no_edges_blocks_everything(self) -> None:
        assert next_launches([on("schedule"), on("range")], after_epoch=0, count=3, default_timezone="UTC") == []

    def test_next_launches_skip_blackouts_and_wait_for_ranges(self) -> None:
        triggers = [
            on("schedule", minutes=[0]),
            on("range", start=7200, end=14400),
            on("range", start=36000),
            on("blackout", start=10800, end=14400),
        ]
        launches = next_launches(triggers, after_epoch=0, count=4, default_timezone="UTC")
        assert [la.minute // 3600 for la in launches] == [2, 10, 11, 12]

    def test_ended_ranges_end_the_search(self) -> None:
        triggers = [on("interval", start=60, duration=1), on("range", end=600)]
        assert len(next_launches(triggers, after_epoch=600, count=5, default_timezone="UTC")) == 0

    def test_precision_offsets_keep_listed_order(self) -> None:
        assert precision_offsets(on("precision", seconds=[30, 0, 45])) == [30, 0, 45]
        assert precision_offsets(None) == []

    def test_unknown_timezone_in_stored_trigger_is_reported(self) -> None:
        with pytest.raises(TriggerError, match="entry #2"):
            EventPlan.from_triggers([on("manual"), on("schedule", timezone="Nowhere/Land")], "UTC")


def test_single_shot_fires_only_in_its_own_minute() -> None:
    assert single_fires(EPOCH, EPOCH)
    assert not single_fires(EPOCH, EPOCH + 60)
    assert not single_fires(EPOCH + 5, EPOCH)  # unfloored legacy epochs never fire, as in xyOps
    assert not single_fires(None, EPOCH)


def test_interval_hits_follow_the_spec_formula() -> None:
    assert interval_hits(EPOCH - 90, 90, EPOCH) == [0]
    assert interval_hits(EPOCH, 30, EPOCH) == [0, 30]
    assert interval_hits(EPOCH + 1, 30, EPOCH) == []
    assert interval_hits(EPOCH - 10, 25, EPOCH) == [15, 40]
    assert interval_hits(0, 120, 60) == []


@PROFILE
@given(start=st.integers(1, 10**6), duration=st.integers(1, 400), minute=st.integers(0, 10**6 // 60 + 50))
def test_interval_hits_are_exactly_the_instants_in_the_minute(start: int, duration: int, minute: int) -> None:
    m = minute * 60
    expected = [start + k * duration - m for k in range((m + 60) // duration + 1) if m <= start + k * duration < m + 60]
    assert interval_hits(start, duration, m) == (expected if start <= m else [])


# ------------------------------------------------------------------------------------------
# next_launches (skip ahead) must equal launches_at applied to every minute in turn.

WINDOW = 6 * 3600


@st.composite
def event_triggers(draw: st.DrawFn, base: int) -> list[dict[str, Any]]:
    """A mix of launchers and modifiers inside a few hours after ``base``."""
    offset = st.integers(-3600, WINDOW + 3600)
    triggers: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["schedule", "interval", "single"]))
        if kind == "schedule":
            triggers.append(
                on(
                    "schedule",
                    minutes=draw(st.lists(st.integers(0, 59), max_size=4)),
                    hours=draw(st.lists(st.integers(0, 23), max_size=6)),
                    timezone=draw(st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata"])),
                )
            )
        elif kind == "interval":
            triggers.append(on("interval", start=base + draw(offset), duration=draw(st.integers(1, 5000))))
        else:
            triggers.append(on("single", epoch=(base + draw(offset)) // 60 * 60))
    for _ in range(draw(st.integers(0, 2))):
        start = base + draw(offset)
        triggers.append(on("range", start=start, end=start + draw(st.integers(0, WINDOW))))
    for _ in range(draw(st.integers(0, 2))):
        start = base + draw(offset)
        triggers.append(on("blackout", start=start, end=start + draw(st.integers(0, 3600))))
    if draw(st.booleans()):
        triggers.append(on("nth", every=draw(st.integers(2, 5))))
    has_interval = any(t["type"] == "interval" for t in triggers)
    shaping = draw(st.sampled_from(["none", "plugin"] + ([] if has_interval else ["delay", "precision"])))
    if shaping == "delay":
        triggers.append(on("delay", duration=draw(st.integers(1, 300))))
    elif shaping == "precision":
        triggers.append(on("precision", seconds=draw(st.lists(st.integers(0, 59), min_size=1, max_size=3))))
    elif shaping == "plugin":
        triggers.append(on("plugin", plugin_id="p"))
    return draw(st.permutations(triggers))


@PROFILE
@given(data=st.data(), base=st.integers(1_700_000_000, 1_900_000_000).map(lambda e: e // 60 * 60))
def test_skipping_ahead_equals_ticking_every_minute(data: st.DataObject, base: int) -> None:
    triggers = data.draw(event_triggers(base))
    counter = data.draw(st.integers(0, 3))
    plan = EventPlan.from_triggers(triggers, "UTC")
    ticked: list[Launch] = []
    tick_counter = counter
    for minute in range(base + 60, base + WINDOW, 60):
        launches, tick_counter = plan.launches_at(minute, tick_counter)
        ticked.extend(launches)
    skipped = next_launches(
        triggers,
        after_epoch=base,
        end_epoch=base + WINDOW,
        count=10**6,
        default_timezone="UTC",
        nth_counter=counter,
    )
    assert skipped == ticked
    first_few = next_launches(triggers, after_epoch=base, count=3, default_timezone="UTC", nth_counter=counter)
    assert first_few[: min(3, len(ticked))] == ticked[:3]
