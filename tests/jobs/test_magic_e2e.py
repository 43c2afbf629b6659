"""Magic links, job streams, delays and job files with a real local satellite running the jobs.

What a person sees: a file posted to a magic link reaches the job's working directory and
`/wait` answers with the finished job; `stream_job` follows a running job to its outcome;
skipping a retry delay runs the retry now; deleting a job's output file (or the job) removes
the stored file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from harness import Api, ConductorProcess, satellite_node, wait_for


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ConductorProcess, Api]]:
    with satellite_node(tmp_path_factory.mktemp("magic")) as pair:
        yield pair


def shell_event(api: Api, eid: str, script: str, **extra: Any) -> str:
    api.ok("create_event", {"id": eid, "title": "E2E " + eid, "enabled": True, "category": "general",
                            "plugin": "shellplug", "targets": ["main"], "algo": "random",
                            "params": {"script": script}, **extra})
    return eid


def final(api: Api, job_id: str, timeout: float = 60) -> dict[str, Any]:
    return wait_for(lambda: (lambda j: j if j.get("final") else None)(api.ok("get_job", {"id": job_id})["job"]),
                    timeout, f"job {job_id} to finish")


def test_magic_wait_runs_the_job_with_the_posted_file(node, uid):
    proc, api = node
    shell_event(api, uid, '#!/bin/sh\ncat "$(ls *.txt)"\necho "colour=$COLOUR"\n',
                triggers=[{"type": "magic", "enabled": True, "key": "open" + uid}])
    reply = httpx.post(f"{proc.url}/api/app/magic/v1/open{uid}/wait", data={"COLOUR": "teal"},
                       files={"f": ("note.txt", b"posted-content\n")}, timeout=60).json()
    assert reply["code"] == 0, reply
    job = reply["job"]
    assert job["final"] and job["code"] == 0 and job["source"] == "magic"
    assert "posted-content" in job["output"] and "colour=teal" in job["output"]


def test_stream_job_follows_a_running_job_to_its_end(node, uid):
    proc, api = node
    eid = shell_event(api, uid, "#!/bin/sh\necho 30%\nsleep 2\necho 60%\nsleep 1\n",
                      triggers=[{"type": "manual", "enabled": True}])
    job_id = api.ok("run_event", {"id": eid})["id"]
    events = []
    with httpx.stream("GET", f"{proc.url}/api/app/stream_job/v1", params={"id": job_id}, headers=api.headers,
                      timeout=60) as reply:
        assert reply.headers["content-type"].startswith("text/event-stream")
        name = ""
        for line in reply.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
    names = [n for n, _ in events]
    assert names[0] == "start" and names[-1] == "end" and names.count("update") >= 2
    updates = [d for n, d in events if n == "update"]
    assert all(u["xy"] == 1 for u in updates) and updates[0]["id"] == job_id
    assert updates[-1]["code"] == 0 and updates[-1]["id"] == job_id and "completed" in updates[-1]


def test_skip_delay_runs_a_waiting_retry_now(node, uid):
    _, api = node
    eid = shell_event(api, uid, "#!/bin/sh\nexit 4\n", triggers=[{"type": "manual", "enabled": True}],
                      limits=[{"type": "retry", "enabled": True, "amount": 1, "duration": 3600}])
    first = final(api, api.ok("run_event", {"id": eid})["id"])
    [retry] = [j["id"] for j in first["jobs"] if j["reason"] == "retry"]
    assert api.ok("get_job", {"id": retry})["job"]["state"] == "retry_delay"
    api.ok("job_skip_delay", {"id": retry})
    job = final(api, retry)
    assert job["code"] == 4 and job["retry_count"] == 1
    assert any("Job delay was manually skipped by user: admin" in row["msg"] for row in job["activity"])


def test_deleting_an_output_file_and_the_job_removes_stored_files(node, uid):
    proc, api = node
    script = "#!/bin/sh\necho one > a.txt\necho two > b.txt\necho '{\"xy\":1,\"files\":[\"a.txt\",\"b.txt\"]}'\n"
    eid = shell_event(api, uid, script, triggers=[{"type": "manual", "enabled": True}])
    job = final(api, api.ok("run_event", {"id": eid})["id"])
    first, second = sorted(job["files"], key=lambda f: f["filename"])
    assert httpx.get(f"{proc.url}/{first['path']}").text == "one\n"
    api.ok("delete_job_file", {"id": job["id"], "path": first["path"]})
    assert [f["path"] for f in api.ok("get_job", {"id": job["id"]})["job"]["files"]] == [second["path"]]
    assert httpx.get(f"{proc.url}/{first['path']}").status_code == 404
    api.ok("delete_job", {"id": job["id"]})
    assert httpx.get(f"{proc.url}/{second['path']}").status_code == 404


def test_run_event_multipart_files_become_input_files(node, uid):
    proc, api = node
    eid = shell_event(api, uid, '#!/bin/sh\ncat Data.CSV\n', triggers=[{"type": "manual", "enabled": True}])
    reply = httpx.post(f"{proc.url}/api/app/run_event/v1", headers=api.headers,
                       data={"json": json.dumps({"id": eid})}, files={"f": ("Data.CSV", b"x,y\n")}).json()
    assert reply["code"] == 0, reply
    job = final(api, reply["id"])
    [given] = job["input"]["files"]
    assert given["username"] == "admin" and given["path"].startswith("files/admin/") and given["size"] == 4
    assert job["code"] == 0 and "x,y" in job["output"]
