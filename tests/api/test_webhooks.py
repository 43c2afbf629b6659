"""Web hook and channel verbs on a real conductor (SQLite and PostgreSQL)."""

from __future__ import annotations

import json

from actions.hook_receivers import Receiver
from harness import Api, ConductorProcess, login


def make_hook(receiver: Receiver, hook_id: str, **extra: object) -> dict[str, object]:
    return {"id": hook_id, "title": "Hook", "method": "POST", "url": receiver.url(f"/{hook_id}"),
            "headers": [{"name": "Content-Type", "value": "application/json"}],
            "body": '{"text":"{{text}}","job":"{{job.id}}"}', **extra}


def test_stock_records_are_seeded(admin: Api) -> None:
    hook = admin.ok("get_web_hook", {"id": "example_hook"})["web_hook"]
    assert hook["method"] == "POST" and hook["url"] == "https://httpbin.org/post" and "{{text}}" in hook["body"]
    channel = admin.ok("get_channel", {"id": "sev1"})["channel"]
    assert channel["title"] == "Severity 1" and channel["users"] == ["admin"]
    assert channel["sound"] == "attention-3.mp3"


def test_web_hook_crud_defaults_and_activity(admin: Api, uid: str) -> None:
    receiver = Receiver()
    try:
        made = admin.ok("create_web_hook", make_hook(receiver, uid, method="post"))["web_hook"]
        assert made["method"] == "POST" and made["revision"] == 1 and made["username"] == "admin"
        assert {k: made[k] for k in ("enabled", "timeout", "retries", "follow", "ssl_cert_bypass", "max_per_day",
                                      "notes", "icon")} == {"enabled": True, "timeout": 30, "retries": 0,
                                                            "follow": False, "ssl_cert_bypass": False,
                                                            "max_per_day": 0, "notes": "", "icon": ""}
        assert uid in [h["id"] for h in admin.ok("get_web_hooks")["rows"]]
        assert admin.ok("update_web_hook", {"id": uid, "retries": 2}) == {"code": 0}
        assert admin.ok("get_web_hook", {"id": uid})["web_hook"]["revision"] == 2
        dup = admin.call("create_web_hook", make_hook(receiver, uid))
        assert dup == {"code": "web_hook", "description": f"That Web Hook ID already exists: {uid}"}
        admin.ok("delete_web_hook", {"id": uid})
        assert admin.call("get_web_hook", {"id": uid})["code"] == "notfound"
        rows = admin.ok("search_activity", {"query": f"keywords:{uid}", "limit": 10})["rows"]
        assert [r["action"] for r in rows] == ["web_hook_delete", "web_hook_update", "web_hook_create"]
        assert rows[2]["web_hook"]["id"] == uid
    finally:
        receiver.close()


def test_web_hook_validation(admin: Api, uid: str) -> None:
    base = {"id": uid, "title": "H", "method": "POST", "url": "http://127.0.0.1:9/"}
    cases = [
        ({**base, "method": "PO ST"}, "api", "Malformed parameter: method"),
        ({**base, "url": "ftp://x/"}, "api", "Malformed parameter: url"),
        ({k: v for k, v in base.items() if k != "url"}, "api", "Missing parameter: url"),
        ({**base, "title": "<b>"}, "api", "Malformed title"),
        ({**base, "id": "Bad-Id"}, "api", "Malformed parameter: id"),
        ({**base, "headers": {"a": "b"}}, "web_hook", f"Invalid header format for web hook: {uid}"),
        ({**base, "headers": [{"name": "Bad Name", "value": "x"}]}, "web_hook", "Invalid header format"),
        ({**base, "body": '{"a":"{{ job.id == }}"}'}, "web_hook", "Failed to compile macro in body"),
        ({**base, "retries": -1}, "api", "retries"),
    ]
    for params, code, message in cases:
        data = admin.call("create_web_hook", params)
        assert data["code"] == code and message in data["description"], (params, data)
    assert admin.call("get_web_hook", {"id": uid})["code"] == "notfound"
    assert admin.ok("create_web_hook", {**base, "url": "{{ base }}/x"})["web_hook"]["url"] == "{{ base }}/x"
    data = admin.call("update_web_hook", {"id": uid, "body": "{{ ) }}"})
    assert data["code"] == "web_hook" and data["description"].startswith("Failed to compile macro in body")
    data = admin.call("update_web_hook", {"id": "nosuch_hook", "title": "x"})
    assert data == {"code": "web_hook", "description": "Failed to update web hook: Error: Item not found"}
    admin.ok("delete_web_hook", {"id": uid})


