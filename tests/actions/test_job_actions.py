"""Job actions end to end on a real conductor.

No satellite runs here, so every job ends at once as `abort` ("No available servers"): a real
completion through the job manager that fires `complete`, `error` and `abort`. The conductor
has a forward proxy in its environment (so hooks reach the receiver through it), an SMTP sink
as its mail server, and air-gap lists that allow 127.0.0.1 only and block 127.0.0.2.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hook_receivers import ForwardProxy, Receiver, SmtpSink, wait_for

from harness import Api, ConductorProcess, login

# Template `env` is the conductor's environment minus XYOPS_* and SUNDIAL_* (docs/compatibility.md).
ENV_PROBES = {"HOOK_ENV_PROBE": "visible", "SUNDIAL_HOOK_PROBE": "hidden", "XYOPS_HOOK_PROBE": "hidden"}
AIRGAP = {"airgap": {"enabled": True, "whitelist": ["127.0.0.1/32"], "blacklist": ["127.0.0.2/32"]}}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home: Path = tmp_path_factory.mktemp("actions-home")
    (home / "conf").mkdir()
    (home / "conf" / "config.json").write_text(json.dumps(AIRGAP))
    receiver, proxy, smtp = Receiver(), ForwardProxy(), SmtpSink()
    conductor = ConductorProcess(home=home, env={"HTTP_PROXY": proxy.url, "NO_PROXY": "", **ENV_PROBES},
                                 settings={"mail_settings.host": "127.0.0.1", "mail_settings.port": smtp.port,
                                           "base_app_url": "https://ops.example.test"}).start()
    admin = login(conductor.url, "admin", "admin")
    admin.ok("create_web_hook", {"id": "hook", "title": "Receiver", "method": "POST", "url": receiver.url("/job"),
                                 "headers": [{"name": "Content-Type", "value": "application/json"}],
                                 "body": '{"id":"{{job.id}}","code":"{{job.code}}","event":"{{event.title}}",'
                                         '"greeting":"{{job.params.greeting}}","text":"{{text}}",'
                                         '"link":"{{links.job_details}}","probe":"{{env.HOOK_ENV_PROBE}}",'
                                         '"hidden":"{{env.SUNDIAL_HOOK_PROBE}}|{{env.XYOPS_HOOK_PROBE}}",'
                                         '"env":"{{encode(stringify(env))}}","nothing":"{{null}}|{{job.nope}}"}'})
    yield {"admin": admin, "receiver": receiver, "proxy": proxy, "smtp": smtp, "conductor": conductor}
    admin.close()
    conductor.cleanup()
    for server in (receiver, proxy, smtp):
        server.close()


def make_event(admin: Api, event_id: str, actions: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return admin.ok("create_event", {
        "id": event_id, "title": f"Event {event_id}", "enabled": True, "category": "general", "plugin": "shellplug",
        "targets": ["main"], "algo": "random", "params": {"script": "true", "greeting": "hello"},
        "triggers": [{"type": "manual", "enabled": True}], "actions": actions, **extra})["event"]


def act(kind: str, condition: str = "complete", **fields: Any) -> dict[str, Any]:
    return {"enabled": True, "condition": condition, "type": kind, **fields}


def run_and_settle(admin: Api, event_id: str, expect_done: int) -> dict[str, Any]:
    """Run the event; wait until the final record shows `expect_done` actions with a result."""
    job_id = admin.ok("run_event", {"id": event_id})["id"]

    def settled() -> dict[str, Any] | None:
        job = admin.ok("get_job", {"id": job_id})["job"]
        done = [a for a in job.get("actions") or [] if "code" in a]
        return job if job.get("final") and len(done) >= expect_done else None

    return wait_for(settled, 20, f"actions of job {job_id}")


def test_completion_actions_run_once_with_job_context(world: dict[str, Any], uid: str) -> None:
    admin, receiver, proxy = world["admin"], world["receiver"], world["proxy"]
    before = len(receiver.hits)
    make_event(admin, uid, [
        act("web_hook", web_hook="hook", text="(nightly)"), act("web_hook", web_hook="hook"),  # same target: once
        act("web_hook", "success", web_hook="hook"),  # the job fails: never fires
        act("tag", "abort", tags=["flag"]), act("label", "error", label="Run {{job.id}}"),
        act("snapshot", "error"), {**act("email", email="x@example.com"), "enabled": False},
    ])
    job = run_and_settle(admin, uid, 4)
    assert job["code"] == "abort"
    fired, dup, success, tag, label, snapshot, off = job["actions"]
    assert fired["code"] == 0 and fired["description"] == "Success (HTTP 200 OK)"
    assert fired["date"] >= job["started"] - 1 and fired["elapsed_ms"] >= 0 and "**Method:** POST" in fired["details"]
    assert "code" not in dup and "code" not in success and "code" not in off
    assert tag["code"] == 0 and "flag" in job["tags"]
    assert label["code"] == 0 and job["label"] == f"Run {job['id']}"
    assert snapshot["code"] == "snapshot" and snapshot["description"] == \
        "Error: snapshot action failed: server snapshots (monitoring) are not available in this version of Sundial"
    hits = receiver.hits[before:]
    assert len(hits) == 1
    sent = json.loads(hits[0].body)
    assert sent["id"] == job["id"] and sent["code"] == "abort" and sent["event"] == f"Event {uid}"
    assert sent["greeting"] == "hello" and sent["link"] == f"https://ops.example.test/#Job?id={job['id']}"
    assert sent["text"].startswith("Sundial Job failed on ") and sent["text"].endswith(" (nightly)")
    assert receiver.url("/job") in proxy.requests  # HTTP_PROXY of the conductor's environment was used
    env = json.loads(urllib.parse.unquote(sent["env"]))
    assert sent["probe"] == env["HOOK_ENV_PROBE"] == "visible" and sent["hidden"] == "N/A|N/A"
    assert not [name for name in env if name.upper().startswith(("SUNDIAL_", "XYOPS_"))]
    assert sent["nothing"] == "N/A|N/A"  # JEXL has no null literal: `null` is a missing name
    admin.ok("delete_event", {"id": uid})


def test_email_actions_send_text_and_html(world: dict[str, Any], uid: str) -> None:
    admin, smtp = world["admin"], world["smtp"]
    before = len(smtp.messages)
    make_event(admin, uid, [
        act("email", "error", users=["admin"], email="ops@example.com, not-an-address"),
        act("email", "abort", email="custom@example.com",
            body="<!-- Subject: Custom {{job.code}} -->\n**Hello** from {{event.title}}\n"),
        act("email", "complete", email="not-an-address"),  # no usable recipient: skipped, not failed
    ])
    job = run_and_settle(admin, uid, 3)
    stock, custom, skipped = job["actions"]
    assert skipped["code"] == 0 and skipped["description"] == "No recipients for email (skipping)"
    assert stock["code"] == 0 and stock["description"] == "Email sent successfully to: admin@localhost, ops@example.com"
    assert custom["code"] == 0
    messages = wait_for(lambda: smtp.messages[before:] if len(smtp.messages) >= before + 2 else None, 10, "2 e-mails")
    by_subject = {m["Subject"]: (rcpt, m) for rcpt, m in messages}
    rcpt, message = by_subject[f"Sundial: Job Failed: Event {uid}"]
    assert sorted(rcpt) == ["admin@localhost", "ops@example.com"]
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert job["id"] in text and "No available servers" in text and f"#Job?id={job['id']}" in text
    assert job["id"] in html and "<table" in html
    rcpt, message = by_subject["Custom abort"]
    assert rcpt == ["custom@example.com"]
    assert "<strong>Hello</strong>" in message.get_body(("html",)).get_content()
    admin.ok("delete_event", {"id": uid})


def test_run_event_disable_and_delete(world: dict[str, Any], uid: str) -> None:
    admin = world["admin"]
    make_event(admin, uid + "t", [])
    make_event(admin, uid + "m", [], triggers=[])
    make_event(admin, uid, [act("run_event", event_id=uid + "t", params={"greeting": "ignored"}),
                            act("run_event", "error", event_id=uid + "m"), act("disable", "error")])
    parent = run_and_settle(admin, uid, 3)
    launched, refused, disable = parent["actions"]
    child_id = launched["loc"].split("=", 1)[1]
    assert launched["code"] == 0 and parent["jobs"] == [{"id": child_id, "reason": "action"}]
    assert refused["code"] == "event" and "does not allow manual" in refused["description"]
    assert disable["code"] == 0 and admin.ok("get_event", {"id": uid})["event"]["enabled"] is False
    child = wait_for(lambda: (admin.ok("get_job", {"id": child_id})["job"] or {}).get("final") and
                     admin.ok("get_job", {"id": child_id})["job"], 10, "the child job")
    assert child["source"] == "action" and child["event"] == uid + "t"
    assert child["parent"] == {"job": parent["id"], "event": uid, "code": "abort",
                               "description": parent["description"]}
    assert child["input"] == {"data": {}, "files": []} and child["params"]["greeting"] == "hello"
    make_event(admin, uid + "d", [act("delete")])
    run_and_settle(admin, uid + "d", 1)
    wait_for(lambda: admin.call("get_event", {"id": uid + "d"})["code"] != 0, 10, "the event to be deleted")
    for suffix in ("", "t", "m"):
        admin.ok("delete_event", {"id": uid + suffix})


def test_channels_notify_and_respect_daily_limit(world: dict[str, Any], uid: str) -> None:
    admin, smtp, receiver = world["admin"], world["smtp"], world["receiver"]
    admin.ok("create_channel", {"id": uid, "title": "Ops", "enabled": True, "users": ["admin"], "web_hook": "hook",
                                "max_per_day": 1})
    admin.ok("create_channel", {"id": uid + "bare", "title": "Bare", "web_hook": "hook"})  # no users, no email
    make_event(admin, uid, [act("channel", "error", channel_id=uid), act("channel", "abort", channel_id=uid + "bare"),
                            act("channel", "complete", channel_id="nosuch")])
    mails, hooks = len(smtp.messages), len(receiver.hits)
    first = run_and_settle(admin, uid, 3)
    ops, bare, missing = first["actions"]
    assert ops["code"] == 0 and ops["description"] == f"Successfully notified channel: {uid}"
    assert "### Email Details" in ops["details"] and "### Web Hook Details" in ops["details"]
    assert bare["code"] == 0 and "### Web Hook Details" in bare["details"]
    assert missing == {**missing, "code": "channel", "description": "Notification Channel not found: nosuch"}
    wait_for(lambda: len(smtp.messages) > mails, 10, "the channel e-mail")
    assert len(receiver.hits) >= hooks + 2
    second = run_and_settle(admin, uid, 3)
    assert second["actions"][0]["code"] == "channel"
    assert second["actions"][0]["description"] == \
        f"Notification Channel has reached maximum daily limit: {uid} (1/day)"
    admin.ok("update_channel", {"id": uid + "bare", "enabled": False})
    third = run_and_settle(admin, uid, 3)
    assert third["actions"][1]["description"] == f"Notification Channel is disabled: {uid}bare"
    admin.ok("delete_event", {"id": uid})


def test_air_gap_refuses_with_the_named_rule(world: dict[str, Any], uid: str) -> None:
    admin, receiver = world["admin"], world["receiver"]
    base = {"id": uid, "title": "Gap", "method": "POST"}
    blocked = admin.call("test_web_hook", {**base, "url": f"http://127.0.0.2:{receiver.port}/x"})
    assert blocked == {"code": "webhook", "description": "Error: IP is blacklisted: 127.0.0.2"}
    outside = admin.call("test_web_hook", {**base, "url": "http://192.0.2.10/never"})
    assert outside == {"code": "webhook", "description": "Error: IP is not whitelisted: 192.0.2.10"}
    admin.ok("create_web_hook", {**base, "url": f"http://127.0.0.2:{receiver.port}/x", "max_per_day": 1})
    make_event(admin, uid, [act("web_hook", web_hook=uid)])
    job = run_and_settle(admin, uid, 1)
    assert job["actions"][0] == {**job["actions"][0], "code": "webhook", "details": "",
                                 "description": "Error: IP is blacklisted: 127.0.0.2"}
    again = run_and_settle(admin, uid, 1)
    assert again["actions"][0]["description"] == f"Error: Web Hook has reached maximum daily limit: {uid} (1/day)"
    log = world["conductor"].log_text("WebHook")
    assert f"Firing web hook {uid}" in log
    admin.ok("delete_event", {"id": uid})
    admin.ok("delete_web_hook", {"id": uid})


def test_vault_secrets_expand_for_saved_hooks_and_stay_out_of_results(world: dict[str, Any], uid: str) -> None:
    admin, receiver, conductor = world["admin"], world["receiver"], world["conductor"]
    value = "tok-" + uid + "-{{job.id}}"  # looks like a macro: must be sent verbatim
    admin.ok("create_web_hook", {"id": uid, "title": "Secretive", "method": "POST", "url": receiver.url("/secret"),
                                 "headers": [{"name": "X-Token", "value": "{{ secrets.HOOK_TOKEN }}"}],
                                 "body": "token={{secrets.HOOK_TOKEN}}&job={{job.id}}"})
    admin.ok("create_secret", {"id": uid, "title": "Hook token", "web_hooks": [uid],
                               "fields": [{"name": "HOOK_TOKEN", "value": value}]})
    make_event(admin, uid, [act("web_hook", web_hook=uid)])
    job = run_and_settle(admin, uid, 1)
    hit = receiver.hits[-1]
    assert hit.headers["X-Token"] == value and hit.body == f"token={value}&job={job['id']}"
    action = job["actions"][0]
    assert action["code"] == 0 and "(REDACTED)" in action["details"] and value not in json.dumps(job)
    tested = admin.ok("test_web_hook", {"id": uid, "title": "Secretive", "method": "POST",
                                        "url": receiver.url("/secret")})
    assert receiver.hits[-1].body.startswith(f"token={value}") and value not in json.dumps(tested)
    unsaved = admin.ok("test_web_hook", {"id": uid + "x", "title": "Unsaved", "method": "POST",
                                         "url": receiver.url("/secret"), "body": "t={{secrets.HOOK_TOKEN}}"})
    assert unsaved["result"]["code"] == 0 and receiver.hits[-1].body == "t=Web Hook Test: Unsaved"
    for component in ("WebHook", "Action", "Job"):
        assert "tok-" + uid not in conductor.log_text(component)
    assert f"Using secret {uid} (Hook token) for web_hooks: {uid}" in conductor.log_text("Secret")
    admin.ok("delete_event", {"id": uid})
    admin.ok("delete_secret", {"id": uid})
    admin.ok("delete_web_hook", {"id": uid})
