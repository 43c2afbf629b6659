"""The tick planner (pure): catch-up, skip after downtime, freezing, bounds, every-Nth, job shaping.

Vectors from the triggers spec §3.3 and §8 (reference minute 2025-12-18 18:29 Los Angeles).
"""

from __future__ import annotations

from typing import Any

from sundial.scheduler.planner import Due, StateRow, TickPlanner, newest_hits, shape_job
from sundial.scheduler.service import wave_size
from sundial.scheduler.triggers import EventPlan, Launch

NOW = 1766111340  # 2025-12-18 18:29:00 America/Los_Angeles
ZONE = "America/Los_Angeles"
CATS = {"general": {"id": "general", "enabled": True}, "off": {"id": "off", "enabled": False}}
PLUGINS = {"shellplug": {"id": "shellplug", "enabled": True}, "offplug": {"id": "offplug", "enabled": False}}


def event(triggers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"id": extra.pop("id", "e1"), "enabled": True, "category": "general", "plugin": "shellplug",
            "triggers": [{"enabled": True, **t} for t in triggers], **extra}


def plan(events: list[dict[str, Any]], *, cursor: int, live: bool = True, minute: int = NOW, owed_until=None,
         state: dict[str, StateRow] | None = None, planner: TickPlanner | None = None):  # type: ignore[no-untyped-def]
    return (planner or TickPlanner()).plan(events, minute=minute, loop_cursor=cursor, live=live, state=state or {},
                                           default_zone=ZONE, categories=CATS.get, plugins=PLUGINS.get,
                                           owed_until=owed_until)


def nows(tick) -> list[float]:  # type: ignore[no-untyped-def]
    return [d.launch.now for d in tick.due]


def test_spec_catchup_vectors():
    schedule = event([{"type": "schedule", "minutes": [27, 28, 29]}, {"type": "catchup"}])
    assert nows(plan([schedule], cursor=NOW - 1800)) == [NOW - 120, NOW - 60, NOW]
    single = event([{"type": "single", "epoch": NOW - 120}, {"type": "catchup"}])
    assert nows(plan([single], cursor=NOW - 180)) == [NOW - 120]
    interval = event([{"type": "interval", "start": NOW - 270, "duration": 90}, {"type": "catchup"}])
    assert nows(plan([interval], cursor=NOW - 240)) == [NOW - 180, NOW - 90, NOW]


def test_after_downtime_only_catchup_events_replay():
    every = [{"type": "schedule"}]
    normal, catchup = event(every, id="a"), event([*every, {"type": "catchup"}], id="b")
    tick = plan([normal, catchup], cursor=NOW - 600, live=False)
    by_event = {eid: [d.launch.now for d in tick.due if d.event["id"] == eid] for eid in ("a", "b")}
    assert by_event["a"] == [NOW]
    assert by_event["b"] == [NOW - 540 + 60 * i for i in range(10)]
    assert tick.replayed == 9
    # while the loop is live, a late tick owes every minute to every event
    assert len([d for d in plan([normal], cursor=NOW - 180).due]) == 3


def test_blocked_catchup_event_freezes_and_replays_later():
    ev = event([{"type": "schedule"}, {"type": "catchup"}], enabled=False)
    tick = plan([ev], cursor=NOW - 600)
    assert tick.due == [] and tick.changes == {"e1": StateRow(NOW - 600, None)}
    ev["enabled"] = True
    tick = plan([ev], cursor=NOW - 60, state={"e1": StateRow(NOW - 600, None)})
    assert nows(tick) == [NOW - 540 + 60 * i for i in range(10)] and tick.changes == {"e1": None}
    for blocked in (event([{"type": "schedule"}], category="off"), event([{"type": "schedule"}], plugin="offplug")):
        assert plan([blocked], cursor=NOW - 60).due == []


def test_backlog_is_bounded_to_the_newest_runs():
    ev = event([{"type": "schedule"}, {"type": "catchup"}])
    tick = plan([ev], cursor=NOW - 86400 * 3, planner=TickPlanner(max_catchup=25))
    assert nows(tick) == [NOW - 60 * (24 - i) for i in range(25)] and tick.truncated == ["e1"]
    hourly = EventPlan.from_triggers([{"type": "schedule", "enabled": True, "minutes": [0]}], "UTC")
    assert newest_hits(hourly, 0, 36000, 3) == [28800, 32400, 36000]


