"""Job verbs beside the main life cycle, on a conductor with no satellite: jobs there either
wait in a queue (a queue limit) or end at once (no servers), which is all these verbs need.

Summary of active jobs, skip-delay and notify-me refusals and toggles, input-file uploads,
deleting one file of a finished job, and bulk deletion by query.
"""

from __future__ import annotations

import httpx

from harness import Api, login, wait_for

SHELL = {"enabled": True, "category": "general", "plugin": "shellplug", "targets": ["main"], "algo": "random",
         "params": {"script": "#!/bin/sh\ntrue\n"}, "triggers": [{"type": "manual", "enabled": True}]}
QUEUED = [{"type": "job", "enabled": True, "amount": 1}, {"type": "queue", "enabled": True, "amount": 10}]


def _queued_event(admin: Api, uid: str) -> str:
    admin.ok("create_event", {"id": uid, "title": "Q " + uid, **SHELL, "limits": QUEUED})
    return uid


def _final(admin: Api, job_id: str) -> dict:  # type: ignore[type-arg]
    return wait_for(lambda: (lambda j: j if j.get("final") else None)(admin.ok("get_job", {"id": job_id})["job"]),
                    30, f"job {job_id} to end")


def _upload(conductor, admin: Api, files: dict) -> dict:  # type: ignore[no-untyped-def, type-arg]
    reply = httpx.post(f"{conductor.url}/api/app/upload_job_input_files/v1", headers=admin.headers, files=files)
    return reply.json()


def test_active_job_summary_counts_per_event(admin: Api, uid):
    eid = _queued_event(admin, uid)
    ids = [admin.ok("run_event", {"id": eid})["id"] for _ in range(2)]
    summary = admin.ok("get_active_job_summary")["events"][eid]
    assert summary == {"id": eid, "states": {"queued": 2}, "sources": {"user": 2}, "targets": {"main": 2}}
    assert eid not in admin.ok("get_active_job_summary", {"state": "active"})["events"]
    assert admin.ok("get_active_job_summary", {"event": eid})["events"].keys() == {eid}
    assert admin.ok("flush_event_queue", {"id": eid})["count"] == len(ids)
    assert eid not in admin.ok("get_active_job_summary")["events"]


def test_skip_delay_refuses_unknown_and_undelayed_jobs(admin: Api, uid):
    eid = _queued_event(admin, uid)
    job_id = admin.ok("run_event", {"id": eid})["id"]
    assert admin.call("job_skip_delay", {"id": "jnosuchjob"}) == {"code": "job",
                                                                  "description": "Job not found: jnosuchjob"}
    assert admin.call("job_skip_delay", {"id": job_id}) == {"code": "job",
                                                            "description": f"Job is not in a delay state: {job_id}"}
    assert admin.call("job_skip_delay", {})["description"] == "Missing parameter: id"
    admin.ok("flush_event_queue", {"id": eid})


def test_notify_me_toggles_a_hidden_email_action(conductor, admin: Api, uid):
    eid = _queued_event(admin, uid)
    job_id = admin.ok("run_event", {"id": eid})["id"]
    assert admin.ok("job_toggle_notify_me", {"id": job_id})["enabled"] is True
    actions = admin.ok("get_job", {"id": job_id})["job"]["actions"]
    assert {"condition": "complete", "type": "email", "email": "admin@localhost", "users": [], "enabled": True,
            "hidden": True} in actions
    assert admin.ok("job_toggle_notify_me", {"id": job_id})["enabled"] is False
    assert not [a for a in admin.ok("get_job", {"id": job_id})["job"]["actions"] if a.get("hidden")]
    assert admin.call("job_toggle_notify_me", {"id": "jnosuchjob"}) == {"code": "job",
                                                                        "description": "Job not found: jnosuchjob"}
    key = admin.ok("create_api_key", {"title": "No mail", "privileges": {}})["plain_key"]
    reply = httpx.post(f"{conductor.url}/api/app/job_toggle_notify_me/v1", json={"id": job_id},
                       headers={"X-API-Key": key}).json()
    assert reply == {"code": "job", "description": "User has no email address set."}
    admin.ok("flush_event_queue", {"id": eid})


