"""Core API and users/privileges spec (core-api.md, users-and-privileges.md), as a client sees it.

Each test pins an exact envelope the xyOps-compatible clients rely on: codes, wording, shapes.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from harness import Api, login


def make_user(admin: Api, name: str, **extra: Any) -> Api:
    admin.ok("admin_create", {"username": name, "password": "pw-" + name, "email": f"{name}@example.com",
                              "full_name": "Core " + name, **extra}, ns="user")
    return login(str(admin.http.base_url).rstrip("/"), name, "pw-" + name)


@pytest.mark.parametrize("kind,code,noun", [
    ("role", "role", "role"), ("tag", "tag", "tag"), ("category", "category", "category"),
    ("group", "group", "group"), ("api_key", "api_key", "API Key"),
])
def test_update_or_delete_of_a_missing_id_passes_the_store_error_through(admin: Api, kind, code, noun):
    # core-api.md §8.4: e.g. `Failed to delete role: Error: Item not found`
    for verb in ("update", "delete"):
        data = admin.call(f"{verb}_{kind}", {"id": "no_such_item"})
        assert data == {"code": code, "description": f"Failed to {verb} {noun}: Error: Item not found"}


def test_get_api_key_of_a_missing_id(admin: Api):
    assert admin.call("get_api_key", {"id": "kmissing"}) == {
        "code": "notfound", "description": "Failed to locate API Key: kmissing"}


@pytest.mark.parametrize("value,shown", [(5, "5"), (None, "null"), (["a", "b"], "a,b"), (True, "true")])
def test_a_non_string_id_is_named_in_the_error(admin: Api, value, shown):
    # core-api.md §2: `Invalid ID parameter: <value> (not a string)`
    for verb in ("get_tag", "delete_category"):
        assert admin.call(verb, {"id": value}) == {
            "code": "api", "description": f"Invalid ID parameter: {shown} (not a string)"}


def test_icon_with_illegal_characters_is_refused(admin: Api, uid):
    data = admin.call("create_tag", {"id": uid, "title": "Icon", "icon": "bad icon"})
    assert data == {"code": "api", "description": "Malformed icon parameter: Contains illegal characters"}
    assert admin.call("get_tag", {"id": uid})["code"] == "notfound"


def test_echo_turns_a_repeated_query_key_into_an_array(conductor):
    data = httpx.get(conductor.url + "/api/app/echo?x=1&x=2&y=3").json()
    assert data["query"] == {"x": ["1", "2"], "y": "3"}
    assert "code" not in data


def test_wrong_password_for_logout_all_or_self_delete_is_a_login_error(admin: Api, uid):
    user = make_user(admin, "u" + uid)
    try:
        wrong = {"code": "login", "description": "Your password is incorrect."}
        assert user.call("logout_all", {"password": "nope"}) == wrong
        assert user.call("delete", {"username": "u" + uid, "password": "nope"}, ns="user") == wrong
        assert admin.ok("admin_get_user", {"username": "u" + uid}, ns="user")["user"]["active"] == 1
    finally:
        admin.call("admin_delete", {"username": "u" + uid}, ns="user")
        user.close()


def test_resume_session_of_a_disabled_and_locked_user_says_disabled(admin: Api, uid):
    user = make_user(admin, "u" + uid)
    try:
        admin.ok("admin_update", {"username": "u" + uid, "active": 0, "force_password_reset": 1}, ns="user")
        assert user.call("resume_session", ns="user") == {
            "code": "login", "description": f"User account is disabled: u{uid}"}
    finally:
        admin.call("admin_delete", {"username": "u" + uid}, ns="user")
        user.close()


def test_api_key_over_its_rate_limit(admin: Api, uid):
    made = admin.ok("create_api_key", {"title": "Rate " + uid, "max_per_sec": 1})
    key = Api(str(admin.http.base_url).rstrip("/"), {"X-API-Key": made["plain_key"]})
    try:
        replies = [key.call("get_tags") for _ in range(4)]
        assert {"code": "rate", "description": "API Key has exceeded rate limit (1/sec)"} in replies
    finally:
        admin.ok("delete_api_key", {"id": made["api_key"]["id"]})
        key.close()


def test_api_keys_are_listed_newest_first(admin: Api, uid):
    first = admin.ok("create_api_key", {"title": "First " + uid})["api_key"]["id"]
    second = admin.ok("create_api_key", {"title": "Second " + uid})["api_key"]["id"]
    try:
        ids = [row["id"] for row in admin.ok("get_api_keys")["rows"]]
        assert ids.index(second) < ids.index(first)
    finally:
        admin.ok("delete_api_key", {"id": first})
        admin.ok("delete_api_key", {"id": second})


def test_new_categories_and_groups_always_sort_last(admin: Api, uid):
    # core-api.md §8.5: `sort_order` = max+1, whatever the caller sent
    for kind, extra in (("category", {}), ("group", {"hostname_match": "^none$"})):
        plural = "categories" if kind == "category" else "groups"
        highest = max(int(row.get("sort_order") or 0) for row in admin.ok(f"get_{plural}")["rows"])
        made = admin.ok(f"create_{kind}", {"id": uid, "title": "Last", "sort_order": 0, **extra})[kind]
        try:
            assert made["sort_order"] == highest + 1
        finally:
            admin.ok(f"delete_{kind}", {"id": uid})


def test_limited_user_creating_without_id_is_refused_naming_the_new_id(admin: Api, uid):
    admin.ok("create_category", {"id": uid, "title": "Mine"})
    user = make_user(admin, "u" + uid, categories=[uid], privileges={"create_categories": True})
    try:
        data = user.call("create_category", {"title": "Elsewhere"})
        assert data["code"] == "access"
        assert re.fullmatch(r"You do not have the required account privileges to access category ID ca\w+\.",
                            data["description"])
        assert [row["id"] for row in user.ok("get_categories")["rows"]] == [uid]
    finally:
        admin.call("admin_delete", {"username": "u" + uid}, ns="user")
        admin.ok("delete_category", {"id": uid})
        user.close()


def test_group_with_a_broken_hostname_pattern_is_a_group_error(admin: Api, uid):
    data = admin.call("create_group", {"id": uid, "title": "Broken", "hostname_match": "(["})
    assert data["code"] == "group" and data["description"].startswith("Invalid hostname match: ")
    assert admin.call("update_group", {"id": "main", "hostname_match": "(["})["code"] == "group"
    assert admin.call("create_group", {"id": uid, "title": "Blank", "hostname_match": " "}) == {
        "code": "api", "description": "Malformed parameter: hostname_match"}
    assert admin.call("get_group", {"id": uid})["code"] == "notfound"
    assert admin.ok("get_group", {"id": "main"})["group"]["hostname_match"] != "(["


def test_category_limits_and_actions_are_checked_when_saved(admin: Api, uid):
    bad_limit = admin.call("create_category", {"id": uid, "title": "C", "limits": [{"type": "nope", "enabled": True}]})
    bad_action = admin.call("create_category", {"id": uid, "title": "C", "actions": [{"type": "email"}]})
    assert bad_limit["code"] == "api" and bad_action["code"] == "api"
    assert admin.call("get_category", {"id": uid})["code"] == "notfound"
    assert admin.call("update_category", {"id": "general", "limits": ["x"]})["code"] == "api"


def test_config_bootstraps_the_ui_without_credentials(conductor):
    # core-api.md §8.1: `app.receiveConfig({...})`, or JSON with format=json; never a secret
    script = httpx.get(conductor.url + "/api/app/config")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert script.text.startswith("app.receiveConfig({") and script.text.endswith(");")
    data = httpx.get(conductor.url + "/api/app/config", params={"format": "json"}).json()
    assert data["code"] == 0 and data["version"] and isinstance(data["epoch"], float | int)
    assert data["config"]["base_app_url"] and "default_user_prefs" in data["config"]
    assert isinstance(data["masters"], dict)
    assert "secret_key" not in script.text and "UNIT_TEST" not in script.text


def test_logout_all_by_request_is_a_notice(admin: Api, uid):
    user = make_user(admin, "u" + uid)
    other = login(str(admin.http.base_url).rstrip("/"), "u" + uid, "pw-u" + uid)
    try:
        assert user.call("logout_all", {"password": "pw-u" + uid}) == {"code": 0}
        assert other.call("get_tags")["code"] == "session"
        assert user.ok("get_tags")["code"] == 0
        rows = admin.ok("search_activity", {"query": f"action:notice keywords:u{uid}", "limit": 5})["rows"]
        assert [row["description"] for row in rows] == ["Logged out all user sessions by request"]
        security = user.ok("get_user_activity")["rows"]
        assert security[0]["action"] == "warning"
        assert security[0]["description"] == "Logged out all user sessions by request"
    finally:
        admin.call("admin_delete", {"username": "u" + uid}, ns="user")
        user.close()
        other.close()


def test_server_status_answers_local_peers_with_the_web_servers_figures(conductor):
    """core-api.md §1: `/server-status` is web-server stats JSON for the local network."""
    data = httpx.get(conductor.url + "/server-status").json()
    assert data["code"] == 0 and data["server"]["pid"] > 0 and data["server"]["uptime_sec"] >= 0
    assert data["stats"]["mem_rss_bytes"] > 0 and "active_jobs" in data["stats"]


def test_server_status_refuses_peers_outside_the_local_network():
    from sundial.api.webstatus import local_peer

    assert all(local_peer(ip) for ip in ("127.0.0.1", "::1", "10.1.2.3", "192.168.0.9", "::ffff:172.16.0.1"))
    assert not any(local_peer(ip) for ip in ("8.8.8.8", "2001:4860::8888", "", None, "not-an-ip"))


@pytest.mark.parametrize("verb,extra", [("admin_update", {"full_name": "X"}), ("admin_get_user", {}),
                                        ("admin_delete", {})])
def test_ill_formed_username_on_admin_user_verbs_is_malformed(admin: Api, verb: str, extra: dict[str, Any]):
    """users-and-privileges.md §2 (`^[\\w\\-\\.]+$`), core-api.md §2: a regex mismatch is an `api`
    error before any lookup; `/api/user/*` errors stay HTTP 200 even on a `/v1` path (§3)."""
    for path in (f"/api/user/{verb}", f"/api/user/{verb}/v1"):
        resp = admin.http.post(path, json={"username": "bad name!", **extra}, headers=admin.headers)
        assert resp.status_code == 200
        assert resp.json() == {"code": "api", "description": "Malformed parameter: username"}


def test_user_manager_errors_are_http_200_on_versioned_paths(conductor):
    resp = httpx.post(conductor.url + "/api/user/admin_get_user/v1", json={"username": "someone"})
    assert resp.status_code == 200 and resp.json()["code"] == "session"


@pytest.mark.parametrize("verb,extra", [
    ("search_jobs", {}), ("search_activity", {}), ("search_servers", {}),
    ("search_revision_history", {"type": "tags"}), ("get_event_history", {}),
])
def test_search_limit_zero_means_the_default_of_one_row(admin: Api, uid, verb: str, extra: dict[str, Any]):
    # core-api.md §4: database searches page 1 row by default; xyOps reads `limit:0` as "not given"
    admin.ok("create_tag", {"id": "t" + uid, "title": "Zero"})
    admin.ok("update_tag", {"id": "t" + uid, "title": "Zero again"})
    if verb == "get_event_history":
        admin.ok("create_event", {"id": "e" + uid, "title": "Zero", "enabled": True, "category": "general",
                                  "plugin": "shellplug", "targets": ["main"], "algo": "random", "triggers": [],
                                  "params": {"script": "#!/bin/sh\n"}})
        admin.ok("update_event", {"id": "e" + uid, "title": "Zero again"})
        extra = {"id": "e" + uid}
    default = admin.ok(verb, extra)
    for zero in (0, "0"):
        data = admin.ok(verb, {**extra, "limit": zero})
        assert data["rows"] == default["rows"] and data["list"] == default["list"]
        assert len(data["rows"]) == min(1, data["list"]["length"])
    assert admin.call(verb, {**extra, "limit": -1})["code"] == "api"
