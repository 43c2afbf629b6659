"""Whole-list verbs (get_events, get_plugins, get_categories, …) answer from a body rendered once
per list change: every change must show at once, and every way of asking gives the same rows."""

from __future__ import annotations

import json
from typing import Any

from harness import Api, login

SHELL = {"enabled": True, "category": "general", "plugin": "shellplug", "targets": ["main"], "algo": "random",
         "params": {"script": "#!/bin/sh\ntrue\n"}, "triggers": [{"type": "manual", "enabled": True}]}


def titles(api: Api, verb: str) -> dict[str, str]:
    return {row["id"]: row["title"] for row in api.ok(verb)["rows"]}


def test_every_change_shows_in_the_next_listing(admin: Api, uid: str) -> None:
    for verb, create, update, delete, body in (
            ("get_events", "create_event", "update_event", "delete_event", {**SHELL, "id": uid}),
            ("get_categories", "create_category", "update_category", "delete_category", {"id": uid}),
            ("get_plugins", "create_plugin", "update_plugin", "delete_plugin",
             {"id": uid, "type": "scheduler", "command": "/bin/true"}),
            ("get_channels", "create_channel", "update_channel", "delete_channel", {"id": uid}),
            ("get_tags", "create_tag", "update_tag", "delete_tag", {"id": uid})):
        before = titles(admin, verb)
        assert titles(admin, verb) == before  # asked twice: the second answer is the stored body
        admin.ok(create, {**body, "title": "First " + uid})
        assert titles(admin, verb) == {**before, uid: "First " + uid}, verb
        admin.ok(update, {"id": uid, "title": "Second " + uid})
        assert titles(admin, verb)[uid] == "Second " + uid, verb
        admin.ok(delete, {"id": uid})
        assert titles(admin, verb) == before, verb


def test_pretty_filtered_and_plain_listings_agree(admin: Api, uid: str) -> None:
    event_id = admin.ok("create_event", {**SHELL, "title": "Listed " + uid})["event"]["id"]
    try:
        plain = admin.http.get("/api/app/get_events/v1", headers=admin.headers)
        pretty = admin.http.get("/api/app/get_events/v1", params={"pretty": 1}, headers=admin.headers)
        assert plain.headers["content-type"] == pretty.headers["content-type"] == "application/json"
        assert b"\n\t" in pretty.content and b"\n\t" not in plain.content
        assert json.loads(plain.content) == json.loads(pretty.content)
        data: dict[str, Any] = json.loads(plain.content)
        assert data["code"] == 0 and data["list"] == {"length": len(data["rows"])}
        mine = next(row for row in data["rows"] if row["id"] == event_id)
        filtered = admin.ok("get_events", {"title": "Listed " + uid})
        assert filtered["rows"] == [mine] and filtered["list"] == {"length": 1}
        assert mine == admin.ok("get_event", {"id": event_id})["event"]
    finally:
        admin.ok("delete_event", {"id": event_id})


def test_a_category_limited_user_never_gets_the_whole_list(conductor, admin: Api, uid: str) -> None:  # type: ignore[no-untyped-def]
    admin.ok("create_category", {"id": uid, "title": "Theirs"})
    mine = admin.ok("create_event", {**SHELL, "title": "Limited " + uid, "category": uid})["event"]["id"]
    other = admin.ok("create_event", {**SHELL, "title": "Other " + uid})["event"]["id"]
    name = "lst" + uid
    admin.ok("admin_create", {"username": name, "password": "pw-" + name, "email": f"{name}@example.com",
                              "full_name": "Limited", "privileges": {}, "categories": [uid]}, ns="user")
    user = login(conductor.url, name, "pw-" + name)
    try:
        assert {mine, other} <= set(titles(admin, "get_events"))  # the whole list is rendered and stored
        assert set(titles(user, "get_events")) == {mine}
        assert set(titles(user, "get_categories")) == {uid}
        assert {uid, "general"} <= set(titles(admin, "get_categories"))
    finally:
        user.close()
        admin.ok("delete_event", {"id": mine})
        admin.ok("delete_event", {"id": other})
        admin.ok("delete_category", {"id": uid})