def test_input_files_upload_then_run_then_delete_one(conductor, admin: Api, uid):
    reply = _upload(conductor, admin, {"a": ("Report (1).TXT", b"hello"), "b": ("noext", b"x" * 10)})
    assert reply["code"] == 0, reply
    first, second = reply["files"]
    assert first["filename"] == "Report (1).TXT" and first["size"] == 5 and first["username"] == "admin"
    assert first["path"].startswith("files/admin/") and first["path"].endswith("/report__1_.txt")
    assert len(first["path"].split("/")[2]) == 43 and second["path"].endswith("/noext.bin")
    assert first["id"].startswith("f") and isinstance(first["date"], int)
    assert httpx.get(f"{conductor.url}/{first['path']}").content == b"hello"
    # a run with those files as input ends at once (no servers) and keeps them on its record
    admin.ok("create_event", {"id": uid, "title": "F " + uid, **SHELL})
    job_id = admin.ok("run_event", {"id": uid, "input": {"files": reply["files"]}})["id"]
    job = _final(admin, job_id)
    assert [f["path"] for f in job["input"]["files"]] == [first["path"], second["path"]]
    gone = admin.call("delete_job_file", {"id": job_id, "path": "files/admin/nope/x.txt"})
    assert gone == {"code": "job", "description": "Job file not found: x.txt"}
    admin.ok("delete_job_file", {"id": job_id, "path": first["path"]})
    job = admin.ok("get_job", {"id": job_id})["job"]
    assert [f["path"] for f in job["input"]["files"]] == [second["path"]]
    assert httpx.get(f"{conductor.url}/{first['path']}").status_code == 404
    rows = admin.ok("search_activity", {"query": f"action:job_delete_file keywords:{job_id}", "limit": 5})["rows"]
    assert len(rows) == 1 and rows[0]["username"] == "admin"


def test_input_files_upload_refusals(conductor, admin: Api, uid):
    assert admin.call("upload_job_input_files", {}) == {"code": "file",
                                                        "description": "No file upload data found in request."}
    admin.ok("admin_create", {"username": uid, "password": "pw", "email": "u@x.y", "full_name": "U",
                              "privileges": {}}, ns="user")
    nobody = login(conductor.url, uid, "pw")
    reply = _upload(conductor, nobody, {"a": ("a.txt", b"a")})
    assert reply == {"code": "access",
                     "description": 'You do not have the "Run Jobs" privilege required to perform this action.'}
    reply = httpx.post(f"{conductor.url}/api/app/delete_job_file/v1", headers=nobody.headers,
                       json={"id": "jx", "path": "files/x"}).json()
    assert reply["code"] == "access"


def test_bulk_search_delete_jobs_deletes_matching_finished_jobs(admin: Api, uid):
    admin.ok("create_event", {"id": uid, "title": "B " + uid, **SHELL})
    ids = [admin.ok("run_event", {"id": uid})["id"] for _ in range(3)]
    for job_id in ids:
        _final(admin, job_id)
    assert admin.ok("search_jobs", {"query": f"event:{uid}", "limit": 10})["list"]["length"] == 3
    assert admin.ok("bulk_search_delete_jobs", {"query": f"event:{uid}"}) == {"code": 0}
    wait_for(lambda: admin.ok("search_jobs", {"query": f"event:{uid}", "limit": 10})["list"]["length"] == 0,
             30, "the matching jobs to be deleted")
    assert admin.call("get_job", {"id": ids[0]})["code"] == "notfound"
    bad = admin.call("bulk_search_delete_jobs", {"query": "(((("})
    assert bad["code"] == "api"


def test_bulk_search_delete_jobs_refuses_limited_users(conductor, admin: Api, uid):
    admin.ok("admin_create", {"username": uid, "password": "pw", "email": "u@x.y", "full_name": "U",
                              "privileges": {"delete_jobs": True}, "categories": ["general"]}, ns="user")
    limited = login(conductor.url, uid, "pw")
    assert limited.call("bulk_search_delete_jobs", {"query": "*"}) == {
        "code": "access", "description": "Category or group limited users may not use this API"}
