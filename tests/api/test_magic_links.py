"""Magic links on a conductor with no satellite: the token in the URL finds the event, request
params become job params, posted files become input files, and a wrong token learns nothing.
Jobs end at once here (no servers); running them is tests/jobs/test_magic_e2e.py."""

from __future__ import annotations

import hashlib
import json

import httpx

from harness import Api, wait_for

SHELL = {"enabled": True, "category": "general", "plugin": "shellplug", "targets": ["main"], "algo": "random",
         "params": {"script": "#!/bin/sh\ntrue\n"}}
FIELDS = [{"id": "colour", "title": "Colour", "type": "text", "value": "blue"},
          {"id": "fixed", "title": "Fixed", "type": "text", "value": "stone", "locked": True}]


def _magic_event(admin: Api, uid: str, **extra) -> str:  # type: ignore[no-untyped-def]
    key = "k" + uid + "secret"
    triggers = [{"id": "tmagic", "type": "magic", "enabled": True, "key": key, "body": "Hello <!-- Button: Go -->"}]
    admin.ok("create_event", {"id": uid, "title": "Magic " + uid, **SHELL, "fields": FIELDS, "triggers": triggers,
                              **extra})
    return key


def _secret_key(conductor) -> str:  # type: ignore[no-untyped-def]
    return str(json.loads((conductor.home / "conf" / "overrides.json").read_text())["secret_key"])


def _final(admin: Api, job_id: str) -> dict:  # type: ignore[type-arg]
    return wait_for(lambda: (lambda j: j if j.get("final") else None)(admin.ok("get_job", {"id": job_id})["job"]),
                    30, f"job {job_id} to end")


def test_the_key_is_stored_only_as_its_token(admin: Api, uid):
    key = _magic_event(admin, uid)
    trigger = admin.ok("get_event", {"id": uid})["event"]["triggers"][0]
    assert "key" not in trigger and trigger["token"] == hashlib.sha256((key + uid).encode()).hexdigest()


def test_magic_get_starts_a_job_with_query_params(conductor, admin: Api, uid):
    key = _magic_event(admin, uid)
    reply = httpx.get(f"{conductor.url}/api/app/magic/v1/{key}", params={"colour": "red", "fixed": "paper",
                                                                          "extra": "1"}).json()
    assert reply["code"] == 0 and reply["description"] == "Your job has started in the background."
    secret = _secret_key(conductor)
    assert reply["stream"] == hashlib.sha256(f"stream{reply['id']}{secret}".encode()).hexdigest()
    job = _final(admin, reply["id"])
    assert job["source"] == "magic" and job["event"] == uid
    assert job["params"]["colour"] == "red" and job["params"]["fixed"] == "stone" and job["params"]["extra"] == "1"
    assert job["params"]["script"].startswith("#!/bin/sh")


def test_magic_post_json_and_files(conductor, admin: Api, uid):
    key = _magic_event(admin, uid)
    body = {"json": json.dumps({"colour": "green", "input": {"data": {"n": 1}}})}
    reply = httpx.post(f"{conductor.url}/api/app/magic/v1/{key}", data=body,
                       files={"upload": ("Data File.csv", b"a,b\n")}).json()
    assert reply["code"] == 0, reply
    job = _final(admin, reply["id"])
    assert job["params"]["colour"] == "green" and job["input"]["data"] == {"n": 1}
    [stored] = job["input"]["files"]
    assert stored["magic"] is True and stored["filename"] == "Data File.csv" and stored["size"] == 4
    assert stored["path"].startswith("files/magic/") and stored["path"].endswith("/data_file.csv")
    assert httpx.get(f"{conductor.url}/{stored['path']}").content == b"a,b\n"


def test_magic_refusals(conductor, admin: Api, uid):
    key = _magic_event(admin, uid, limits=[{"type": "file", "enabled": True, "amount": 0}])
    url = f"{conductor.url}/api/app/magic/v1"
    assert httpx.get(f"{url}/wrong{key}").json() == {"code": "api", "description": "Authentication failed."}
    assert httpx.get(f"{url}/wrong{key}").status_code == 400
    reply = httpx.post(f"{url}/{key}", files={"f": ("a.txt", b"a")}).json()
    assert reply == {"code": "event", "description": "Event does not allow file uploads."}
    reply = httpx.post(f"{url}/{key}", json={"_xy_override_plugin": "x"}).json()
    assert reply == {"code": "api", "description": "Reserved parameter name: _xy_override_plugin"}
    assert httpx.post(f"{url}/{key}", json={"input": "text"}).json()["description"] == \
        "Malformed event parameter: input (must be object)"
    admin.ok("update_event", {"id": uid, "enabled": False})
    assert httpx.get(f"{url}/{key}").json() == {"code": "event", "description": f"Event is disabled: Magic {uid}"}
    admin.ok("update_event", {"id": uid, "enabled": True, "limits": [
        {"type": "file", "enabled": True, "amount": 1, "size": 3}]})
    reply = httpx.post(f"{url}/{key}", files={"f": ("a.txt", b"abcd")}).json()
    assert reply == {"code": "event", "description": "Uploaded file total size exceeds limit (3 bytes)"}
    reply = httpx.post(f"{url}/{key}", files={"f": ("a.txt", b"a"), "g": ("b.txt", b"b")}).json()
    assert reply == {"code": "event", "description": "Uploaded file count exceeds limit (1)."}


def test_form_and_form_config(conductor, admin: Api, uid):
    key = _magic_event(admin, uid)
    page = httpx.get(f"{conductor.url}/api/app/form/v1/{key}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert f"Magic {uid}" in page.text and ">Go</button>" in page.text and 'name="colour"' in page.text
    assert 'name="fixed"' not in page.text  # locked fields are not offered
    script = httpx.get(f"{conductor.url}/api/app/form_config/v1/{key}")
    assert script.text.startswith("app.receiveConfig(") and script.text.endswith(");")
    config = httpx.get(f"{conductor.url}/api/app/form_config/v1/{key}", params={"format": "json"}).json()
    [magic_page] = config["config"]["Page"]
    assert config["code"] == 0 and config["config"]["DefaultPage"] == "Magic"
    assert magic_page["title"] == f"Magic {uid}" and magic_page["fields"] == FIELDS and magic_page["token"] == key
    assert httpx.get(f"{conductor.url}/api/app/form/v1/nope").json()["description"] == "Authentication failed."


def test_stream_job_of_a_finished_job(conductor, admin: Api, uid):
    key = _magic_event(admin, uid)
    reply = httpx.get(f"{conductor.url}/api/app/magic/v1/{key}").json()
    job = _final(admin, reply["id"])
    text = httpx.get(f"{conductor.url}/api/app/stream_job/v1",
                     params={"id": reply["id"], "token": reply["stream"]}).text
    events = _sse(text)
    assert [name for name, _ in events] == ["start", "update", "end"]
    assert events[1][1]["xy"] == 1 and events[1][1]["code"] == job["code"] and events[1][1]["id"] == reply["id"]
    bad = httpx.get(f"{conductor.url}/api/app/stream_job/v1", params={"id": reply["id"], "token": "x"}).json()
    assert bad == {"code": "api", "description": "Authentication failed."}
    as_admin = httpx.get(f"{conductor.url}/api/app/stream_job/v1", params={"id": reply["id"]}, headers=admin.headers)
    assert as_admin.headers["content-type"].startswith("text/event-stream")
    assert httpx.get(f"{conductor.url}/api/app/stream_job/v1", params={"id": reply["id"]}).json()["code"] == "session"


def _sse(text: str) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        if lines:
            out.append((lines["event"], json.loads(lines["data"])))
    return out