def test_test_web_hook_fires_and_reports(admin: Api, uid: str) -> None:
    receiver = Receiver(statuses=[200, 500, 500])
    try:
        params = make_hook(receiver, uid)
        result = admin.ok("test_web_hook", params)["result"]
        assert result["code"] == 0 and result["description"] == "Success (HTTP 200 OK)"
        assert "**Method:** POST" in result["details"]
        sent = json.loads(receiver.hits[0].body)
        assert sent == {"text": f"Web Hook Test: {params['title']}", "job": f"Web Hook Test: {params['title']}"}
        assert admin.call("get_web_hook", {"id": uid})["code"] == "notfound"  # testing stores nothing
        failed = admin.call("test_web_hook", {**params, "retries": 1})
        url = receiver.url(f"/{uid}")
        assert failed == {"code": "webhook", "description": f"Error: HTTP 500 Internal Server Error: {url}"}
        bodyless = {k: v for k, v in params.items() if k != "body"}
        assert admin.ok("test_web_hook", bodyless)["result"]["code"] == 0  # missing body is ""
        assert admin.call("test_web_hook", {"title": "x", "method": "GET", "url": url})["code"] == "api"
        bogus = {"job": "jnope", "server": "snope", "web_hook": "example_hook", "text": "hi"}
        assert admin.call("fire_job_web_hook", bogus) == {"code": "api", "description": "Invalid."}
    finally:
        receiver.close()


def test_privileges(conductor: ConductorProcess, admin: Api, uid: str) -> None:
    admin.ok("admin_create", {"username": uid, "password": "pw", "email": "u@example.com", "full_name": "U",
                              "privileges": {"create_web_hooks": True}}, ns="user")
    user = login(conductor.url, uid, "pw")
    try:
        assert user.ok("get_web_hooks")["rows"] and user.ok("get_channels")["rows"]
        params = {"id": uid, "title": "H", "method": "GET", "url": "http://127.0.0.1:9/"}
        user.ok("create_web_hook", params)
        for verb in ("update_web_hook", "test_web_hook"):
            data = user.call(verb, params)
            assert data["code"] == "access" and "Edit Web Hooks" in data["description"], data
        assert user.call("delete_web_hook", {"id": uid})["code"] == "access"
        assert user.call("create_channel", {"title": "C"})["code"] == "access"
        admin.ok("delete_web_hook", {"id": uid})
    finally:
        user.close()


def test_channel_crud(admin: Api, uid: str) -> None:
    made = admin.ok("create_channel", {"id": uid, "title": "Ops", "web_hook": "example_hook"})["channel"]
    assert made["revision"] == 1 and "users" not in made and "email" not in made  # no defaults, as xyOps
    assert admin.ok("update_channel", {"id": uid, "users": ["admin"], "max_per_day": 3}) == {"code": 0}
    got = admin.ok("get_channel", {"id": uid})["channel"]
    assert got["users"] == ["admin"] and got["max_per_day"] == 3 and got["revision"] == 2
    assert admin.call("create_channel", {"id": uid, "title": "Again"})["code"] == "channel"
    assert admin.call("create_channel", {"title": "<i>"})["code"] == "api"
    assert admin.call("create_channel", {"title": "X", "users": "admin"})["code"] == "api"
    admin.ok("delete_channel", {"id": uid})
    assert admin.call("delete_channel", {"id": uid})["code"] == "channel"
    rows = admin.ok("search_activity", {"query": f"keywords:{uid}", "limit": 10})["rows"]
    assert [r["action"] for r in rows] == ["channel_delete", "channel_update", "channel_create"]