def test_every_nth_counter_is_carried_in_state():
    ev = event([{"type": "schedule"}, {"type": "nth", "every": 3}])
    planner, state, launched = TickPlanner(), {}, []
    for minute in range(NOW, NOW + 600, 60):
        tick = plan([ev], cursor=minute - 60, minute=minute, state=state, planner=planner)
        launched += nows(tick)
        for key, row in tick.changes.items():
            state[key] = row  # type: ignore[assignment]
    assert launched == [NOW, NOW + 180, NOW + 360, NOW + 540]


def test_spec_modifier_vectors():
    def count(triggers: list[dict[str, Any]]) -> int:
        return len(plan([event(triggers)], cursor=NOW - 60).due)

    assert count([{"type": "schedule", "minutes": [28]}]) == 0
    assert count([{"type": "schedule", "hours": [21], "minutes": [29], "timezone": "America/New_York"}]) == 1
    assert count([{"type": "schedule", "minutes": [29]}, {"type": "range", "start": NOW - 30, "end": NOW + 30}]) == 1
    assert count([{"type": "schedule"}, {"type": "blackout", "start": NOW - 60, "end": NOW + 60}]) == 0
    assert count([{"type": "schedule"}, {"type": "precision", "seconds": [0, 15, 30, 45]}]) == 4
    assert count([{"type": "schedule"}, {"type": "schedule", "hours": [18]}]) == 2  # one job per trigger
    assert count([{"type": "manual"}, {"type": "startup"}]) == 0


def test_broken_record_never_stops_the_tick():
    bad = event([{"type": "schedule", "timezone": "Mars/Olympus"}], id="bad")
    good = event([{"type": "schedule"}], id="good")
    tick = plan([bad, good, {"id": "weird", "enabled": True, "triggers": "nope"}], cursor=NOW - 60)
    assert [d.event["id"] for d in tick.due] == ["good"] and tick.errors and tick.errors[0][0] == "bad"


def test_deleted_events_drop_their_state():
    tick = plan([], cursor=NOW - 60, state={"gone": StateRow(5, 2)})
    assert tick.changes == {"gone": None}


def test_shape_job_applies_trigger_data_delay_and_quiet():
    trigger = {"type": "schedule", "enabled": True, "tags": ["t1"], "data": {"k": 1}, "id": "start1"}
    due = Due({"id": "e1", "triggers": [trigger]}, Launch(NOW, NOW, NOW + 30, 0, "schedule", "start1"), trigger,
              {"type": "quiet", "invisible": True})
    job = shape_job({"tags": ["a"], "workflow": {}, "input": {"data": {"x": 0}}}, due, lambda t: t - 1000)
    assert job["now"] == NOW and job["state"] == "start_delay" and job["until"] == NOW + 30 - 1000
    assert job["tags"] == ["a", "t1"] and job["input"]["data"] == {"x": 0, "k": 1}
    assert job["workflow"]["start"] == "start1" and job["invisible"] is True and "stype" not in job
    items = Due({"id": "e1"}, Launch(NOW, NOW, NOW, 0, "interval"), {"data": [1, 2]})
    job = shape_job({}, items, float)
    assert job["input"]["data"]["items"] == [1, 2] and job["stype"] == "interval" and "state" not in job


def test_wave_size_spreads_big_minutes_over_about_a_second():
    assert wave_size(10, 0.05) == 1  # few launches: one per wave, 50 ms apart (xyOps spacing)
    assert wave_size(10000, 0.05) == 500  # 20 waves
    assert wave_size(10000, 0) == 10000


def test_a_minute_begun_before_a_crash_is_finished_for_every_event():
    plain = event([{"type": "schedule"}])
    tick = plan([plain], cursor=NOW - 600, live=False, owed_until=NOW - 540)
    assert nows(tick) == [NOW - 540, NOW]  # the begun minute, then only the current one
