"""Jobs end to end: a real conductor, its real local satellite, real child processes.

Each test reads like what a user does: create an event, run it, watch the job, check
what they would see in `get_job` and the job log.
"""

from __future__ import annotations

import hashlib
import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import Api, ConductorProcess, login, satellite_node, wait_for

SECRET_KEY = "e2e-test-key"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ConductorProcess, Api]]:
    with satellite_node(tmp_path_factory.mktemp("e2e"), env={"SUNDIAL_secret_key": SECRET_KEY},
                        settings={"dead_job_timeout": 20}) as pair:
        yield pair


def shell_event(api: Api, eid: str, script: str, **extra: Any) -> str:
    api.ok("create_event", {"id": eid, "title": "E2E " + eid, "enabled": True, "category": "general",
                            "plugin": "shellplug", "targets": ["main"], "algo": "random",
                            "params": {"script": script}, "triggers": [{"type": "manual", "enabled": True}], **extra})
    return eid


def final(api: Api, job_id: str, timeout: float = 60) -> dict[str, Any]:
    return wait_for(lambda: (lambda j: j if j.get("final") else None)(api.ok("get_job", {"id": job_id})["job"]),
                timeout, f"job {job_id} to finish")


def run(api: Api, eid: str, **params: Any) -> str:
    return str(api.ok("run_event", {"id": eid, **params})["id"])


def test_shell_success_keeps_output_inline(node, uid):
    _, api = node
    job = final(api, run(api, shell_event(api, uid, "#!/bin/sh\necho hello-from-e2e\necho 50%\n")))
    assert job["code"] == 0 and job["state"] == "complete" and job["server"]
    assert "hello-from-e2e" in job["output"] and job["log_file_size"] > 0
    assert "_success" in job["tags"] and job["completed"] >= job["started"]
    assert job["elapsed"] >= 0 and job["event_title"] == "E2E " + uid


def test_nonzero_exit_is_an_error_with_description(node, uid):
    _, api = node
    job = final(api, run(api, shell_event(api, uid, "#!/bin/sh\necho failing >&2\nexit 3\n")))
    assert job["code"] == 3 and "3" in job["description"] and "_error" in job["tags"]
    found = api.ok("search_jobs", {"query": f"event:{uid} code:3", "limit": 5})["rows"]
    assert [j["id"] for j in found] == [job["id"]]


def test_abort_stops_the_whole_process_tree(node, uid):
    proc, api = node
    marker = proc.home / f"{uid}.pid"
    script = f"#!/bin/sh\nsleep 300 &\necho $! > {marker}\nwait\n"
    job_id = run(api, shell_event(api, uid, script))
    wait_for(lambda: marker.exists() and marker.read_text().strip(), 30, "the grandchild to start")
    grandchild = int(marker.read_text())
    wait_for(lambda: api.ok("get_job", {"id": job_id})["job"].get("state") == "active", 30, "the job to be active")
    api.ok("abort_job", {"id": job_id})
    job = final(api, job_id, 40)
    assert job["code"] == "abort" and job["description"] == "Manually aborted by user: admin"
    wait_for(lambda: not _alive(grandchild), 15, "the grandchild to die")


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_time_limit_aborts_a_long_job(node, uid):
    _, api = node
    eid = shell_event(api, uid, "#!/bin/sh\nsleep 60\n",
                      limits=[{"type": "time", "enabled": True, "duration": 2, "abort": True}])
    job = final(api, run(api, eid), 40)
    assert job["code"] == "abort" and "elapsed time has exceeded" in job["description"]
    assert job["elapsed"] < 30


def test_params_reach_the_environment(node, uid):
    _, api = node
    eid = shell_event(api, uid, '#!/bin/sh\n[ "$GREETING" = "hi there" ] || exit 5\n')
    job = final(api, run(api, eid, params={"GREETING": "hi there"}))
    assert job["code"] == 0, job.get("description")


XYOPS_STYLE_PLUGIN = r'''#!/usr/bin/env python3
import json, sys
job = json.loads(sys.stdin.readline())
print(json.dumps({"xy": 1, "progress": 0.5, "status": "halfway"}), flush=True)
print("plain log line", flush=True)
print(json.dumps({"foo": 1}), flush=True)
print(json.dumps({"xy": 1, "data": {"arr": [0, 1]}}), flush=True)
print(json.dumps({"xy": 1, "data": {"arr": [2], "who": job["params"]["who"]}}), flush=True)
print(json.dumps({"xy": 1, "push": {"tags": ["flag"]}}), flush=True)
print(json.dumps({"xy": 1, "code": 0, "description": "done by " + job["id"]}), flush=True)
'''


