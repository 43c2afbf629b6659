"""Suspend actions and `resume_job` through the API, on SQLite and PostgreSQL.

No satellite runs here, so a job that goes on after its start suspension ends as `abort` ("No
available servers"); that is enough to see what a user sees: the job waits (`suspended`, still
in the active list), the notification goes out with the `job_suspended` text, and `resume_job`
or `abort_job` lets it end.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hook_receivers import Receiver, wait_for

from harness import Api, ConductorProcess, login


@pytest.fixture(scope="module")
def receiver(admin: Api) -> Iterator[Receiver]:
    server = Receiver()
    admin.call("delete_web_hook", {"id": "suspend_hook"})
    admin.ok("create_web_hook", {"id": "suspend_hook", "title": "Suspend hook", "method": "POST",
                                 "url": server.url("/suspend"), "body": '{"text":"{{text}}","id":"{{job.id}}"}'})
    yield server
    server.close()


def act(kind: str, condition: str, **fields: Any) -> dict[str, Any]:
    return {"enabled": True, "condition": condition, "type": kind, **fields}


def make_event(admin: Api, event_id: str, actions: list[dict[str, Any]]) -> None:
    admin.ok("create_event", {
        "id": event_id, "title": f"Suspend {event_id}", "enabled": True, "category": "general", "plugin": "shellplug",
        "targets": ["main"], "algo": "random", "params": {"script": "true", "greeting": "hello"},
        "triggers": [{"type": "manual", "enabled": True}], "actions": actions})


def suspended_job(admin: Api, job_id: str) -> dict[str, Any]:
    """The live job once it is suspended and its suspend action has recorded its notification."""
    def check() -> dict[str, Any] | None:
        job = admin.ok("get_job", {"id": job_id})["job"]
        done = [a for a in job["actions"] if a["type"] == "suspend" and "code" in a]
        return job if job.get("suspended") and done else None

    return wait_for(check, 20, f"job {job_id} to be suspended")


def final_job(admin: Api, job_id: str, settled: int = 0) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        job = admin.ok("get_job", {"id": job_id})["job"]
        done = [a for a in job["actions"] if "code" in a]
        return job if job.get("final") and len(done) >= settled else None

    return wait_for(check, 20, f"job {job_id} to finish")


def messages(job: dict[str, Any]) -> list[str]:
    return [row["msg"] for row in job.get("activity") or []]


def test_start_suspension_waits_for_resume_and_merges_params(admin: Api, receiver: Receiver, uid: str) -> None:
    make_event(admin, uid, [act("suspend", "start", web_hook="suspend_hook", text="Please approve."),
                            act("tag", "start", tags=["flag"])])
    job_id = admin.ok("run_event", {"id": uid})["id"]
    job = suspended_job(admin, job_id)
    suspend, tag = job["actions"]
    assert job["state"] == "ready" and "server" not in job  # start check skipped: no server taken
    assert suspend["code"] == 0 and suspend["description"].startswith("Job suspended")
    assert "### Web Hook Details" in suspend["details"] and suspend["active"] is True
    assert "code" not in tag  # the other start actions wait for the real start
    active = admin.ok("get_active_jobs", {})["rows"]
    assert any(row["id"] == job_id and row.get("suspended") for row in active)
    hit = wait_for(lambda: [h for h in receiver.hits if json.loads(h.body)["id"] == job_id], 10, "the hook")[0]
    text = json.loads(hit.body)["text"]
    assert text.startswith(f"Sundial Job is suspended and requires human intervention: Suspend {uid}: ")
    assert text.endswith(f"#Job?id={job_id}&resume=1 Please approve.")

    assert admin.ok("resume_job", {"id": job_id, "params": {"greeting": "approved"}}) == {"code": 0}
    final = final_job(admin, job_id)
    assert final["code"] == "abort" and "No available servers" in final["description"]  # it did try to start
    assert final["params"]["greeting"] == "approved" and not final.get("suspended")
    assert final["actions"][0]["resumed"] >= final["actions"][0]["date"] and "active" not in final["actions"][0]
    assert any(m == "Job resumed by user: admin." for m in messages(final))
    err = admin.call("resume_job", {"id": job_id})
    assert err["code"] == "job" and err["description"] == f"Job not found or is no longer active: {job_id}"
    admin.ok("delete_event", {"id": uid})


def test_completion_suspension_holds_the_finish(admin: Api, receiver: Receiver, uid: str) -> None:
    make_event(admin, uid, [act("suspend", "error", web_hook="suspend_hook"),
                            act("label", "complete", label="finished")])
    job_id = admin.ok("run_event", {"id": uid})["id"]
    job = suspended_job(admin, job_id)
    assert job["state"] == "complete" and job["code"] == "abort" and not job.get("final")
    assert "code" not in job["actions"][1] and not job.get("label")  # completion actions wait too
    admin.ok("resume_job", {"id": job_id})
    final = final_job(admin, job_id, settled=2)
    assert final["code"] == "abort" and final["label"] == "finished" and not final.get("suspended")
    admin.ok("delete_event", {"id": uid})


def test_abort_ends_a_suspended_job(admin: Api, receiver: Receiver, uid: str) -> None:
    make_event(admin, uid, [act("suspend", "start", web_hook="suspend_hook")])
    job_id = admin.ok("run_event", {"id": uid})["id"]
    suspended_job(admin, job_id)
    admin.ok("abort_job", {"id": job_id})
    final = final_job(admin, job_id)
    assert final["code"] == "abort" and final["description"] == "Manually aborted by user: admin"
    assert not final.get("suspended") and "active" not in final["actions"][0]
    admin.ok("delete_event", {"id": uid})


def test_sources_skip_rule(admin: Api, receiver: Receiver, uid: str) -> None:
    make_event(admin, uid, [act("suspend", "start", web_hook="suspend_hook", sources=["scheduler", "key"])])
    job_id = admin.ok("run_event", {"id": uid})["id"]
    final = final_job(admin, job_id, settled=1)
    skipped = final["actions"][0]
    assert skipped["code"] == 0 and skipped["description"] == \
        "Skipped: job source 'user' is not one of: scheduler, key"
    assert not final.get("suspended") and "No available servers" in final["description"]
    assert not [h for h in receiver.hits if json.loads(h.body)["id"] == job_id]
    admin.ok("delete_event", {"id": uid})


def test_resume_job_refusals_change_nothing(conductor: ConductorProcess, admin: Api, receiver: Receiver,
                                            uid: str) -> None:
    make_event(admin, uid, [act("suspend", "start")])
    job_id = admin.ok("run_event", {"id": uid})["id"]
    job = suspended_job(admin, job_id)
    assert "no one notified" in job["actions"][0]["description"]
    cases = [({}, "api", "Missing parameter: id"), ({"id": "jnothere"}, "job", "no longer active"),
             ({"id": job_id, "params": "x"}, "api", "params"), ({"id": job_id, "redirect": "node1"}, "api",
                                                                "not part of a workflow")]
    for params, code, words in cases:
        data = admin.call("resume_job", params)
        assert data["code"] == code and words in data["description"], (params, data)
    admin.call("admin_create", {"username": "resumer_" + uid, "password": "pw", "email": "r@example.com",
                                "full_name": "R", "privileges": {}}, ns="user")
    nobody = login(conductor.url, "resumer_" + uid, "pw")
    assert nobody.call("resume_job", {"id": job_id})["code"] == "access"
    nobody.close()
    still = admin.ok("get_job", {"id": job_id})["job"]
    assert still["suspended"] is True and still["params"]["greeting"] == "hello"
    admin.ok("abort_job", {"id": job_id})
    final_job(admin, job_id)
    admin.ok("delete_event", {"id": uid})
