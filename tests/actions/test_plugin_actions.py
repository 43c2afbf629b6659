"""Action plugins (type `action`) run by the conductor, written from plugins-and-wire-protocol §4.2.

A real plugin script (Python, run by the test's interpreter) reads its STDIN line and answers
by its `mode` param: success with facts about what it received, a failing exit, garbage, a
plugin-chosen error code, or a hang. No satellite runs, so every job ends as `abort` and fires
`complete`, which is when the action runs. Secret values never appear in a job record.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hook_receivers import wait_for

from harness import Api, ConductorProcess, login

SECRET = "s3cr3t-action-value"
SCRIPT = r'''
import hashlib, json, os, sys, time
doc = json.loads(sys.stdin.readline())
mode = doc["params"].get("mode")
digest = lambda v: hashlib.sha256(str(v).encode()).hexdigest()[:16]
if mode == "ok":
    facts = {"xy": doc["xy"], "type": doc["type"], "condition": doc["condition"], "job": doc["job"]["id"],
             "event": doc["event"]["title"], "env_in_doc": "env" in doc,
             "base_ok": os.environ.get("XYOPS_BASE_URL") == doc["base_url"],
             "secret_stdin": digest(doc["secrets"].get("PLUG_TOKEN")),
             "secret_env": digest(os.environ.get("OTHER_TOKEN")),
             "param_over_secret": os.environ.get("PLUG_TOKEN"), "greet": os.environ.get("greet"),
             "dashed": os.environ.get("my_key"), "mark": os.environ.get("CONDUCTOR_MARK"),
             "own": sorted(k for k in os.environ if k.startswith(("SUNDIAL_", "XYOPS_"))),
             "xyops": "XYOPS" in os.environ, "cwd": os.getcwd()}
    print("working... token is " + doc["secrets"]["PLUG_TOKEN"])
    print(json.dumps({"xy": 1, "code": 0, "description": "ran for " + doc["job"]["id"],
                      "details": "FACTS " + json.dumps(facts)}))
elif mode == "fail":
    sys.stderr.write("boom: disk on fire\nsecond line\n")
    sys.exit(3)
elif mode == "garbage":
    print("this is not json")
elif mode == "code":
    print(json.dumps({"xy": 1, "code": "warning", "description": "plugin says no"}))
elif mode == "plain":
    print(json.dumps({"answer": 42}))
elif mode == "hang":
    open(doc["params"]["pidfile"], "w").write(str(os.getpid()))
    time.sleep(120)
'''


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home: Path = tmp_path_factory.mktemp("plugin-actions")
    workdir = home / "work"
    workdir.mkdir()
    conductor = ConductorProcess(home=home / "home", env={"CONDUCTOR_MARK": "m1", "SUNDIAL_debug_level": "6"}).start()
    admin = login(conductor.url, "admin", "admin")
    common = {"type": "action", "command": sys.executable, "script": SCRIPT, "cwd": str(workdir)}
    admin.ok("create_plugin", {"id": "actplug", "title": "Action plugin", "timeout": 20, **common})
    admin.ok("create_plugin", {"id": "slowplug", "title": "Slow plugin", "timeout": 1, **common})
    admin.ok("create_plugin", {"id": "offplug", "title": "Disabled plugin", "enabled": False, **common})
    admin.ok("create_secret", {"title": "Plugin secret", "plugins": ["actplug"],
                               "fields": [{"name": "PLUG_TOKEN", "value": SECRET},
                                          {"name": "OTHER_TOKEN", "value": SECRET + "-2"}]})
    yield {"admin": admin, "conductor": conductor, "workdir": workdir}
    admin.close()
    conductor.cleanup()


def run_action(admin: Api, uid: str, action: dict[str, Any]) -> dict[str, Any]:
    """An event whose one `complete` action is `action`; returns the job once that action has a result."""
    admin.ok("create_event", {
        "id": uid, "title": f"Plugin {uid}", "enabled": True, "category": "general", "plugin": "shellplug",
        "targets": ["main"], "algo": "random", "params": {"script": "true"},
        "triggers": [{"type": "manual", "enabled": True}],
        "actions": [{"enabled": True, "condition": "complete", **action}]})
    job_id = admin.ok("run_event", {"id": uid})["id"]

    def settled() -> dict[str, Any] | None:
        job = admin.ok("get_job", {"id": job_id})["job"]
        return job if job.get("final") and "code" in job["actions"][0] else None

    job = wait_for(settled, 30, f"the action of job {job_id}")
    admin.ok("delete_event", {"id": uid})
    return job


def plugin_action(mode: str, plugin_id: str = "actplug", **params: Any) -> dict[str, Any]:
    return {"type": "plugin", "plugin_id": plugin_id, "params": {"mode": mode, **params}}


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def test_success_sees_job_secrets_params_and_env(world: dict[str, Any], uid: str) -> None:
    job = run_action(world["admin"], uid, plugin_action("ok", greet="hi $CONDUCTOR_MARK", PLUG_TOKEN="from-param",
                                                         **{"my-key": 7, "nested": {"a": 1}}))
    result = job["actions"][0]
    assert result["code"] == 0 and result["description"] == f"ran for {job['id']}"
    facts = json.loads(result["details"].split("FACTS ", 1)[1].splitlines()[0])
    assert facts == {
        "xy": 1, "type": "action", "condition": "complete", "job": job["id"], "event": f"Plugin {uid}",
        "env_in_doc": False, "base_ok": True, "secret_stdin": digest(SECRET), "secret_env": digest(SECRET + "-2"),
        "param_over_secret": "from-param", "greet": "hi m1", "dashed": "7", "mark": "m1",
        "own": ["XYOPS_BASE_URL"], "xyops": True, "cwd": str(world["workdir"])}
    assert "### Plugin Output" in result["details"] and "working... token is (REDACTED)" in result["details"]
    assert SECRET not in json.dumps(job)


def test_failing_exit_is_a_plugin_error(world: dict[str, Any], uid: str) -> None:
    result = run_action(world["admin"], uid, plugin_action("fail"))["actions"][0]
    assert result["code"] == "plugin"
    assert result["description"] == "Error: Plugin exited with code 3: boom: disk on fire"
    assert "### Plugin STDERR" in result["details"] and "second line" in result["details"]


def test_garbage_output_is_a_json_parse_error(world: dict[str, Any], uid: str) -> None:
    result = run_action(world["admin"], uid, plugin_action("garbage"))["actions"][0]
    assert result["code"] == "plugin" and "JSON Parse Error" in result["description"]
    assert "this is not json" in result["details"]


def test_plugin_chosen_code_and_plain_json(world: dict[str, Any], uid: str) -> None:
    result = run_action(world["admin"], uid, plugin_action("code"))["actions"][0]
    assert (result["code"], result["description"]) == ("warning", "plugin says no")
    result = run_action(world["admin"], uid + "p", plugin_action("plain"))["actions"][0]
    assert (result["code"], result["description"]) == (0, "Successfully ran Action Plugin")
    assert '{"answer": 42}' in result["details"]


def test_hang_times_out_and_leaves_no_process(world: dict[str, Any], uid: str, tmp_path: Path) -> None:
    pidfile = tmp_path / "hang.pid"
    result = run_action(world["admin"], uid, plugin_action("hang", "slowplug", pidfile=str(pidfile)))["actions"][0]
    assert result["code"] == "plugin" and result["description"] == "Error: Plugin timed out after 1 seconds"
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    admin = world["admin"]
    assert admin.ok("ping")["code"] == 0  # the conductor carries on
    assert run_action(admin, uid + "n", plugin_action("code"))["actions"][0]["code"] == "warning"


def test_unusable_plugins_fail_clearly(world: dict[str, Any], uid: str) -> None:
    admin = world["admin"]
    result = run_action(admin, uid, plugin_action("ok", "offplug"))["actions"][0]
    assert (result["code"], result["description"]) == ("plugin", "Error: Action Plugin is disabled: offplug")
    admin.ok("create_plugin", {"id": uid, "title": "Goes away", "type": "action", "command": "/bin/true"})
    admin.ok("create_event", {
        "id": uid + "g", "title": "Gone", "enabled": True, "category": "general", "plugin": "shellplug",
        "targets": ["main"], "algo": "random", "params": {"script": "true"},
        "triggers": [{"type": "manual", "enabled": True}],
        "actions": [{"enabled": True, "condition": "complete", "type": "plugin", "plugin_id": uid}]})
    admin.ok("delete_plugin", {"id": uid})
    job_id = admin.ok("run_event", {"id": uid + "g"})["id"]
    job = wait_for(lambda: (j := admin.ok("get_job", {"id": job_id})["job"]).get("final") and
                   "code" in j["actions"][0] and j, 30, "the action")
    assert (job["actions"][0]["code"], job["actions"][0]["description"]) == \
        ("plugin", f"Error: Action Plugin not found: {uid}")
    admin.ok("delete_event", {"id": uid + "g"})


def test_plugin_actions_are_checked_at_save(world: dict[str, Any], uid: str) -> None:
    admin = world["admin"]
    admin.ok("create_plugin", {"id": uid, "title": "Strict", "type": "action", "command": "/bin/true", "params": [
        {"id": "level", "title": "Level", "type": "text", "required": True, "regex": "^[0-9]+$"}]})
    event = {"id": uid + "e", "title": "Checked", "enabled": True, "category": "general", "plugin": "shellplug",
             "targets": ["main"], "algo": "random", "params": {"script": "true"}, "triggers": []}
    cases = [("nosuch", None, "Malformed action entry #1: not an Action Plugin: nosuch"),
             ("shellplug", None, "Malformed action entry #1: not an Action Plugin: shellplug"),
             (uid, {}, "Malformed action entry #1: Missing required parameter: Level"),
             (uid, {"level": "high"}, "Malformed action entry #1: Parameter does not match its pattern: Level"),
             (uid, "x", "Malformed action entry #1: plugin params must be an object")]
    for plugin_id, params, description in cases:
        action = {"enabled": True, "condition": "error", "type": "plugin", "plugin_id": plugin_id,
                  **({"params": params} if params is not None else {})}
        data = admin.call("create_event", {**event, "actions": [action]})
        assert (data["code"], data["description"]) == ("api", description), (plugin_id, params)
    assert admin.call("get_event", {"id": uid + "e"})["code"] != 0  # nothing was stored
    good = {"enabled": True, "condition": "error", "type": "plugin", "plugin_id": uid, "params": {"level": "3"}}
    admin.ok("create_event", {**event, "actions": [good]})
    admin.ok("delete_event", {"id": uid + "e"})


@pytest.mark.parametrize(("kind", "code", "missing"), [
    ("ticket", "ticket", "tickets"), ("store", "bucket", "storage buckets"), ("fetch", "bucket", "storage buckets")])
def test_actions_without_their_subsystem_fail_at_once(world: dict[str, Any], uid: str, kind: str, code: str,
                                                      missing: str) -> None:
    result = run_action(world["admin"], uid, {"type": kind, "bucket_id": "b1", "bucket_sync": "data",
                                              "ticket_type": "issue"})["actions"][0]
    assert result["code"] == code
    assert result["description"] == \
        f"Error: {kind} action failed: {missing} are not available in this version of Sundial"
