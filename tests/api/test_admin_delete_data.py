"""admin_delete_data: bulk deletion as a maintenance internal job, with its report."""

from __future__ import annotations

from harness import Api, login, wait_for


def _finished(admin: Api, job_id: str) -> dict:
    rows = wait_for(lambda: admin.ok("search_activity", {"query": f"action:internal_job keywords:{job_id}"})["rows"],
                    what="the delete job's report")
    return rows[0]["job"]


def test_index_records_matching_a_query(admin: Api, uid):
    admin.ok("create_tag", {"id": uid, "title": "Doomed history"})
    assert admin.ok("search_activity", {"query": f"keywords:{uid}"})["list"]["length"] == 1
    try:
        job_id = admin.ok("admin_delete_data", {"items": [{"type": "index", "index": "activity",
                                                           "query": f"keywords:{uid}"},
                                                          {"type": "index", "index": "tickets"},
                                                          {"type": "bucketData"}]})["id"]
        job = _finished(admin, job_id)
        assert job["code"] == 0 and job["deleted"] == {"activity records": 1}
        assert "scheduler was disabled" in job["details"] and "no tickets records" in job["details"]
        assert admin.ok("search_activity", {"query": f"keywords:{uid}"})["list"]["length"] == 0
        assert admin.ok("get_global_state")["state"]["scheduler"]["enabled"] is False
        assert admin.ok("get_tag", {"id": uid})["tag"]["id"] == uid  # the list itself was not selected
    finally:
        admin.ok("update_global_state", {"scheduler.enabled": True})
        admin.call("delete_tag", {"id": uid})


def test_nothing_selected_and_non_admins_are_refused(conductor, admin: Api, uid):
    refused = {"code": "admin", "description": "No data selected for deletion."}
    assert admin.call("admin_delete_data", {}) == refused
    assert admin.call("admin_delete_data", {"items": []}) == refused
    assert admin.call("admin_delete_data", {"items": "x"}) == refused
    name = "u" + uid
    admin.ok("admin_create", {"username": name, "password": "pw", "email": "a@b.c", "full_name": "N"}, ns="user")
    user = login(conductor.url, name, "pw")
    assert user.call("admin_delete_data", {"items": [{"type": "users"}]})["code"] == "access"
    admin.call("admin_delete", {"username": name}, ns="user")


def test_lists_users_and_secrets_on_a_conductor_of_its_own(fresh_conductor):
    proc = fresh_conductor().start()
    admin = login(proc.url, "admin", "admin")
    admin.ok("admin_create", {"username": "other", "password": "pw", "email": "o@b.c", "full_name": "O"}, ns="user")
    secret = admin.ok("create_secret", {"title": "S", "fields": [{"name": "A", "value": "1"}]})["secret"]
    job_id = admin.ok("admin_delete_data", {"items": [
        {"type": "list", "key": "global/tags"}, {"type": "users"}, {"type": "secretData"},
        {"type": "list", "key": "global/nope"}, {"type": "teapot"}]})["id"]
    job = _finished(admin, job_id)
    assert job["deleted"] == {"tags list items": 2, "users": 1, "secret payloads": 1}
    assert job["code"] == "delete" and "List not found: global/nope" in job["details"]
    assert "Unknown item type: teapot" in job["details"]
    assert admin.ok("get_tags")["rows"] == []
    assert [u["username"] for u in admin.ok("admin_get_users", ns="user")["rows"]] == ["admin"]
    assert admin.call("decrypt_secret", {"id": secret["id"]})["code"] != 0
    admin.close()
