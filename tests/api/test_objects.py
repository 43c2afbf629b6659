"""Categories, tags, roles and groups: CRUD, error codes, limits."""

from __future__ import annotations

import pytest

from harness import Api, login


@pytest.mark.parametrize("kind,plural,extra", [
    ("category", "categories", {"color": "blue"}),
    ("tag", "tags", {"icon": "flag"}),
    ("role", "roles", {"privileges": {"run_jobs": True}}),
    ("group", "groups", {"hostname_match": "^web"}),
])
def test_crud_round_trip(admin: Api, uid, kind, plural, extra):
    made = admin.ok(f"create_{kind}", {"id": uid, "title": "T " + uid, **extra})[kind]
    assert made["id"] == uid and made["revision"] == 1 and made["username"] == "admin"
    assert admin.ok(f"get_{kind}", {"id": uid})[kind]["title"] == "T " + uid
    assert uid in [row["id"] for row in admin.ok(f"get_{plural}")["rows"]]
    admin.ok(f"update_{kind}", {"id": uid, "title": "Renamed", "revision": 99, "created": 1})
    got = admin.ok(f"get_{kind}", {"id": uid})[kind]
    assert got["title"] == "Renamed" and got["revision"] == 2 and got["created"] == made["created"]
    admin.ok(f"delete_{kind}", {"id": uid})
    assert admin.call(f"get_{kind}", {"id": uid})["code"] == "notfound"
    assert admin.call(f"update_{kind}", {"id": uid, "title": "x"})["code"] == kind
    assert admin.call(f"delete_{kind}", {"id": uid})["code"] == kind


def test_generated_ids_and_sort_order(admin: Api):
    first = admin.ok("create_category", {"title": "A"})["category"]
    second = admin.ok("create_category", {"title": "B"})["category"]
    assert first["id"].startswith("ca") and len(first["id"]) == 16
    assert second["sort_order"] == first["sort_order"] + 1
    for item in (first, second):
        admin.ok("delete_category", {"id": item["id"]})


def test_duplicate_ids_use_object_codes(admin: Api, uid):
    admin.ok("create_tag", {"id": uid, "title": "x"})
    assert admin.call("create_tag", {"id": uid, "title": "y"}) == {"code": "tag",
                                                                   "description": f"Tag ID already exists: {uid}"}
    admin.ok("create_category", {"id": uid, "title": "x"})
    assert admin.call("create_category", {"id": uid, "title": "y"})["description"] == \
        f"That Category ID already exists: {uid}"
    admin.ok("delete_tag", {"id": uid})
    admin.ok("delete_category", {"id": uid})


def test_bad_ids_and_fields(admin: Api):
    assert admin.call("create_tag", {"id": "Upper", "title": "x"}) == {"code": "api",
                                                                       "description": "Malformed parameter: id"}
    assert admin.call("create_tag", {"title": "x", "icon": "bad icon"})["description"] == \
        "Malformed icon parameter: Contains illegal characters"
    assert admin.call("create_group", {"title": "g", "hostname_match": "("})["code"] == "group"
    assert admin.call("create_category", {"enabled": True}) == {"code": "api",
                                                               "description": "Missing parameter: title"}


def test_notes_lose_html(admin: Api, uid):
    made = admin.ok("create_tag", {"id": uid, "title": "x", "notes": "<script>alert(1)</script>hi"})["tag"]
    assert made["notes"] == "alert(1)hi"
    admin.ok("delete_tag", {"id": uid})


def test_stock_objects_exist(admin: Api):
    assert admin.ok("get_role", {"id": "all"})["role"]["privileges"]["run_jobs"] is True
    assert admin.ok("get_group", {"id": "main"})["group"]["hostname_match"] == ".+"
    assert admin.ok("get_category", {"id": "general"})["category"]["title"] == "General"
    assert {"important", "flag"} <= {t["id"] for t in admin.ok("get_tags")["rows"]}


def test_category_limited_user_sees_only_allowed(conductor, admin: Api, uid):
    admin.ok("create_category", {"id": uid, "title": "Secret"})
    name = "u" + uid
    admin.ok("admin_create", {"username": name, "password": "pw", "email": "a@b.c", "full_name": "L",
                              "categories": ["general"], "privileges": {"edit_categories": True}}, ns="user")
    api = login(conductor.url, name, "pw")
    assert [c["id"] for c in api.ok("get_categories")["rows"]] == ["general"]
    denied = api.call("get_category", {"id": uid})
    assert denied == {"code": "access", "description": "You do not have the required account privileges "
                                                       f"to access category ID {uid}."}
    assert api.call("update_category", {"id": uid, "title": "x"})["code"] == "access"
    admin.ok("delete_category", {"id": uid})


def test_unprivileged_user_reads_but_cannot_write(conductor, admin: Api, uid):
    name = "u" + uid
    admin.ok("admin_create", {"username": name, "password": "pw", "email": "a@b.c", "full_name": "R"}, ns="user")
    api = login(conductor.url, name, "pw")
    assert api.ok("get_tags")["rows"]
    assert api.call("create_tag", {"title": "x"}) == {
        "code": "access", "description": 'You do not have the "Create Tags" privilege required to perform this action.'}


def test_records_carry_whole_epoch_seconds(admin, uid):
    """`created` / `modified` are integer unix seconds (events-and-jobs.md §1), as xyOps clients expect."""
    made = [admin.ok("create_category", {"id": uid, "title": "Secs"})["category"],
            admin.ok("create_secret", {"title": "Secs " + uid, "fields": [{"name": "A", "value": "1"}]})["secret"]]
    admin.ok("admin_create", {"username": "secs" + uid, "password": "pw-secs", "email": "s@example.com",
                              "full_name": "Secs"}, ns="user")
    made.append(admin.ok("admin_get_user", {"username": "secs" + uid}, ns="user")["user"])
    updated = admin.ok("update_category", {"id": uid, "title": "Secs 2"})
    made.append(admin.ok("get_category", {"id": uid})["category"])
    for record in made:
        assert type(record["created"]) is int and type(record["modified"]) is int, record
    assert updated["code"] == 0
    admin.ok("delete_category", {"id": uid})
    admin.ok("delete_secret", {"id": made[1]["id"]})
