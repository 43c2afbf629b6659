"""Every change is in the activity log, with who and where, and never a credential."""

from __future__ import annotations

import httpx

from harness import Api, login


def test_create_update_delete_are_recorded_with_client_info(admin: Api, uid):
    admin.ok("create_tag", {"id": uid, "title": "Audited"})
    admin.ok("update_tag", {"id": uid, "title": "Audited 2"})
    admin.ok("delete_tag", {"id": uid})
    rows = admin.ok("search_activity", {"query": f"keywords:{uid}", "limit": 10})["rows"]
    assert [r["action"] for r in rows] == ["tag_delete", "tag_update", "tag_create"]
    first = rows[-1]
    assert first["username"] == "admin" and first["ip"] == "127.0.0.1"
    assert first["tag"]["title"] == "Audited" and uid in first["keywords"]
    assert first["headers"]["user-agent"].startswith("python-httpx")
    assert "x-session-id" not in first["headers"] and "cookie" not in first["headers"]


def test_search_total_paging_and_syntax(admin: Api, uid):
    for n in range(3):
        admin.ok("create_tag", {"id": f"{uid}{n}", "title": f"t{n}"})
    page = admin.ok("search_activity", {"query": "action:tag_create", "limit": 2, "offset": 0})
    assert len(page["rows"]) == 2 and page["list"]["length"] >= 3
    pxql = admin.ok("search_activity", {"query": f'(action = "tag_create" & keywords =~ "{uid}1")', "limit": 5})
    assert [r["tag"]["id"] for r in pxql["rows"]] == [f"{uid}1"]
    dated = admin.ok("search_activity", {"query": "action:tag_create date:today", "limit": 1})
    assert dated["list"]["length"] >= 3
    assert admin.call("search_activity", {"query": "nosuchcolumn:x"})["code"] == "api"
    for n in range(3):
        admin.ok("delete_tag", {"id": f"{uid}{n}"})


def test_default_search_limit_is_one_and_cache_header(conductor, admin: Api):
    resp = httpx.post(conductor.url + "/api/app/search_activity/v1", json={}, headers=admin.headers)
    assert len(resp.json()["rows"]) == 1
    assert resp.headers["cache-control"] == "public, max-age=300"


def test_logins_and_user_changes_never_store_passwords(conductor, admin: Api, uid):
    name = "u" + uid
    secret = "Pw-" + uid + "-very-secret"
    admin.ok("admin_create", {"username": name, "password": secret, "email": "a@b.c", "full_name": "A"}, ns="user")
    api = login(conductor.url, name, secret)
    admin.ok("admin_update", {"username": name, "new_password": secret + "2"}, ns="user")
    rows = admin.ok("search_activity", {"query": f"keywords:{name}", "limit": 20})["rows"]
    actions = {r["action"] for r in rows}
    assert {"user_create", "user_login", "user_update"} <= actions
    assert secret not in str(rows) and api.headers["X-Session-ID"] not in str(rows)
    for component in ("Transaction", "API", "Sundial", "Error"):
        text = conductor.log_text(component)
        assert secret not in text and api.headers["X-Session-ID"] not in text


def test_activity_search_is_admin_only(conductor, admin: Api, uid):
    name = "u" + uid
    admin.ok("admin_create", {"username": name, "password": "pw", "email": "a@b.c", "full_name": "A",
                              "privileges": {"create_tags": True}}, ns="user")
    assert login(conductor.url, name, "pw").call("search_activity")["code"] == "access"


def test_global_state_round_trip_is_audited(admin: Api):
    admin.ok("update_global_state", {"scheduler.enabled": False})
    assert admin.ok("get_global_state")["state"]["scheduler"]["enabled"] is False
    admin.ok("update_global_state", {"scheduler.enabled": True})
    rows = admin.ok("search_activity", {"query": "action:state_update", "limit": 2})["rows"]
    assert rows[0]["key"] == "scheduler.enabled" and rows[0]["value"] is True
    assert admin.call("update_global_state", {"a.__proto__.b": 1})["code"] == "api"
