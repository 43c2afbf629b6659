"""admin_logout_all: an admin ends every session of another user, as an internal job."""

from __future__ import annotations

from harness import Api, login, wait_for


def test_every_session_of_the_user_ends(conductor, admin: Api, uid):
    name = "u" + uid
    admin.ok("admin_create", {"username": name, "password": "pw", "email": "a@b.c", "full_name": "S"}, ns="user")
    first, second = login(conductor.url, name, "pw"), login(conductor.url, name, "pw")
    assert first.ok("get_tags")["rows"]
    job_id = admin.ok("admin_logout_all", {"username": name})["id"]
    assert job_id.startswith("i")
    for api in (first, second):
        wait_for(lambda api=api: api.call("get_tags")["code"] == "session", what="session ended")
    wait_for(lambda: admin.ok("search_activity", {"query": f"action:internal_job keywords:{job_id}"})["rows"],
             what="internal job report")
    assert admin.ok("get_tags")["code"] == 0  # the admin's own session is untouched
    admin.call("admin_delete", {"username": name}, ns="user")


def test_unknown_user_missing_username_and_non_admins(conductor, admin: Api, uid):
    assert admin.call("admin_logout_all", {"username": "nobody_" + uid}) == {
        "code": "user", "description": f"User not found: nobody_{uid}"}
    assert admin.call("admin_logout_all", {}) == {"code": "api", "description": "Missing parameter: username"}
    name = "u" + uid
    admin.ok("admin_create", {"username": name, "password": "pw", "email": "a@b.c", "full_name": "S"}, ns="user")
    assert login(conductor.url, name, "pw").call("admin_logout_all", {"username": "admin"})["code"] == "access"
    admin.call("admin_delete", {"username": name}, ns="user")
