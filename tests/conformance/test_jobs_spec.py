"""Events, jobs and plugins as a client sees them (events-and-jobs.md, plugins-and-wire-protocol.md
§2, triggers-and-scheduler.md §2): exact codes, error strings and side effects over HTTP only.

Validation tests use the shared `admin` fixture (SQLite and PostgreSQL); tests that need a job
to run use one conductor with its local satellite for the whole module.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from harness import Api, ConductorProcess, satellite_node
from harness import wait_for as wait


def shell_event(uid: str, **extra: Any) -> dict[str, Any]:
    return {"id": "e" + uid, "title": "Spec " + uid, "enabled": True, "category": "general", "plugin": "shellplug",
            "targets": ["main"], "algo": "random", "params": {"script": "#!/bin/sh\necho hello\n"},
            "triggers": [{"type": "manual", "enabled": True}], **extra}


def refused(api: Api, verb: str, params: dict[str, Any]) -> dict[str, Any]:
    data = api.call(verb, params)
    assert data.get("code") not in (0, None), f"{verb} accepted {params}"
    return data


# -- plugin records (plugins spec §2) -------------------------------------------------------------

def test_create_plugin_with_unknown_type_is_malformed(admin: Api, uid: str) -> None:
    data = refused(admin, "create_plugin", {"id": "p" + uid, "title": "T", "type": "bogus", "command": "x"})
    assert data == {"code": "api", "description": "Malformed parameter: type"}
    assert admin.call("get_plugin", {"id": "p" + uid})["code"] == "notfound"


# -- event save-time validation (events spec §2, §8.3, §10.4) --------------------------------------

@pytest.mark.parametrize("change, description", [
    ({"targets": []}, "Event has no targets specified."),
    ({"limits": [{"type": "bogus", "enabled": True}]}, "Malformed limit entry #1: Unknown type"),
    ({"limits": [{"type": "job", "amount": 1}]}, "Malformed limit entry #1: Missing enabled flag"),
    ({"limits": [{"type": "job", "enabled": True, "amount": 1}, {"type": "time", "enabled": True}]},
     "Malformed limit entry #2: Invalid time limit (not a number)"),
    ({"fields": [{"id": "script", "title": "Script", "type": "text"}]},
     "Malformed user field 'script': ID is already in use (as plugin parameter)."),
    ({"actions": [{"type": "run_event", "enabled": True, "condition": "error", "event_id": "no_such_event"}]},
     "Malformed action entry #1: Event not found: no_such_event"),
    ({"actions": [{"type": "disable", "condition": "error"}, "nope"]}, "Malformed action entry #2 (not an object)"),
    ({"actions": [{"type": "tag", "condition": "error", "tags": ["flag"]}, {"type": "tag", "condition": "error"}]},
     "Malformed action entry #2: tag needs a non-empty tags list"),
])
def test_bad_event_is_refused_and_not_stored(admin: Api, uid: str, change: dict[str, Any], description: str) -> None:
    data = refused(admin, "create_event", shell_event(uid, **change))
    assert data == {"code": "api", "description": description}
    assert admin.call("get_event", {"id": "e" + uid})["code"] == "notfound"


def test_run_event_action_may_name_the_event_itself_or_a_sibling(admin: Api, uid: str) -> None:
    """§10.4: the run_event target must exist; the event being saved counts as existing."""
    own = "e" + uid
    action = {"type": "run_event", "enabled": True, "condition": "error", "event_id": own}
    try:
        assert admin.ok("create_event", shell_event(uid, actions=[action]))["event"]["actions"][0]["event_id"] == own
    finally:
        admin.call("delete_event", {"id": own})


def test_action_without_enabled_flag_is_accepted(admin: Api, uid: str) -> None:
    """§10.4 lists no `enabled` rule for actions (limits need one, §8.3)."""
    action = {"type": "tag", "condition": "success", "tags": ["flag"]}
    try:
        assert admin.ok("create_event", shell_event(uid, actions=[action]))["event"]["actions"] == [action]
    finally:
        admin.call("delete_event", {"id": "e" + uid})


def test_get_event_of_a_missing_id_is_notfound(admin: Api, uid: str) -> None:
    """core-api.md §3: object lookups by `get_*` answer `notfound` (see docs/compatibility.md)."""
    assert admin.call("get_event", {"id": "e" + uid}) == \
        {"code": "notfound", "description": f"Failed to locate event: e{uid}"}


def test_event_history_of_a_missing_or_deleted_event_is_an_event_error(admin: Api, uid: str) -> None:
    """xyOps answers code `event` rather than an empty history (see docs/compatibility.md)."""
    missing = {"code": "event", "description": f"Event not found: e{uid}"}
    assert admin.call("get_event_history", {"id": "e" + uid}) == missing
    admin.ok("create_event", shell_event(uid))
    assert admin.ok("get_event_history", {"id": "e" + uid})["list"]["length"] == 1
    admin.ok("delete_event", {"id": "e" + uid})
    assert admin.call("get_event_history", {"id": "e" + uid}) == missing


# -- run_event refusals (events spec §5, §12; triggers spec §2) ------------------------------------

@pytest.fixture
def event(admin: Api, uid: str) -> Iterator[str]:
    admin.ok("create_event", shell_event(uid))
    yield "e" + uid
    admin.call("delete_event", {"id": "e" + uid})


def test_run_event_refusals_name_the_event_and_launch_nothing(admin: Api, event: str) -> None:
    assert refused(admin, "run_event", {"id": event, "params": {"_xy_override_plugin": "x"}}) == {
        "code": "api", "description": "Reserved parameter name: _xy_override_plugin"}
    assert refused(admin, "run_event", {"id": event, "params": {"script": ""}}) == {
        "code": "api", "description": "Missing required Plugin parameters."}
    admin.ok("update_event", {"id": event, "triggers": []})
    assert refused(admin, "run_event", {"id": event}) == {
        "code": "event", "description": f"Event does not allow manual job runs: {event}"}
    admin.ok("update_event", {"id": event, "enabled": False, "triggers": [{"type": "manual", "enabled": True}]})
    assert refused(admin, "run_event", {"id": event}) == {"code": "event", "description": f"Event is disabled: {event}"}
    assert admin.ok("get_event", {"id": event})["jobs"] == []
    assert admin.ok("search_jobs", {"query": f"event:{event}"})["rows"] == []


def test_workflow_job_summary_and_ticket_verbs_exist(admin: Api, uid: str) -> None:
    """§12: `get_workflow_job_summary` counts active sub-jobs per node; `manage_job_tickets`
    edits completed jobs only."""
    assert admin.ok("get_workflow_job_summary", {"workflow.job": "j" + uid}) == {"code": 0, "nodes": {}}
    data = refused(admin, "manage_job_tickets", {"id": "j" + uid, "tickets": []})
    assert data["code"] == "job"


# -- jobs that run (events spec §4.5, §8.2, §12) ---------------------------------------------------

@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ConductorProcess, Api]]:
    with satellite_node(tmp_path_factory.mktemp("jobs-spec"), env={"SUNDIAL_secret_key": "jobs-spec-key"}) as pair:
        yield pair


def finished(api: Api, job_id: str, timeout: float = 45) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        job = api.ok("get_job", {"id": job_id})["job"]
        return job if job.get("final") else None
    return dict(wait(done, timeout, f"job {job_id} to finish"))


def test_finished_job_tags_and_completed_job_edits(node: tuple[ConductorProcess, Api], uid: str) -> None:
    """§4.5 step 7: `_success` then `_last` (not retried); tags and tickets replaced as given;
    the log download is named `xyOps-Job-Log-<id>.txt`."""
    _, api = node
    api.ok("create_event", shell_event(uid, tags=["important"]))
    job_id = api.ok("run_event", {"id": "e" + uid})["id"]
    job = finished(api, job_id)
    assert job["code"] == 0 and job["tags"] == ["important", "_success", "_last"]
    api.ok("manage_job_tags", {"id": job_id, "tags": ["flag"]})
    api.ok("manage_job_tickets", {"id": job_id, "tickets": ["t" + uid]})
    job = api.ok("get_job", {"id": job_id})
    assert job["job"]["tags"] == ["flag"] and job["job"]["tickets"] == ["t" + uid]
    resp = api.http.get("/api/app/download_job_log/v1", params={"id": job_id, "t": job["token"]})
    assert resp.status_code == 200 and resp.text == "hello\n"
    assert resp.headers["content-disposition"] == f"attachment; filename=xyOps-Job-Log-{job_id}.txt"


def test_retried_attempt_is_tagged_retried_and_the_last_one_last(node: tuple[ConductorProcess, Api], uid: str) -> None:
    _, api = node
    api.ok("create_event", shell_event(uid, params={"script": "#!/bin/sh\nexit 4\n"},
                                       limits=[{"type": "retry", "enabled": True, "amount": 1}]))
    first = finished(api, api.ok("run_event", {"id": "e" + uid})["id"])
    assert first["retried"] is True and first["tags"] == ["_error", "_retried"]
    second = finished(api, first["jobs"][0]["id"])
    assert second["retry_count"] == 1 and second["tags"] == ["_error", "_last"]


def test_log_limit_message_uses_xyops_size_words(node: tuple[ConductorProcess, Api], uid: str) -> None:
    """§8.2: "Job output size has exceeded maximum limit of 1 K." for a 1024-byte log limit."""
    _, api = node
    script = "#!/bin/sh\nhead -c 3000 /dev/zero | tr '\\0' 'x'\necho\nsleep 20\n"
    api.ok("create_event", shell_event(uid, params={"script": script},
                                       limits=[{"type": "log", "enabled": True, "amount": 1024, "abort": True}]))
    job = finished(api, api.ok("run_event", {"id": "e" + uid})["id"])
    assert job["code"] == "abort"
    assert job["description"] == "Job output size has exceeded maximum limit of 1 K."


def test_system_tags_fire_no_tag_conditions(node: tuple[ConductorProcess, Api], uid: str) -> None:
    """§4.5: completion conditions (step 6) fire before the system tags are added (step 7), so
    `tag:important` fires and `tag:_success` / `tag:_last` never do."""
    _, api = node
    api.ok("create_event", shell_event(uid + "a"))
    api.ok("create_event", shell_event(uid + "b"))
    actions = [{"type": "run_event", "enabled": True, "condition": "tag:important", "event_id": "e" + uid + "a"},
               {"type": "run_event", "enabled": True, "condition": "tag:_success", "event_id": "e" + uid + "b"},
               {"type": "run_event", "enabled": True, "condition": "tag:_last", "event_id": "e" + uid + "b"}]
    api.ok("create_event", shell_event(uid, tags=["important"], actions=actions))
    job_id = api.ok("run_event", {"id": "e" + uid})["id"]
    finished(api, job_id)
    children = wait(lambda: api.ok("get_job", {"id": job_id})["job"].get("jobs"), 30, "the action's child job")
    assert [c["reason"] for c in children] == ["action"]
    assert finished(api, children[0]["id"])["event"] == "e" + uid + "a"
    assert api.ok("search_jobs", {"query": f"event:e{uid}b"})["list"]["length"] == 0


def test_retry_that_succeeds_carries_no_error_tag(node: tuple[ConductorProcess, Api], uid: str, tmp_path) -> None:
    """§8.4/§4.5: the retry copies the job's tags, but the system tags describe each attempt."""
    _, api = node
    flag = tmp_path / "failed-once"
    script = f"#!/bin/sh\nif [ -f {flag} ]; then exit 0; fi\ntouch {flag}\nexit 4\n"
    api.ok("create_event", shell_event(uid, tags=["important"], params={"script": script},
                                       limits=[{"type": "retry", "enabled": True, "amount": 1}]))
    first = finished(api, api.ok("run_event", {"id": "e" + uid})["id"])
    assert first["tags"] == ["important", "_error", "_retried"]
    second = finished(api, first["jobs"][0]["id"])
    assert second["code"] == 0 and second["tags"] == ["important", "_success", "_last"]


def test_skip_delay_and_notify_me_need_an_active_job(node: tuple[ConductorProcess, Api], uid: str) -> None:
    """§12: both act on live jobs only; a finished job is `job` "Job not found: <id>"."""
    _, api = node
    api.ok("create_event", shell_event(uid))
    job_id = api.ok("run_event", {"id": "e" + uid})["id"]
    finished(api, job_id)
    for verb in ("job_skip_delay", "job_toggle_notify_me"):
        assert api.call(verb, {"id": job_id}) == {"code": "job", "description": f"Job not found: {job_id}"}
