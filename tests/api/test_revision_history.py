"""search_revision_history: one object kind's change history, open to every user, without client details."""

from __future__ import annotations

from harness import Api, login


def test_history_of_one_kind_without_client_details(admin: Api, uid):
    admin.ok("create_tag", {"id": uid, "title": "History"})
    admin.ok("update_tag", {"id": uid, "title": "History 2"})
    admin.ok("create_category", {"id": uid, "title": "Other kind"})
    data = admin.ok("search_revision_history", {"type": "tags", "query": uid, "limit": 10})
    assert [row["action"] for row in data["rows"]] == ["tag_update", "tag_create"]
    assert data["list"]["length"] == 2
    for row in data["rows"]:
        assert not {"ip", "ips", "headers", "useragent"} & set(row)
        assert row["tag"]["id"] == uid and row["username"] == "admin"
    stock = admin.ok("search_revision_history", {"type": "categories", "query": "", "limit": 50})
    assert stock["rows"] and all(row["action"].startswith("category_") for row in stock["rows"])
    admin.ok("delete_tag", {"id": uid})
    admin.ok("delete_category", {"id": uid})


def test_bad_type_or_query_is_a_search_error(admin: Api):
    assert admin.call("search_revision_history", {"type": "users"}) == {
        "code": "search", "description": "Invalid search type."}
    assert admin.call("search_revision_history", {})["code"] == "search"
    assert admin.call("search_revision_history", {"type": "tags", "query": "action:user_login"}) == {
        "code": "search", "description": "No."}
    assert admin.call("search_revision_history", {"type": "tags", "query": '(keywords =~ "x")'}) == {
        "code": "search", "description": "Nope."}


def test_plain_users_see_history_limited_users_see_none(conductor, admin: Api, uid):
    plain, limited = "p" + uid, "l" + uid
    admin.ok("admin_create", {"username": plain, "password": "pw", "email": "a@b.c", "full_name": "P"}, ns="user")
    admin.ok("admin_create", {"username": limited, "password": "pw", "email": "a@b.c", "full_name": "L",
                              "categories": ["general"]}, ns="user")
    assert login(conductor.url, plain, "pw").ok("search_revision_history", {"type": "groups"})["rows"]
    assert login(conductor.url, limited, "pw").ok("search_revision_history", {"type": "groups"}) == {
        "code": 0, "rows": [], "list": {"length": 0}}
    for name in (plain, limited):
        admin.call("admin_delete", {"username": name}, ns="user")
