"""A suspended job that really runs afterwards, on the conductor's local satellite (SQLite).

The job waits for approval before it starts: the e-mail goes out with the suspended template,
nothing runs, the held job survives a conductor restart, and once resumed with new params it
runs with them and only then fires its other start actions.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hook_receivers import SmtpSink, wait_for

from harness import Api, ConductorProcess, login, satellite_node


def get_job(admin: Api, job_id: str) -> dict[str, Any]:
    return dict(admin.ok("get_job", {"id": job_id})["job"])


def test_start_suspension_then_a_real_run(tmp_path: Path) -> None:
    smtp = SmtpSink()
    settings = {"mail_settings.host": "127.0.0.1", "mail_settings.port": smtp.port}
    try:
        with satellite_node(tmp_path / "home", settings=settings) as (conductor, admin):
            held_then_resumed(conductor, admin, smtp)
    finally:
        smtp.close()


def held_then_resumed(conductor: ConductorProcess, admin: Api, smtp: SmtpSink) -> None:
    event = admin.ok("create_event", {
        "title": "Needs approval", "enabled": True, "category": "general", "plugin": "shellplug",
        "targets": ["main"], "algo": "random", "params": {"script": "#!/bin/sh\necho \"color=$color\"\n",
                                                           "color": "red"},
        "triggers": [{"type": "manual", "enabled": True}],
        "actions": [{"enabled": True, "condition": "start", "type": "suspend", "email": "boss@example.com",
                     "text": "Approve the deploy"},
                    {"enabled": True, "condition": "start", "type": "label", "label": "started"}]})["event"]
    job_id = admin.ok("run_event", {"id": event["id"]})["id"]
    held = wait_for(lambda: (j := get_job(admin, job_id)).get("suspended") and
                    "code" in j["actions"][0] and j, 20, "the suspension")
    assert held["actions"][0]["code"] == 0, held["actions"][0]
    rcpt, message = wait_for(lambda: smtp.messages, 10, "the suspended e-mail")[0]
    assert rcpt == ["boss@example.com"] and message["Subject"] == "Sundial: Job Suspended: Needs approval"
    text = message.get_body(("plain",)).get_content()
    assert f"#Job?id={job_id}&resume=1" in text and "Approve the deploy" in text

    conductor.stop()  # a held job is durable: it is still held after a restart
    conductor.start()
    admin = login(conductor.url, "admin", "admin")
    wait_for(lambda: admin.ok("get_active_servers")["rows"], 60, "the local satellite after the restart")
    time.sleep(0.5)  # let a wrongly released job start, if it were going to
    again = get_job(admin, job_id)
    assert again["suspended"] is True and again["state"] == "ready" and not again.get("label")

    admin.ok("resume_job", {"id": job_id, "params": {"color": "green"}})
    final = wait_for(lambda: (j := get_job(admin, job_id)).get("final") and
                     all("code" in a for a in j["actions"]) and j, 30, "the real run")
    assert final["code"] == 0 and "color=green" in final.get("output", ""), final
    assert final["label"] == "started" and final["actions"][1]["code"] == 0
    admin.close()


def test_a_job_held_at_completion_frees_its_slot(tmp_path: Path) -> None:
    with satellite_node(tmp_path / "home") as (_, admin):
        event = admin.ok("create_event", {
            "title": "One at a time", "enabled": True, "category": "general", "plugin": "shellplug",
            "targets": ["main"], "algo": "random", "params": {"script": "#!/bin/sh\nsleep 1\n"},
            "triggers": [{"type": "manual", "enabled": True}],
            "limits": [{"type": "job", "enabled": True, "amount": 1}, {"type": "queue", "enabled": True, "amount": 5}],
            "actions": [{"enabled": True, "condition": "success", "type": "suspend"}]})["event"]
        first = admin.ok("run_event", {"id": event["id"]})["id"]
        second = admin.ok("run_event", {"id": event["id"]})["id"]
        assert get_job(admin, second)["state"] == "queued"
        for job_id in (first, second):  # the second leaves the queue once the first is held
            held = wait_for(lambda j=job_id: (job := get_job(admin, j)).get("suspended") and job, 30, "a hold")
            assert held["state"] == "complete" and held["code"] == 0 and not held.get("final")
        for job_id in (first, second):
            admin.ok("resume_job", {"id": job_id})
            assert wait_for(lambda j=job_id: get_job(admin, j).get("final"), 20, "the finish")
