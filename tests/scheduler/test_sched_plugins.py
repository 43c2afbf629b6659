"""Scheduler (trigger) plugins in a real conductor on a fast clock, with a real plugin child.

The plugin is a small Python script written from the spec (triggers-and-scheduler §4): it reads
the one STDIN line and prints its answer as the last STDOUT line. Its `mode` param picks how it
behaves: approve (with data and a file), refuse, garbage output, or hang past its timeout.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_sched_service import BASE, FAST, START_TIMEOUT, read_tables

from harness import Api, ConductorProcess, login

pytestmark = pytest.mark.timeout(600)
TOKEN = "s3cr3t-plugin-token-value"

PLUGIN_SCRIPT = r'''
import json, os, sys, time
request = json.loads(sys.stdin.readline())
mode = request["items"][0]["params"]["mode"]
print("plugin log line, not the answer")
if mode == "hang":
    print("token in my env: " + os.environ.get("PLUGIN_TOKEN", "none"), flush=True)
    sys.stderr.write("token on stdin: " + request["secrets"].get("PLUGIN_TOKEN", "none") + "\n")
    sys.stderr.flush()
    time.sleep(60)
if mode == "wait":  # note each item asked, then block until the test creates "release"
    with open("asked.log", "a") as handle:
        handle.writelines(f"{item['job']['event']} {item['now']}\n" for item in request["items"])
    while not os.path.exists("release"):
        time.sleep(0.05)
    print(json.dumps({"xy": 1, "items": [True] * len(request["items"])}))
    sys.exit(0)
if mode == "garbage":
    print("this is not json")
    sys.exit(0)
answers = []
for item in request["items"]:
    if mode == "refuse":
        answers.append(False)
        continue
    with open("plugin-out.txt", "w") as handle:
        handle.write("made by the plugin for " + item["job"]["event"])
    answers.append({"launch": True, "files": ["plugin-out.txt"], "data": {
        "seen_now": item["now"], "seen_event": item["job"]["event"], "dargs_minute": item["dargs"]["minute"],
        "request_type": request["type"], "base_url": request["base_url"], "xyops_env": os.environ.get("XYOPS"),
        "secret_leak": os.environ.get("XYOPS_SECRET_THING") or os.environ.get("SUNDIAL_SECRET_THING")}})
print(json.dumps({"xy": 1, "items": answers}))
'''


@pytest.fixture(scope="module")
def fast(tmp_path_factory) -> Iterator[tuple[ConductorProcess, Api, Path]]:  # type: ignore[no-untyped-def]
    env = {**FAST, "XYOPS_SECRET_THING": "must not reach plugins", "SUNDIAL_SECRET_THING": "nor this"}
    proc = ConductorProcess(home=tmp_path_factory.mktemp("plug"), env=env,
                            settings={"tz": "UTC"}).start(timeout=START_TIMEOUT)
    api = login(proc.url, "admin", "admin")
    yield proc, api, tmp_path_factory.mktemp("plugin-cwd")
    api.close()
    proc.cleanup()


def make_plugin(api: Api, cwd: Path, **extra: Any) -> str:
    plugin = {"title": "Decider", "type": "scheduler", "command": sys.executable, "script": PLUGIN_SCRIPT,
              "cwd": str(cwd), "params": [{"id": "mode", "title": "Mode", "type": "text", "value": "approve",
                                           "required": True}], **extra}
    return str(api.ok("create_plugin", plugin)["plugin"]["id"])


def make_event(api: Api, title: str, plugin_id: str, mode: str) -> str:
    triggers = [{"type": "schedule", "enabled": True},
                {"type": "plugin", "enabled": True, "plugin_id": plugin_id, "params": {"mode": mode}}]
    return str(api.ok("create_event", {"title": title, **BASE, "triggers": triggers})["event"]["id"])


def jobs_of(api: Api, event_id: str) -> list[dict[str, Any]]:
    return list(api.ok("search_jobs", {"query": f"event:{event_id}", "limit": 100})["rows"])


def wait_for(check, seconds: float = 60.0) -> Any:  # type: ignore[no-untyped-def]
    deadline = time.time() + seconds
    while time.time() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.25)
    raise AssertionError("condition not reached in time")


def test_plugin_trigger_is_refused_at_save_unless_it_names_a_scheduler_plugin_with_valid_params(fast):
    _, admin, cwd = fast
    plugin_id = make_plugin(admin, cwd)
    cases = [("shellplug", {"mode": "approve"}, "Malformed trigger entry #2: Scheduler Plugin not found: shellplug"),
             ("nope", {}, "Malformed trigger entry #2: Scheduler Plugin not found: nope"),
             (plugin_id, {"mode": ""}, "Malformed trigger entry #2: Missing required parameter: Mode")]
    for target, params, message in cases:
        triggers = [{"type": "schedule", "enabled": True},
                    {"type": "plugin", "enabled": True, "plugin_id": target, "params": params}]
        data = admin.call("create_event", {"title": "Bad plugin trigger", **BASE, "triggers": triggers})
        assert data == {"code": "api", "description": message}
    assert not [e for e in admin.ok("get_events")["rows"] if e["title"] == "Bad plugin trigger"]


def test_approved_launches_carry_the_plugins_data_and_files_and_use_their_slot_once(fast):
    proc, admin, cwd = fast
    plugin_id = make_plugin(admin, cwd)
    event_id = make_event(admin, "approved by plugin", plugin_id, "approve")
    rows = wait_for(lambda: [j for j in jobs_of(admin, event_id) if j.get("final")][:2] or None)
    job = admin.ok("get_job", {"id": rows[0]["id"]})["job"]
    assert job["source"] == "plugin" and job["splugin"] == plugin_id
    data = job["input"]["data"]
    assert data["seen_event"] == event_id and data["request_type"] == "trigger"
    assert data["seen_now"] == job["now"] and data["dargs_minute"] == time.gmtime(job["now"]).tm_min
    assert data["xyops_env"] and data["base_url"].startswith("http://localhost:")
    assert data["secret_leak"] is None  # the conductor's own settings never reach a plugin
    (stored,) = job["input"]["files"]
    assert stored["plugin"] == plugin_id and stored["filename"] == "plugin-out.txt"
    assert stored["path"].startswith(f"files/plugins/{plugin_id}/") and stored["size"] > 0
    body = httpx.get(f"{proc.url}/{stored['path']}").text
    assert body == f"made by the plugin for {event_id}"
    admin.ok("update_event", {"id": event_id, "enabled": False})
    slot_rows, job_rows, _ = read_tables(proc)
    mine = [j for j in job_rows if j["event"] == event_id]
    assert mine and all(j["source"] == "plugin" for j in mine)
    assert not [k for k, n in Counter(int(j["now"]) for j in mine).items() if n > 1], "a slot launched twice"
    assert {j["id"] for j in mine} <= {r["job_id"] for r in slot_rows if r["event_id"] == event_id}


def test_refusing_garbage_and_hanging_plugins_launch_nothing_and_the_loop_goes_on(fast):
    proc, admin, cwd = fast
    refuse = make_event(admin, "refused", make_plugin(admin, cwd), "refuse")
    garbage = make_event(admin, "garbage", make_plugin(admin, cwd), "garbage")
    hanger = make_plugin(admin, cwd, timeout=1)
    admin.ok("create_secret", {"title": "Plugin token", "plugins": [hanger],
                               "fields": [{"name": "PLUGIN_TOKEN", "value": TOKEN}]})
    hang = make_event(admin, "hang", hanger, "hang")
    plain = str(admin.ok("create_event", {"title": "plain", **BASE,
                                          "triggers": [{"type": "schedule", "enabled": True}]})["event"]["id"])

    def warned() -> list[dict[str, Any]] | None:
        rows = admin.ok("search_activity", {"query": "action:warning", "limit": 50})["rows"]
        texts = " | ".join(r["description"] for r in rows)
        return rows if "JSON Parse Error" in texts and "timed out after 1 seconds" in texts else None

    rows = wait_for(warned)
    garbage_row = next(r for r in rows if "JSON Parse Error" in r["description"])
    assert "this is not json" in garbage_row["stdout"]
    hang_row = next(r for r in rows if "timed out after 1 seconds" in r["description"])
    assert "plugin log line, not the answer" in hang_row["stdout"]  # what it printed before the kill
    assert "token in my env: (REDACTED)" in hang_row["stdout"] and "token on stdin: (REDACTED)" in hang_row["stderr"]
    assert TOKEN not in str(rows) and TOKEN not in proc.log_text("Scheduler")
    before = len(jobs_of(admin, plain))
    wait_for(lambda: len(jobs_of(admin, plain)) > before + 2)  # the minute loop kept going after the hang
    for event_id in (refuse, garbage, hang, plain):
        admin.ok("update_event", {"id": event_id, "enabled": False})
    assert not jobs_of(admin, refuse) and not jobs_of(admin, garbage) and not jobs_of(admin, hang)
    assert admin.ok("get_scheduler_status")["ticks"][-1]["minute"] > 0
    assert "Scheduler plugin" in proc.log_text("Scheduler")


def test_a_slow_plugin_never_delays_the_next_minutes_and_its_launches_come_once_it_answers(fast, tmp_path):
    _, admin, _ = fast
    slow = make_plugin(admin, tmp_path)
    waiting = make_event(admin, "waits for its plugin", slow, "wait")
    plain = str(admin.ok("create_event", {"title": "plain beside a slow plugin", **BASE,
                                          "triggers": [{"type": "schedule", "enabled": True}]})["event"]["id"])
    wait_for(lambda: (tmp_path / "asked.log").exists())
    before = len(jobs_of(admin, plain))
    wait_for(lambda: len(jobs_of(admin, plain)) >= before + 4)  # minutes go on while the plugin decides
    status = admin.ok("get_scheduler_status")
    assert status["plugins"]["deciding"] == [slow]
    assert not jobs_of(admin, waiting)
    asked_first = (tmp_path / "asked.log").read_text().splitlines()
    (tmp_path / "release").touch()
    wait_for(lambda: len(jobs_of(admin, waiting)) > len(asked_first))  # its next run took the minutes that waited
    admin.ok("update_event", {"id": waiting, "enabled": False})
    admin.ok("update_event", {"id": plain, "enabled": False})

    def settled() -> tuple[list[list[str]], Counter[int]] | None:
        asked = [line.split() for line in (tmp_path / "asked.log").read_text().splitlines()]
        launched = Counter(int(job["now"]) for job in jobs_of(admin, waiting))
        return (asked, launched) if set(launched) == {int(now) for _, now in asked} else None

    asked, launched = wait_for(settled)  # every minute asked about launched ...
    assert all(count == 1 for count in launched.values()), "a slot launched twice"  # ... once
    assert len(asked) == len({now for _, now in asked})  # and no minute was asked about twice


def test_a_crash_while_the_plugin_decides_means_it_is_asked_again_and_launches_once(tmp_path_factory, tmp_path):
    proc = ConductorProcess(home=tmp_path_factory.mktemp("plugcrash"), env=FAST,
                            settings={"tz": "UTC"}).start(timeout=START_TIMEOUT)
    try:
        admin = login(proc.url, "admin", "admin")
        event_id = make_event(admin, "crash while deciding", make_plugin(admin, tmp_path), "wait")
        wait_for(lambda: (tmp_path / "asked.log").exists())
        proc.kill()
        (first_event, first_now), *_ = [line.split() for line in (tmp_path / "asked.log").read_text().splitlines()]
        assert first_event == event_id
        (tmp_path / "release").touch()  # the orphaned plugin child ends; its answer has nowhere to go
        proc.start(timeout=START_TIMEOUT)
        admin = login(proc.url, "admin", "admin")
        wait_for(lambda: [j for j in jobs_of(admin, event_id) if int(j["now"]) == int(first_now)])
        admin.ok("update_event", {"id": event_id, "enabled": False})
        asked = [line.split()[1] for line in (tmp_path / "asked.log").read_text().splitlines()]
        assert asked.count(first_now) == 2  # asked before the crash, and again after it
        slot_rows, job_rows, _ = read_tables(proc)
        mine = Counter(int(j["now"]) for j in job_rows if j["event"] == event_id)
        assert mine[int(first_now)] == 1 and all(n == 1 for n in mine.values())
        assert [r for r in slot_rows if r["event_id"] == event_id and r["slot"] == int(first_now)]
    finally:
        proc.cleanup()


def test_scheduler_plugin_by_hand_answers_without_launching(fast):
    _, admin, cwd = fast
    plugin_id = make_plugin(admin, cwd)
    epoch = 1_800_000_030
    reply = admin.ok("test_scheduler_plugin", {"id": plugin_id, "params": {"mode": "approve"},
                                               "timezone": "Asia/Tokyo", "epoch": epoch})
    (answer,) = reply["data"]["items"]
    assert reply["data"]["xy"] == 1 and answer["launch"] is True
    assert answer["data"]["seen_now"] == epoch - 30 and answer["data"]["request_type"] == "trigger"
    assert answer["data"]["dargs_minute"] == 0 and answer["data"]["seen_event"] == ""
    assert "plugin log line, not the answer" in reply["stdout"] and sys.executable in reply["child_cmd"]
    garbage = admin.ok("test_scheduler_plugin", {"id": plugin_id, "params": {"mode": "garbage"}})
    assert garbage["err"] is True and "JSON Parse Error" in garbage["description"]
    assert "this is not json" in garbage["stdout"]
    hanger = make_plugin(admin, cwd, timeout=1)
    admin.ok("create_secret", {"title": "Token for the test verb", "plugins": [hanger],
                               "fields": [{"name": "PLUGIN_TOKEN", "value": TOKEN}]})
    hung = admin.ok("test_scheduler_plugin", {"id": hanger, "params": {"mode": "hang"}})
    assert hung["err"] is True and "timed out after 1 seconds" in hung["description"]
    assert "token in my env: (REDACTED)" in hung["stdout"] and TOKEN not in str(hung)
    assert admin.call("test_scheduler_plugin", {"id": "shellplug"}) == {
        "code": "api", "description": "Scheduler Plugin not found: shellplug"}
    assert admin.call("test_scheduler_plugin", {"id": plugin_id, "timezone": "Mars/Base"}) == {
        "code": "api", "description": "Unknown timezone: Mars/Base"}
    assert not [j for j in admin.ok("search_jobs", {"query": "source:plugin", "limit": 100})["rows"]
                if j.get("splugin") in (plugin_id, hanger)]
