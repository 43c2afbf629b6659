"""get_multiple (lists and live maps in one call) and get_server_summaries, on both back ends."""

from __future__ import annotations

from harness import Api, login

SUMMARY_FIELDS = {"os_platform", "os_distro", "os_release", "os_arch", "cpu_virt", "cpu_brand", "cpu_cores"}


def test_named_lists_and_live_maps(admin: Api):
    data = admin.ok("get_multiple", {"lists": ["categories", "tags"], "jobs": True, "state": True, "stats": True,
                                     "servers": True, "serverCache": True, "alerts": True})
    assert isinstance(data["epoch"], float)
    assert [c["id"] for c in data["categories"]] == [c["id"] for c in admin.ok("get_categories")["rows"]]
    assert {"important", "flag"} <= {t["id"] for t in data["tags"]}
    assert "events" not in data
    assert data["state"]["scheduler"]["enabled"] in (True, False)
    assert {"mem", "cpu", "currentDay"} <= set(data["stats"]) and data["stats"]["mem"] > 0
    for key in ("jobs", "servers", "serverCache", "alerts"):
        assert isinstance(data[key], dict)


def test_all_lists_csv_and_nothing_else(admin: Api):
    every = admin.ok("get_multiple", {"lists": "all"})
    assert {"api_keys", "groups", "plugins", "categories", "events", "channels", "web_hooks", "buckets",
            "secrets", "monitors", "alerts", "tags", "roles"} <= set(every)
    assert "jobs" not in every and "state" not in every
    csv = admin.call("get_multiple", {"lists": "groups,roles"}, method="GET")
    assert {g["id"] for g in csv["groups"]} >= {"main"} and {r["id"] for r in csv["roles"]} >= {"all"}
    assert admin.call("get_multiple", {"lists": ["tags", "users"]}) == {"code": "api",
                                                                        "description": "Unknown list: users"}


def test_api_keys_are_redacted_for_non_admins_and_limited_users_refused(conductor, admin: Api, uid):
    admin.ok("create_api_key", {"title": "K " + uid})
    plain, limited = "p" + uid, "l" + uid
    admin.ok("admin_create", {"username": plain, "password": "pw", "email": "a@b.c", "full_name": "P"}, ns="user")
    admin.ok("admin_create", {"username": limited, "password": "pw", "email": "a@b.c", "full_name": "L",
                              "groups": ["main"]}, ns="user")
    keys = login(conductor.url, plain, "pw").ok("get_multiple", {"lists": ["api_keys"]})["api_keys"]
    assert keys and all(k["key"] == "REDACTED" for k in keys)
    assert all(k["key"] != "REDACTED" for k in admin.ok("get_multiple", {"lists": ["api_keys"]})["api_keys"])
    assert login(conductor.url, limited, "pw").call("get_multiple", {"lists": "all"}) == {
        "code": "access", "description": "Category or group limited users may not use this API"}
    for name in (plain, limited):
        admin.call("admin_delete", {"username": name}, ns="user")


def test_server_summaries_shape(admin: Api):
    summaries = admin.ok("get_server_summaries")["summaries"]
    assert set(summaries) == SUMMARY_FIELDS
    assert all(isinstance(counts, dict) for counts in summaries.values())
