"""Scheduler verbs and save-time refusal of impossible timings, through the real API."""

from __future__ import annotations

from harness import Api

NOW = 1766111340  # 2025-12-18 18:29:00 America/Los_Angeles (Thursday)
BASE = {"enabled": True, "category": "general", "plugin": "shellplug", "targets": ["main"], "algo": "random",
        "params": {"script": "#!/bin/sh\ntrue\n"}}


def test_impossible_timings_are_refused_at_save(admin: Api):
    cases = [
        ({"type": "schedule", "months": [2], "days": [30]}, "Schedule can never run"),
        ({"type": "schedule", "hours": [25]}, "Malformed trigger parameter: hours (out of range: 25)"),
        ({"type": "schedule", "minutes": "5"}, "Malformed trigger parameter: minutes (must be array)"),
        ({"type": "schedule", "timezone": "Mars/Olympus"}, "Unknown timezone: Mars/Olympus"),
        ({"type": "interval", "start": NOW}, "Interval rule is missing duration."),
        ({"type": "single", "epoch": -5}, "Invalid date/time specified for single shot"),
        ({"type": "precision", "seconds": [75]}, "out of range: 75"),
        ({"type": "plugin", "plugin_id": "nope"}, "Scheduler Plugin not found: nope"),
        ({"type": "sometimes"}, "Malformed trigger entry #1: Unknown type"),
    ]
    for trigger, message in cases:
        data = admin.call("create_event", {"title": "Bad timing", **BASE, "triggers": [{"enabled": True, **trigger}]})
        assert data["code"] == "api" and message in data["description"], (trigger, data)
    assert not [e for e in admin.ok("get_events")["rows"] if e["title"] == "Bad timing"]


def test_event_schedule_lists_the_next_runs(admin: Api, uid):
    triggers = [{"type": "schedule", "enabled": True, "hours": [3], "minutes": [0, 30], "timezone": "America/New_York"},
                {"type": "catchup", "enabled": True}]
    admin.ok("create_event", {"id": uid, "title": "Preview", **BASE, "triggers": triggers})
    # 2026-03-08: New York springs forward at 02:00, so 03:00 local is 07:00 UTC
    data = admin.ok("get_event_schedule", {"id": uid, "count": 3, "after": 1772938800})  # 2026-03-08 03:00 UTC
    assert [row["epoch"] for row in data["rows"]] == [1772953200, 1772955000, 1773039600]
    assert data["rows"][0]["local"] == "2026-03-08T03:00:00-04:00" and data["catchup"] is True and data["runs"]
    assert admin.call("get_event_schedule", {"id": "nosuch"})["code"] == "notfound"
    admin.ok("delete_event", {"id": uid})


def test_event_schedule_previews_unsaved_triggers(admin: Api):
    data = admin.ok("get_event_schedule", {"after": NOW, "count": 4, "triggers": [
        {"type": "schedule", "enabled": True, "minutes": [30], "timezone": "UTC"},
        {"type": "precision", "enabled": True, "seconds": [0, 45]}]})
    assert [row["now"] for row in data["rows"]] == [NOW + 60, NOW + 105, NOW + 3660, NOW + 3705]
    bad = admin.call("get_event_schedule", {"triggers": [{"type": "schedule", "enabled": True, "days": [0]}]})
    assert bad == {"code": "api", "description": "Malformed trigger parameter: days (out of range: 0)"}
    assert admin.call("get_event_schedule", {})["code"] == "api"


def test_scheduler_status_is_admin_data(admin: Api):
    status = admin.ok("get_scheduler_status")
    assert status["enabled"] is True and status["clock_speed"] == 1 and status["timezone"]


def test_crontab_is_saved_as_a_schedule_and_previewed_like_one(admin: Api, uid):
    """A `crontab` on a schedule trigger is an input form: stored as the timing lists, not kept."""
    cron = {"type": "schedule", "enabled": True, "crontab": "*/15 9-17 * * mon-fri", "timezone": "UTC",
            "hours": [3]}  # the expression replaces any lists sent with it
    event = admin.ok("create_event", {"id": uid, "title": "Cron", **BASE, "triggers": [cron]})["event"]
    assert event["triggers"] == [{"type": "schedule", "enabled": True, "timezone": "UTC", "minutes": [0, 15, 30, 45],
                                  "hours": list(range(9, 18)), "weekdays": [1, 2, 3, 4, 5]}]
    assert admin.ok("get_event", {"id": uid})["event"]["triggers"] == event["triggers"]
    friday_9 = 1766134800  # 2025-12-19 09:00 UTC, the first run after NOW (Friday 02:29 UTC)
    rows = admin.ok("get_event_schedule", {"id": uid, "after": NOW, "count": 3})["rows"]
    assert [row["epoch"] for row in rows] == [friday_9, friday_9 + 900, friday_9 + 1800]
    preview = admin.ok("get_event_schedule", {"after": NOW, "count": 3, "triggers": [cron]})["rows"]
    assert [row["epoch"] for row in preview] == [friday_9, friday_9 + 900, friday_9 + 1800]
    bad = [("61 * * * *", "Malformed trigger entry #1: Invalid crontab expression: cron minute: 61 is out of range"),
           ("0 0 1 * mon", "Malformed trigger entry #1: Invalid crontab expression: cron runs on days matching "
                           "day-of-month OR day-of-week"),
           ("", "Malformed trigger entry #1: Malformed crontab expression (must be a non-empty string)")]
    for expression, message in bad:
        data = admin.call("update_event", {"id": uid, "triggers": [{**cron, "crontab": expression}]})
        assert data["code"] == "api" and data["description"].startswith(message), data
    assert admin.ok("get_event", {"id": uid})["event"]["triggers"] == event["triggers"]
    admin.ok("delete_event", {"id": uid})