def test_custom_plugin_speaks_the_wire_protocol(node, uid, tmp_path):
    _, api = node
    api.ok("create_plugin", {"id": uid, "title": "Wire", "type": "event", "command": "/usr/bin/env python3",
                             "script": XYOPS_STYLE_PLUGIN,
                             "params": [{"id": "who", "title": "Who", "type": "text", "value": "world"}]})
    api.ok("create_event", {"id": uid, "title": "Wire", "enabled": True, "category": "general", "plugin": uid,
                            "targets": ["main"], "algo": "random", "triggers": [{"type": "manual", "enabled": True}]})
    job = final(api, run(api, uid))
    assert job["code"] == 0 and job["description"] == f"done by {job['id']}"
    assert job["data"] == {"arr": [0, 1, 2], "who": "world"}
    assert "flag" in job["tags"]
    assert "plain log line" in job["output"] and '{"foo":1}' in job["output"].replace(" ", "")


def test_secret_reaches_the_environment_but_not_the_record(node, uid):
    _, api = node
    value = "s3cret-" + uid
    digest = hashlib.sha256(value.encode()).hexdigest()
    eid = shell_event(api, uid, f'#!/bin/sh\n[ "$(printf %s "$TOKEN" | sha256sum | cut -c1-64)" = "{digest}" ] '
                                "|| exit 7\necho checked\n")
    api.ok("create_secret", {"id": "z" + uid, "title": "Token", "events": [eid],
                             "fields": [{"name": "TOKEN", "value": value}]})
    job = final(api, run(api, eid))
    assert job["code"] == 0, job.get("description")
    assert value not in json.dumps(job)


def test_garbage_and_floods_end_cleanly(node, uid):
    _, api = node
    script = ("#!/bin/sh\nprintf '{not json}\\n'\nprintf '{\"xy\":1,\"progress\":\"lots\"}\\n'\n"
              "head -c 3000000 /dev/zero | tr '\\0' 'x'\necho\nfor i in $(seq 1 20000); do echo line $i; done\n"
              "kill -9 $$\n")
    job = final(api, run(api, shell_event(api, uid, script)), 90)
    assert job["code"] not in (0, None) and job["state"] == "complete"
    assert job["log_file_size"] > 3_000_000
    log = api.http.get("/api/app/get_job_log/v1", params={"id": job["id"]}, headers=api.headers)
    assert log.status_code == 200 and "line 20000" in log.text
    assert api.ok("get_active_servers")["rows"]  # the satellite survived


def test_queue_limit_runs_jobs_one_at_a_time(node, uid):
    _, api = node
    eid = shell_event(api, uid, "#!/bin/sh\nsleep 1\n",
                      limits=[{"type": "job", "enabled": True, "amount": 1},
                              {"type": "queue", "enabled": True, "amount": 5}])
    ids = [run(api, eid) for _ in range(3)]
    states = [j["state"] for j in api.ok("get_active_jobs", {"event": eid})["rows"]]
    assert states.count("queued") >= 1
    jobs = [final(api, job_id, 60) for job_id in ids]
    assert all(j["code"] == 0 for j in jobs)
    spans = sorted((j["started"], j["completed"]) for j in jobs)
    assert all(later[0] >= earlier[1] - 0.05 for earlier, later in zip(spans, spans[1:], strict=False))


def test_run_event_wait_returns_the_finished_job(node, uid):
    _, api = node
    eid = shell_event(api, uid, "#!/bin/sh\necho waited\n")
    resp = api.http.post("/api/app/run_event/v1/wait", json={"id": eid}, headers=api.headers, timeout=60)
    job = resp.json()["job"]
    assert job["final"] and job["code"] == 0 and "waited" in job["output"]


def _agent_pid(proc: ConductorProcess) -> int:
    return int((proc.home / "satellite" / "pid.txt").read_text().strip())


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def test_conductor_killed_mid_job_reattaches_after_restart(tmp_path):
    proc = ConductorProcess(home=tmp_path / "crash", env={"SUNDIAL_secret_key": SECRET_KEY},
                            settings={"local_satellite.enabled": True}).start()
    agents: set[int] = set()
    try:
        api = login(proc.url, "admin", "admin")
        wait_for(lambda: api.ok("get_active_servers")["rows"], 60, "the local satellite")
        agents.add(_agent_pid(proc))
        eid = shell_event(api, "crash1", "#!/bin/sh\nsleep 4\necho survived\n")
        job_id = run(api, eid)
        wait_for(lambda: api.ok("get_job", {"id": job_id})["job"].get("state") == "active", 30, "active")
        proc.stop(signal.SIGKILL)
        proc.start()
        api = login(proc.url, "admin", "admin")
        job = final(api, job_id, 90)
        assert job["code"] == 0 and "survived" in job["output"]
        agents.add(_agent_pid(proc))
    finally:
        proc.cleanup()
    wait_for(lambda: not any(_running(pid) for pid in agents), 30, "every local agent to stop with the conductor")


