"""Actions of a job that really runs, on the conductor's local satellite.

Skipped, with the reason, until the satellite hub lets the local satellite come online
(`local_satellite.enabled` and `get_active_servers`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from hook_receivers import Receiver, SmtpSink, wait_for

from harness import Api, ConductorProcess, login

ONLINE_WAIT_SECONDS = 20


def first_online_server(admin: Api) -> dict[str, object] | None:
    deadline = time.time() + ONLINE_WAIT_SECONDS
    while time.time() < deadline:
        data = admin.call("get_active_servers")
        if data.get("code") != 0:
            pytest.skip(f"no satellite hub yet: get_active_servers answered {data.get('description')!r}")
        rows = data.get("rows") or []
        if rows:
            return dict(rows[0])
        time.sleep(0.2)
    return None


def hub_registered() -> bool:
    from sundial.app import ROUTERS

    return any(verb.name == "get_active_servers" for router in ROUTERS for verb in router.verbs)


@pytest.mark.skipif(not hub_registered(), reason="no satellite hub yet (get_active_servers is not registered), "
                                                  "so no job can run on a satellite")
def test_start_and_completion_actions_of_a_real_job(tmp_path: Path) -> None:
    receiver, smtp = Receiver(), SmtpSink()
    conductor = ConductorProcess(home=tmp_path / "home", settings={
        "local_satellite.enabled": True, "mail_settings.host": "127.0.0.1", "mail_settings.port": smtp.port})
    try:
        conductor.start()
        admin = login(conductor.url, "admin", "admin")
        if first_online_server(admin) is None:
            pytest.skip(f"no satellite online within {ONLINE_WAIT_SECONDS} s (local satellite not connecting yet)")
        admin.ok("create_web_hook", {"id": "done", "title": "Done", "method": "POST", "url": receiver.url("/done"),
                                     "body": '{"id":"{{job.id}}","code":"{{job.code}}"}'})
        event = admin.ok("create_event", {
            "title": "Real job", "enabled": True, "category": "general", "plugin": "shellplug", "targets": ["main"],
            "algo": "random", "params": {"script": "#!/bin/sh\necho hello\n"},
            "triggers": [{"type": "manual", "enabled": True}],
            "actions": [{"enabled": True, "condition": "start", "type": "email", "email": "ops@example.com"},
                        {"enabled": True, "condition": "success", "type": "web_hook", "web_hook": "done"}]})["event"]
        job_id = admin.ok("run_event", {"id": event["id"]})["id"]

        def settled() -> dict[str, object] | None:
            job = admin.ok("get_job", {"id": job_id})["job"]
            return job if job.get("final") and all("code" in a for a in job["actions"]) else None

        job = wait_for(settled, 30, "the job and its actions")
        assert job["code"] == 0
        start, success = job["actions"]
        assert start["code"] == 0 and success["code"] == 0, job["actions"]
        assert json.loads(receiver.hits[-1].body)["id"] == job_id
        wait_for(lambda: smtp.messages, 10, "the start e-mail")
        assert smtp.messages[0][1]["Subject"] == "Sundial: Job Started: Real job"
        admin.close()
    finally:
        conductor.cleanup()
        receiver.close()
        smtp.close()
