"""Launch and finish rules end to end (events-and-jobs.md §4.1, §6, §8.4): retries, universal
actions and limits, run-as credentials, per-server job caps, `update_job` on queued jobs and
the daily stats reset. A real conductor with its real local satellite; each test reads like
what an operator does and checks what they would see in the API.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from typing import Any

import pytest

from harness import Api, ConductorProcess, satellite_node
from harness import wait_for as wait

LOCAL = "local"  # the server id of the conductor's own satellite


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ConductorProcess, Api]]:
    with satellite_node(tmp_path_factory.mktemp("rules"), env={"SUNDIAL_secret_key": "rules-test-key"}) as pair:
        yield pair


def shell_event(api: Api, eid: str, script: str, **extra: Any) -> str:
    fields = {"id": eid, "title": "Rules " + eid, "enabled": True, "category": "general", "plugin": "shellplug",
              "targets": ["main"], "algo": "random", "params": {"script": script},
              "triggers": [{"type": "manual", "enabled": True}], **extra}
    api.ok("create_event", fields)
    return eid


def run(api: Api, eid: str, **params: Any) -> str:
    return str(api.ok("run_event", {"id": eid, **params})["id"])


def job(api: Api, job_id: str) -> dict[str, Any]:
    return dict(api.ok("get_job", {"id": job_id})["job"])


def final(api: Api, job_id: str, timeout: float = 60) -> dict[str, Any]:
    return wait(lambda: (lambda j: j if j.get("final") else None)(job(api, job_id)), timeout, f"job {job_id} to end")


def state_of(api: Api, job_id: str, state: str) -> bool:
    return job(api, job_id).get("state") == state


def retry_chain(api: Api, first: str) -> list[dict[str, Any]]:
    """The job and each retry after it, every one finished."""
    chain = [final(api, first)]
    while chain[-1].get("retried"):
        retries = [c["id"] for c in chain[-1].get("jobs") or [] if c.get("reason") == "retry"]
        assert len(retries) == 1, chain[-1].get("jobs")
        chain.append(final(api, retries[0]))
    return chain


def meta(record: dict[str, Any]) -> str:
    return "\n".join(str(row.get("msg")) for row in record.get("activity") or [])


# -- retries (§8.4) ------------------------------------------------------------------------------

def test_an_abort_that_allows_retry_is_retried(node, uid):
    """No server matches: the abort allows a retry, so a retry limit of 2 gives three attempts."""
    _, api = node
    eid = shell_event(api, uid, "#!/bin/sh\ntrue\n", targets=["no_such_group"],
                      limits=[{"type": "retry", "enabled": True, "amount": 2}])
    chain = retry_chain(api, run(api, eid))
    assert len(chain) == 3
    for attempt, record in enumerate(chain):
        assert record["code"] == "abort" and record["description"] == "No available servers matching targets."
        assert record.get("retry_count", 0) == attempt and "retry_ok" not in record
    assert [r.get("retry_prev") for r in chain[1:]] == [chain[0]["id"], chain[1]["id"]]
    assert all(r["retried"] and "_retried" in r["tags"] for r in chain[:2]) and not chain[2].get("retried")


def test_a_limit_abort_is_retried_but_a_manual_abort_is_not(node, uid):
    _, api = node
    eid = shell_event(api, uid, "#!/bin/sh\nsleep 3\n",
                      limits=[{"type": "time", "enabled": True, "duration": 1, "abort": True},
                              {"type": "retry", "enabled": True, "amount": 1}])
    chain = retry_chain(api, run(api, eid))
    assert len(chain) == 2 and "elapsed time has exceeded" in chain[0]["description"]
    assert chain[1]["retry_count"] == 1 and chain[1]["retry_prev"] == chain[0]["id"]
    assert chain[1]["code"] == 0, "the retry carries the fired limit, which never fires twice (spec §14)"

    manual = run(api, eid)
    wait(lambda: state_of(api, manual, "active"), 30, "the job to run")
    api.ok("abort_job", {"id": manual})
    aborted = final(api, manual)
    assert aborted["description"] == "Manually aborted by user: admin"
    assert not aborted.get("retried") and not aborted.get("jobs")


def test_a_retry_is_held_by_day_limits_unless_the_run_was_manual(node, uid):
    """Retries take the launch path: an automatic job whose `day` limit filled up meanwhile
    ends without a retry (and says why); a manual run is never held."""
    _, api = node
    limited = shell_event(api, uid, "#!/bin/sh\nexit 3\n",
                          limits=[{"type": "retry", "enabled": True, "amount": 1},
                                  {"type": "day", "enabled": True, "condition": "start", "amount": 1}])
    parent = shell_event(api, uid + "p", "#!/bin/sh\ntrue\n", actions=[
        {"enabled": True, "condition": "complete", "type": "run_event", "event_id": limited}])
    parent_id = run(api, parent)
    parent_job = wait(lambda: (lambda j: j if j.get("jobs") else None)(job(api, parent_id)), 60,
                      "the parent to launch its child")
    child = final(api, parent_job["jobs"][0]["id"])
    assert child["source"] == "action" and child["code"] == 3 and not child.get("retried")
    assert "Job was not retried: Daily limit has been reached for event: start (1/day)" in meta(child)

    manual = retry_chain(api, run(api, limited))
    assert len(manual) == 2 and manual[1]["source"] == "user" and manual[1]["code"] == 3


# -- universal actions and limits (§4.1 step 4) --------------------------------------------------

UNIVERSAL_LIMITS = {"default": [{"type": "time", "enabled": True, "duration": 1, "abort": True},
                                {"type": "log", "enabled": False, "amount": 10}], "workflow": []}
UNIVERSAL_ACTIONS = {"default": [{"enabled": True, "condition": "error", "type": "snapshot"},
                                 {"enabled": True, "condition": "error", "type": "tag", "tags": ["flag"]}],
                     "workflow": []}


@pytest.fixture
def universal(node) -> Iterator[None]:
    _, api = node
    api.ok("admin_update_config", {"job_universal_limits": UNIVERSAL_LIMITS,
                                   "job_universal_actions": UNIVERSAL_ACTIONS})
    yield
    api.ok("admin_update_config", {"job_universal_limits": {"default": [], "workflow": []},
                                   "job_universal_actions": {"default": [], "workflow": []}})


def test_universal_actions_and_limits_apply_to_every_job_after_the_categorys(node, uid, universal):
    _, api = node
    api.ok("create_category", {"id": uid, "title": "Cat " + uid, "enabled": True,
                               "limits": [{"type": "retry", "enabled": True, "amount": 0}]})
    eid = shell_event(api, uid, "#!/bin/sh\nsleep 3\n", category=uid)
    record = final(api, run(api, eid))
    assert record["code"] == "abort" and "elapsed time has exceeded" in record["description"]
    assert [(lim["type"], lim.get("source")) for lim in record["limits"]] == [
        ("retry", "category"), ("time", "universal")], "enabled items only, category first"
    by_type = {a["type"]: a for a in record["actions"]}
    assert by_type["snapshot"]["source"] == "universal" and by_type["snapshot"]["code"] == "snapshot"
    assert "flag" in record["tags"]

    test_run = final(api, run(api, eid, test=True))
    assert test_run["code"] == 0 and test_run["limits"] == [] and test_run["actions"] == []
    with_limits = final(api, run(api, eid, test=True, test_limits=True))
    assert with_limits["code"] == "abort" and [lim["source"] for lim in with_limits["limits"]] == [
        "category", "universal"] and with_limits["actions"] == []


def test_universal_settings_ship_empty_and_refuse_a_wrong_shape(node):
    _, api = node
    config = api.ok("admin_get_config")["config"]
    assert config["job_universal_actions"] == {"default": [], "workflow": []}
    assert config["job_universal_limits"] == {"default": [], "workflow": []}
    bad = api.call("admin_update_config", {"job_universal_limits": {"default": "time"}})
    assert bad["code"] == "api" and "job_universal_limits.default" in bad["description"]
    assert api.ok("admin_get_config")["config"]["job_universal_limits"] == {"default": [], "workflow": []}


# -- run-as credentials (§4.1 step 8) ------------------------------------------------------------

NO_USER = "sundial_no_such_user"


@pytest.fixture
def default_uid(node) -> Iterator[None]:
    _, api = node
    api.ok("admin_update_config", {"default_plugin_credentials.event.uid": NO_USER})
    yield
    api.ok("admin_update_config", {"default_plugin_credentials.event.uid": ""})


def id_plugin(api: Api, pid: str, **extra: Any) -> str:
    api.ok("create_plugin", {"id": pid, "title": "Who " + pid, "type": "event", "enabled": True,
                             "command": "/bin/sh", "script": "#!/bin/sh\nid -un\necho '{\"xy\":1,\"code\":0}'\n",
                             **extra})
    api.ok("create_event", {"id": pid, "title": "Who " + pid, "enabled": True, "category": "general",
                            "plugin": pid, "targets": ["main"], "algo": "random",
                            "triggers": [{"type": "manual", "enabled": True}]})
    return pid


def test_jobs_run_as_the_plugin_user_else_the_configured_default(node, uid, default_uid):
    _, api = node
    me = getpass.getuser()
    default = final(api, run(api, shell_event(api, uid, "#!/bin/sh\ntrue\n")))
    assert default["uid"] == NO_USER and default["gid"] == ""
    assert default["code"] and default["description"] == f"Plugin Error: User does not exist: {NO_USER}"

    own = final(api, run(api, id_plugin(api, uid + "own", uid=me)))
    assert own["uid"] == me and own["code"] == 0 and own["output"].strip() == me

    locked = final(api, run(api, id_plugin(api, uid + "lck", params=[
        {"id": "uid", "title": "Run as", "type": "text", "value": me, "locked": True}])))
    assert locked["uid"] == me and locked["code"] == 0, "a locked uid param overrides the default"

    unlocked = final(api, run(api, id_plugin(api, uid + "unl", params=[
        {"id": "uid", "title": "Run as", "type": "text", "value": me}])))
    assert unlocked["uid"] == NO_USER and "User does not exist" in unlocked["description"]


def test_an_unknown_group_fails_the_job_clearly(node, uid):
    _, api = node
    record = final(api, run(api, id_plugin(api, uid, gid="sundial_no_such_group")))
    assert record["gid"] == "sundial_no_such_group"
    assert record["description"] == "Plugin Error: Group does not exist: sundial_no_such_group"


# -- per-server job cap (§6 step 5) --------------------------------------------------------------

@pytest.fixture
def capped(node) -> Iterator[None]:
    _, api = node
    api.ok("update_server", {"id": LOCAL, "maxJobs": 1})
    yield
    api.ok("update_server", {"id": LOCAL, "maxJobs": 0})


def test_a_server_at_its_max_jobs_takes_no_more(node, uid, capped):
    proc, api = node
    gate = proc.home / f"{uid}.go"
    script = f"#!/bin/sh\nwhile [ ! -e {gate} ]; do sleep 0.05; done\n"
    limits = [{"type": "job", "enabled": True, "amount": 5}, {"type": "queue", "enabled": True, "amount": 5}]
    first = run(api, shell_event(api, uid, script, limits=limits))
    wait(lambda: state_of(api, first, "active"), 30, "the first job to run")
    other = run(api, shell_event(api, uid + "b", script, limits=limits))  # another event, same server
    wait(lambda: state_of(api, other, "queued"), 30, "the second job to queue")
    assert "No available servers matching targets; job was queued." in meta(job(api, other))
    gate.touch()
    one, two = final(api, first), final(api, other)
    assert one["code"] == 0 and two["code"] == 0 and two["started"] >= one["completed"] - 0.05


# -- update_job on a queued job ------------------------------------------------------------------

def test_update_job_refiles_a_queued_job_by_priority_and_type(node, uid):
    proc, api = node
    gate = proc.home / f"{uid}.go"
    eid = shell_event(api, uid, f"#!/bin/sh\nwhile [ ! -e {gate} ]; do sleep 0.05; done\n",
                      limits=[{"type": "job", "enabled": True, "amount": 1},
                              {"type": "queue", "enabled": True, "amount": 10}])
    blocker = run(api, eid)
    wait(lambda: state_of(api, blocker, "active"), 30, "the first job to run")
    q1, q2, q3 = run(api, eid), run(api, eid), run(api, eid)
    wait(lambda: all(state_of(api, j, "queued") for j in (q1, q2, q3)), 30, "the queue to fill")

    api.ok("update_job", {"id": q3, "priority": True})
    assert [job(api, j)["position"] for j in (q3, q1, q2)] == [1, 2, 3], "priority jobs leave first"

    api.ok("update_job", {"id": q2, "type": "urgent"})  # its own queue, where nothing runs yet
    wait(lambda: state_of(api, q2, "active"), 30, "the re-typed job to start beside the blocker")
    assert job(api, blocker)["state"] == "active"
    assert [job(api, j)["position"] for j in (q3, q1)] == [1, 2]

    gate.touch()
    done = {j: final(api, j) for j in (blocker, q3, q1, q2)}
    assert done[q3]["started"] < done[q1]["started"], "the re-prioritised job ran before the older one"


# -- daily stats reset ---------------------------------------------------------------------------

def test_admin_reset_daily_stats_starts_a_new_day_of_counts(node, uid):
    proc, api = node
    eid = shell_event(api, uid, "#!/bin/sh\ntrue\n")
    assert final(api, run(api, eid))["code"] == 0
    before = api.ok("dash_stats")["stats"]["day"]
    assert before["events"][eid]["job_complete"] == 1

    anonymous = Api(proc.url)
    assert anonymous.call("admin_reset_daily_stats")["code"] != 0
    anonymous.close()
    assert api.ok("dash_stats")["stats"]["day"]["events"][eid]["job_complete"] == 1, "a refused reset changes nothing"

    api.ok("admin_reset_daily_stats")
    after = api.ok("dash_stats")["stats"]["day"]
    assert eid not in after.get("events", {}) and after["timeStart"] >= before["timeStart"]

    proc.stop()
    proc.start()
    wait(lambda: api.ok("get_active_servers")["rows"], 60, "the local satellite after the restart")
    assert eid not in api.ok("dash_stats")["stats"]["day"].get("events", {}), "the reset is stored"