def test_a_long_queue_runs_in_order_and_shows_true_positions(node, uid):
    proc, api = node
    gate = proc.home / f"{uid}.go"
    eid = shell_event(api, uid, f"#!/bin/sh\nwhile [ ! -e {gate} ]; do sleep 0.05; done\n",
                      limits=[{"type": "job", "enabled": True, "amount": 1},
                              {"type": "queue", "enabled": True, "amount": 200}])
    blocker = run(api, eid)
    wait_for(lambda: api.ok("get_job", {"id": blocker})["job"].get("state") == "active", 30, "the first job to run")
    line = [run(api, eid) for _ in range(199)]
    urgent = run(api, eid, priority=True)
    over = run(api, eid)  # the 201st waiting job: the queue (200) is full

    def positions() -> dict[str, int]:
        rows = api.ok("get_active_jobs", {"event": eid, "limit": 500})["rows"]
        return {j["id"]: j.get("position") for j in rows if j["state"] == "queued"}

    assert final(api, over)["description"].endswith("and the queue is maxed out.")
    shown = positions()
    assert shown[urgent] == 0 and [shown[j] for j in line] == list(range(1, 200))
    for job_id in (line[0], line[50]):
        api.ok("abort_job", {"id": job_id})
    line = [j for j in line if j not in (line[0], line[50])]
    shown = positions()
    assert [shown[j] for j in [urgent, *line]] == list(range(1, 199)), "renumbered without gaps, priority first"
    gate.touch()
    order = [blocker, urgent, *line]
    done = wait_for(lambda: (lambda rows: rows if len(rows) == len(order) else None)(
        api.ok("search_jobs", {"query": f"event:{eid} code:0", "limit": 500})["rows"]), 120, "the queue to drain")
    by_id = {j["id"]: j for j in done}
    assert sorted(order, key=lambda j: by_id[j]["started"]) == order, "priority first, then oldest"
    spans = [(by_id[j]["started"], by_id[j]["completed"]) for j in order]
    assert all(later[0] >= earlier[1] - 0.05 for earlier, later in zip(spans, spans[1:], strict=False))


def test_daily_stats_count_conditions_and_day_limits_refuse_automatic_launches(node, uid):
    proc, api = node
    limited = shell_event(api, uid, "#!/bin/sh\necho counted\n",
                          limits=[{"type": "day", "enabled": True, "condition": "complete", "amount": 2}])
    parent = shell_event(api, uid + "p", "#!/bin/sh\ntrue\n", actions=[
        {"enabled": True, "condition": "complete", "type": "run_event", "event_id": limited}])

    def via_action() -> tuple[dict[str, Any], str]:
        """Run the parent; its completion action launches the limited event (source `action`)."""
        job_id = run(api, parent)
        record = wait_for(lambda: (lambda j: j if "code" in (j.get("actions") or [{}])[0] else None)(
            api.ok("get_job", {"id": job_id})["job"]), 60, "the parent's run_event action")
        children = [c["id"] for c in record.get("jobs") or [] if c.get("reason") == "action"]
        if children:
            final(api, children[0])
        return record["actions"][0], children[0] if children else ""

    def today(event_id: str) -> dict[str, int]:
        day = api.ok("dash_stats")["stats"]["day"]
        return day.get("events", {}).get(event_id, {})

    launched = [via_action() for _ in range(2)]
    assert [a["code"] for a, _ in launched] == [0, 0]
    assert today(limited) == {"job_start": 2, "job_complete": 2, "job_success": 2}
    day = api.ok("dash_stats")["stats"]["day"]
    assert day["job_complete"] >= 4 and day["servers"]["local"]["job_success"] >= 4
    assert day["categories"]["general"]["job_start"] >= 4 and day["plugins"]["shellplug"]["job_complete"] >= 4
    assert day["groups"]["main"]["job_complete"] >= 4
    refused, child = via_action()
    assert refused["code"] == "event" and "Daily limit has been reached" in refused["description"] and not child
    assert today(limited)["job_complete"] == 2, "a refused launch leaves no job and counts nothing"

    manual = final(api, run(api, limited))  # manual runs are not held by day limits
    assert manual["code"] == 0 and today(limited)["job_complete"] == 3
    api.ok("delete_job", {"id": launched[0][1]})
    api.ok("delete_job", {"id": launched[1][1]})
    assert today(limited) == {"job_start": 3, "job_complete": 1, "job_success": 1}
    again, child = via_action()
    assert again["code"] == 0 and child and today(limited)["job_complete"] == 2

    proc.stop()
    proc.start()
    wait_for(lambda: api.ok("get_active_servers")["rows"], 60, "the local satellite after the restart")
    assert today(limited) == {"job_start": 4, "job_complete": 2, "job_success": 2}, "kept across a restart"
