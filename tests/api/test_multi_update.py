"""multi_update_category and multi_update_group: bulk merges (sort order) without revision bumps."""

from __future__ import annotations

import pytest

from harness import Api, login

KINDS = [("category", "categories", {}), ("group", "groups", {"hostname_match": "^nomatch-"})]


@pytest.mark.parametrize("kind,plural,extra", KINDS)
def test_reorder_merges_without_revision_bump(admin: Api, uid, kind, plural, extra):
    a = admin.ok(f"create_{kind}", {"id": uid + "a", "title": "A", **extra})[kind]
    b = admin.ok(f"create_{kind}", {"id": uid + "b", "title": "B", **extra})[kind]
    admin.ok(f"multi_update_{kind}", {"items": [{"id": b["id"], "sort_order": 0, "revision": 50},
                                                {"id": a["id"], "sort_order": 1},
                                                {"id": "no_such_item_" + uid, "sort_order": 2}]})
    got_a = admin.ok(f"get_{kind}", {"id": a["id"]})[kind]
    got_b = admin.ok(f"get_{kind}", {"id": b["id"]})[kind]
    assert (got_b["sort_order"], got_a["sort_order"]) == (0, 1)
    assert got_a["revision"] == got_b["revision"] == 1
    assert got_a["modified"] == a["modified"]
    assert admin.call(f"get_{kind}", {"id": "no_such_item_" + uid})["code"] == "notfound"
    rows = admin.ok("search_activity", {"query": f"action:{kind}_multi_update keywords:{a['id']}",
                                        "limit": 5})["rows"]
    assert rows and rows[0]["updated"] == ["sort_order"] and rows[0]["username"] == "admin"
    for item in (a, b):
        admin.ok(f"delete_{kind}", {"id": item["id"]})


@pytest.mark.parametrize("kind", ["category", "group"])
def test_missing_or_empty_items_is_the_xyops_session_error(admin: Api, kind):
    expected = {"code": "session", "description": "Request missing 'items' parameter, or has zero length."}
    assert admin.call(f"multi_update_{kind}", {}) == expected
    assert admin.call(f"multi_update_{kind}", {"items": []}) == expected
    assert admin.call(f"multi_update_{kind}", {"items": "x"})["code"] == "api"


def test_bad_item_fields_change_nothing(admin: Api, uid):
    made = admin.ok("create_category", {"id": uid, "title": "Keep"})["category"]
    bad = admin.call("multi_update_category", {"items": [{"id": uid, "sort_order": 7},
                                                         {"id": "general", "title": "<b>x</b>"}]})
    assert bad == {"code": "api", "description": "Malformed title parameter: Cannot contain HTML metacharacters"}
    assert admin.ok("get_category", {"id": uid})["category"]["sort_order"] == made["sort_order"]
    admin.ok("delete_category", {"id": uid})


def test_limited_or_unprivileged_callers_are_refused(conductor, admin: Api, uid):
    name = "u" + uid
    admin.ok("admin_create", {"username": name, "password": "pw", "email": "a@b.c", "full_name": "L",
                              "categories": ["general"], "groups": ["main"],
                              "privileges": {"edit_categories": True}}, ns="user")
    api = login(conductor.url, name, "pw")
    items = {"items": [{"id": "general", "sort_order": 0}]}
    assert api.call("multi_update_category", items) == {
        "code": "access", "description": "You do not have the required account privileges to access category ID *."}
    assert api.call("multi_update_group", {"items": [{"id": "main", "sort_order": 0}]}) == {
        "code": "access", "description": 'You do not have the "Edit Groups" privilege required to perform this action.'}
    admin.call("admin_delete", {"username": name}, ns="user")
