"""Actions of a job that really runs, on the conductor's local satellite."""

from __future__ import annotations

import json
from pathlib import Path

from hook_receivers import Receiver, SmtpSink, wait_for

from harness import satellite_node


def test_start_and_completion_actions_of_a_real_job(tmp_path: Path) -> None:
    receiver, smtp = Receiver(), SmtpSink()
    settings = {"mail_settings.host": "127.0.0.1", "mail_settings.port": smtp.port}
    try:
        with satellite_node(tmp_path / "home", settings=settings) as (_, admin):
            admin.ok("create_web_hook", {"id": "done", "title": "Done", "method": "POST",
                                         "url": receiver.url("/done"),
                                         "body": '{"id":"{{job.id}}","code":"{{job.code}}"}'})
            event = admin.ok("create_event", {
                "title": "Real job", "enabled": True, "category": "general", "plugin": "shellplug",
                "targets": ["main"], "algo": "random", "params": {"script": "#!/bin/sh\necho hello\n"},
                "triggers": [{"type": "manual", "enabled": True}],
                "actions": [{"enabled": True, "condition": "start", "type": "email", "email": "ops@example.com"},
                            {"enabled": True, "condition": "success", "type": "web_hook",
                             "web_hook": "done"}]})["event"]
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
    finally:
        receiver.close()
        smtp.close()
