"""Per-event scheduler state through the API: `update_state` (the "time machine") on create and
update, its display in `get_global_state` as `state.events.<id>`, and what moving a catch-up
cursor back or ahead launches, on both storage back ends."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from test_sched_service import BASE, FAST, START_TIMEOUT, make_event, minutes_of, read_tables

from harness import Api, login, postgres_reachable, wait_for

NOW = 1766111340  # 2025-12-18 18:29:00 America/Los_Angeles
NEVER_YET = [{"type": "schedule", "enabled": True, "years": [2099], "minutes": [0]},
             {"type": "catchup", "enabled": True}]


def events_state(api: Api) -> dict[str, Any]:
    return dict(api.ok("get_global_state")["state"].get("events") or {})


def test_update_state_sets_the_event_state_and_is_never_stored_on_the_event(admin: Api, conductor, uid):
    # disabled, so no minute boundary during the test can move its cursor on (a frozen catch-up cursor)
    created = admin.ok("create_event", {"id": uid, "title": "Time machine", **BASE, "enabled": False,
                                        "triggers": NEVER_YET, "update_state": {"cursor": NOW + 17}})["event"]
    assert "update_state" not in created and "update_state" not in admin.ok("get_event", {"id": uid})["event"]
    assert events_state(admin)[uid] == {"cursor": NOW}  # floored to its minute
    admin.ok("update_event", {"id": uid, "update_state": {"nth": 3}})
    assert events_state(admin)[uid] == {"cursor": NOW, "nth": 3}
    admin.ok("update_global_state", {f"events.{uid}.nth": 0})  # the same edit as a state key
    assert events_state(admin)[uid] == {"cursor": NOW}
    revision = admin.ok("get_event", {"id": uid})["event"]["revision"]
    bad = [({"foo": 1}, "Unknown event state key: foo (only cursor and nth can be set)"),
           ({"cursor": "yesterday"}, "Malformed parameter: update_state.cursor (must be an epoch in seconds)"),
           ({"nth": -2}, "Malformed parameter: update_state.nth (must be a whole number, 0 or more)"),
           ([1], "Malformed parameter: update_state (must be object)")]
    for update_state, message in bad:
        data = admin.call("update_event", {"id": uid, "title": "Changed", "update_state": update_state})
        assert data == {"code": "api", "description": message}
    event = admin.ok("get_event", {"id": uid})["event"]
    assert event["revision"] == revision and event["title"] == "Time machine"  # nothing changed
    assert admin.call("update_global_state", {"events.nosuch.cursor": NOW})["code"] == "api"
    name = "u" + uid
    admin.ok("admin_create", {"username": name, "password": "pw", "email": "a@b.c", "full_name": "R"}, ns="user")
    assert "events" not in login(conductor.url, name, "pw").ok("get_global_state")["state"]  # admins only
    admin.ok("delete_event", {"id": uid})



@pytest.mark.timeout(600)
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_cursor_moved_back_replays_unlaunched_minutes_once_and_ahead_waits(fresh_conductor, backend):
    if backend == "postgres" and not postgres_reachable():
        pytest.skip("PostgreSQL is not reachable")
    proc = fresh_conductor(backend=backend, env=FAST).start(timeout=START_TIMEOUT)
    admin = login(proc.url, "admin", "admin")
    event_id = make_event(admin, "every minute, catch-up", [{"type": "schedule"}, {"type": "catchup"}])
    first = wait_for(lambda: minutes_of(read_tables(proc)[0], event_id)[:3] if
                       len(minutes_of(read_tables(proc)[0], event_id)) >= 3 else None)[0]
    # back: five minutes before the event existed; the minutes launched since are not launched again
    admin.ok("update_event", {"id": event_id, "update_state": {"cursor": first - 300}})
    wait_for(lambda: first - 240 in minutes_of(read_tables(proc)[0], event_id))
    slot_rows, job_rows, cursor = read_tables(proc)
    assert cursor is not None
    minutes = minutes_of(slot_rows, event_id)
    assert minutes[0] == first - 240 and minutes == list(range(first - 240, minutes[-1] + 60, 60))
    per_slot = Counter(int(j["now"]) for j in job_rows if j["event"] == event_id)
    assert per_slot and max(per_slot.values()) == 1, "a minute launched twice"
    assert events_state(admin)[event_id]["cursor"] >= minutes[-1]  # follows the scheduler again
    # ahead: nothing runs until the clock passes the cursor, then runs resume after it
    ahead = admin.ok("get_scheduler_status")["cursor"] + 600
    admin.ok("update_event", {"id": event_id, "update_state": {"cursor": ahead}})
    assert events_state(admin)[event_id] == {"cursor": ahead}
    wait_for(lambda: ahead + 60 in minutes_of(read_tables(proc)[0], event_id))
    minutes = minutes_of(read_tables(proc)[0], event_id)
    skipped = [m for m in minutes if m > minutes[0] and m - 60 not in minutes]
    assert skipped == [ahead + 60]  # one gap: the minutes up to the cursor were skipped
    admin.ok("update_event", {"id": event_id, "enabled": False})
