"""The live channel (`/api/live`) end to end: a real conductor, its local satellite, a WebSocket client.

What a client sees: log lines of a running job as they are printed, its state, the final
record; the active-job list; access refused without the job's category; bad frames answered
with errors while the socket and the conductor carry on; a reconnect resumes from the log tail.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from harness import Api, ConductorProcess, login, satellite_node, wait_for


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ConductorProcess, Api]]:
    with satellite_node(tmp_path_factory.mktemp("live")) as pair:
        yield pair


def ws_url(proc: ConductorProcess) -> str:
    return f"ws://127.0.0.1:{proc.port}/api/live"


@contextlib.contextmanager
def open_live(proc: ConductorProcess, api: Api) -> Iterator[ClientConnection]:
    """A socket authenticated with the API session's header, past its `hello`."""
    with connect(ws_url(proc), additional_headers={"X-Session-ID": api.headers["X-Session-ID"]}) as ws:
        assert receive(ws)["type"] == "hello"
        yield ws


def receive(ws: ClientConnection, timeout: float = 30) -> dict[str, Any]:
    """The next message that is not a keepalive ping."""
    while True:
        message = json.loads(ws.recv(timeout=timeout))
        if message.get("type") != "ping":
            return message  # type: ignore[no-any-return]


def until(ws: ClientConnection, predicate: Any, timeout: float = 60) -> list[dict[str, Any]]:
    """Messages up to and including the first one `predicate` accepts."""
    seen: list[dict[str, Any]] = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        seen.append(receive(ws, max(0.1, deadline - time.time())))
        if predicate(seen[-1]):
            return seen
    raise AssertionError(f"no matching message within {timeout} s; got {seen[-5:]}")


def gated_event(api: Api, eid: str, gate: str, category: str = "general") -> str:
    """A job that prints `first`, waits for the gate file, then prints `second` and `third`."""
    script = f"#!/bin/sh\necho first\nwhile [ ! -f {gate} ]; do sleep 0.1; done\necho second\necho third\n"
    api.ok("create_event", {"id": eid, "title": "Live " + eid, "enabled": True, "category": category,
                            "plugin": "shellplug", "targets": ["main"], "algo": "random",
                            "params": {"script": script}, "triggers": [{"type": "manual", "enabled": True}]})
    return eid


def log_text(messages: list[dict[str, Any]]) -> str:
    return "".join(m["text"] for m in messages if m["type"] == "log")


def test_subscriber_gets_log_lines_as_printed_and_the_final_record(node, uid, tmp_path):
    proc, api = node
    gate = tmp_path / "gate"
    job_id = api.ok("run_event", {"id": gated_event(api, uid, gate)})["id"]
    with open_live(proc, api) as ws:
        ws.send(json.dumps({"cmd": "subscribe", "topic": f"job:{job_id}", "id": 1}))
        assert receive(ws) == {"type": "subscribed", "topic": f"job:{job_id}", "id": 1}
        snapshot = receive(ws)
        assert snapshot["type"] == "job" and snapshot["job"]["id"] == job_id
        before = until(ws, lambda m: m["type"] == "log" and "first" in m["text"])
        gate.write_text("go")  # only now does the job print the rest
        after = until(ws, lambda m: m["type"] == "final")
    final = after[-1]["job"]
    assert final["id"] == job_id and final["code"] == 0 and final["state"] == "complete" and final["final"]
    assert "output" not in final
    streamed = log_text(after)
    assert "second" in streamed and "third" in streamed and streamed.index("second") < streamed.index("third")
    assert all(not m.get("initial") for m in after if m["type"] == "log")  # live chunks, not a re-read
    assert {m["job"]["state"] for m in before + after if m["type"] == "job"} & {"active", "finishing", "complete"}
    stored = api.ok("get_job", {"id": job_id})["job"]
    assert "first\n" in stored["output"] and "second\nthird\n" in stored["output"]


def test_finished_job_answers_with_its_final_record(node, uid, tmp_path):
    proc, api = node
    gate = tmp_path / "gate"
    gate.write_text("open")
    job_id = api.ok("run_event", {"id": gated_event(api, uid, gate)})["id"]
    wait_for(lambda: api.ok("get_job", {"id": job_id})["job"].get("final"), 60, "the job to finish")
    with open_live(proc, api) as ws:
        ws.send(json.dumps({"cmd": "subscribe", "topic": f"job:{job_id}"}))
        assert receive(ws)["type"] == "subscribed"
        final = receive(ws)
        assert final["type"] == "final" and final["job"]["code"] == 0
        ws.send(json.dumps({"cmd": "subscribe", "topic": "job:jnosuchjob000"}))
        missing = receive(ws)
        assert missing == {"type": "error", "code": "notfound", "description": "Failed to locate job: jnosuchjob000"}


def test_active_job_list_shows_a_job_arrive_and_leave(node, uid, tmp_path):
    proc, api = node
    gate = tmp_path / "gate"
    with open_live(proc, api) as ws:
        ws.send(json.dumps({"cmd": "subscribe", "topic": "jobs"}))
        assert receive(ws)["type"] == "subscribed"
        snapshot = receive(ws)
        assert snapshot["type"] == "jobs" and snapshot["reset"] is True
        job_id = api.ok("run_event", {"id": gated_event(api, uid, gate)})["id"]
        until(ws, lambda m: any(j["id"] == job_id and j["state"] == "active" for j in m.get("changed", [])))
        gate.write_text("go")
        until(ws, lambda m: job_id in m.get("gone", []))


def test_user_without_the_category_is_refused(node, uid, tmp_path):
    proc, api = node
    api.ok("create_category", {"id": uid, "title": "Secret " + uid})
    gate = tmp_path / "gate"
    job_id = api.ok("run_event", {"id": gated_event(api, uid, gate, category=uid)})["id"]
    name = "lim" + uid
    api.ok("admin_create", {"username": name, "password": "pw-" + name, "email": f"{name}@example.com",
                            "full_name": "Limited", "privileges": {"run_jobs": True}, "categories": ["general"]},
           ns="user")
    user = login(proc.url, name, "pw-" + name)
    try:
        assert user.call("get_job", {"id": job_id})["code"] == "access"  # the REST rule ...
        with open_live(proc, user) as ws:
            ws.send(json.dumps({"cmd": "subscribe", "topic": f"job:{job_id}", "id": "a"}))
            refused = receive(ws)  # ... is the live rule
            assert refused["type"] == "error" and refused["code"] == "access" and refused["id"] == "a"
            ws.send(json.dumps({"cmd": "subscribe", "topic": "jobs"}))
            assert receive(ws)["type"] == "subscribed"
            assert job_id not in {j["id"] for j in receive(ws)["changed"]}
            gate.write_text("go")
            wait_for(lambda: api.ok("get_job", {"id": job_id})["job"].get("final"), 60, "the job to finish")
            ws.send(json.dumps({"cmd": "ping", "id": 7}))
            for message in until(ws, lambda m: m["type"] == "pong"):  # nothing of the job reached this user
                assert job_id not in json.dumps(message)
    finally:
        user.close()


BAD_FRAMES = [
    ("not json", "Malformed JSON in frame."),
    ("[1, 2]", "A frame must be a JSON object with a cmd."),
    ("null", "A frame must be a JSON object with a cmd."),
    ('{"topic": "jobs"}', "Missing parameter: cmd"),
    ('{"cmd": "explode", "topic": "jobs"}', "Unknown command: explode"),
    ('{"cmd": "subscribe"}', "Missing parameter: topic"),
    ('{"cmd": "subscribe", "topic": 5}', "Parameter is not type string: topic"),
    ('{"cmd": "subscribe", "topic": "weather:today"}', "Unknown topic: weather:today"),
    ('{"cmd": "subscribe", "topic": "job:x", "tail": "all"}', "Parameter is not an integer"),
    ('{"cmd": "ping", "id": {"a": 1}}', "Parameter is not a string or number"),
    ('{"cmd": "subscribe", "topic": "jobs", "pad": "' + "x" * 5000 + '"}', "Frame is too large"),
]


def test_bad_frames_are_answered_and_change_nothing(node):
    proc, api = node
    with open_live(proc, api) as ws:
        for frame, words in BAD_FRAMES:
            ws.send(frame)
            reply = receive(ws)
            assert reply["type"] == "error" and reply["code"] == "api" and words in reply["description"], frame
        ws.send(b"\x00\x01binary")
        assert receive(ws)["description"].startswith("binary frames are not part of the protocol")
        ws.send(json.dumps({"cmd": "ping", "id": "still-here"}))
        assert receive(ws) == {"type": "pong", "id": "still-here"}
    assert httpx.post(proc.url + "/api/app/ping/v1").json()["code"] == 0
    assert re.search(r"Dropped live frame #1 from admin .*Malformed JSON", proc.log_text("Live"))


def test_credentials_and_cross_site_origins(node):
    proc, api = node
    with connect(ws_url(proc)) as ws:  # no credentials at all
        refusal = receive(ws)
        assert refusal == {"type": "error", "code": "session", "description": "No Session ID or API Key could be found"}
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    cookie = {"Cookie": f"session_id={api.headers['X-Session-ID']}"}
    with pytest.raises(InvalidStatus) as refused:  # another site's page riding the cookie
        connect(ws_url(proc), additional_headers=cookie, origin="http://evil.example")
    assert refused.value.response.status_code == 403
    with connect(ws_url(proc), additional_headers=cookie, origin=f"http://127.0.0.1:{proc.port}") as ws:
        assert receive(ws)["user"] == "admin"
    key = api.ok("create_api_key", {"title": "live", "privileges": {"run_jobs": True}})
    plain = key.get("plain_key") or key["key"]
    with connect(ws_url(proc), additional_headers={"X-API-Key": plain}) as ws:
        assert receive(ws)["type"] == "hello"
    with connect(ws_url(proc), additional_headers={"X-API-Key": "wrong"}) as ws:
        assert receive(ws)["description"] == "Invalid API Key"


def test_reconnect_resumes_from_the_log_tail(node, uid, tmp_path):
    proc, api = node
    gate = tmp_path / "gate"
    job_id = api.ok("run_event", {"id": gated_event(api, uid, gate)})["id"]
    topic = json.dumps({"cmd": "subscribe", "topic": f"job:{job_id}"})
    with open_live(proc, api) as ws:
        ws.send(topic)
        until(ws, lambda m: m["type"] == "log" and "first" in m["text"])
    gate.write_text("go")  # printed while nobody listens
    wait_for(lambda: api.ok("get_job", {"id": job_id})["job"].get("final") or
         "third" in api.ok("tail_live_job_log", {"id": job_id})["text"], 60, "the rest of the output")
    with open_live(proc, api) as ws:
        ws.send(topic)
        seen = until(ws, lambda m: m["type"] == "final" or (m["type"] == "log" and "third" in m["text"]))
    assert seen[-1]["type"] == "final" or seen[-1].get("initial") is True


def test_a_client_that_stops_reading_is_cut_off_and_never_holds_up_the_job(node, uid, tmp_path):
    proc, api = node
    gate = tmp_path / "gate"
    flood = f"#!/bin/sh\nwhile [ ! -f {gate} ]; do sleep 0.1; done\nyes {'x' * 99} | head -c 41943040\necho finished\n"
    api.ok("create_event", {"id": uid, "title": "Flood " + uid, "enabled": True, "category": "general",
                            "plugin": "shellplug", "targets": ["main"], "algo": "random",
                            "params": {"script": flood}, "triggers": [{"type": "manual", "enabled": True}]})
    job_id = api.ok("run_event", {"id": uid})["id"]
    with connect(ws_url(proc), additional_headers={"X-Session-ID": api.headers["X-Session-ID"]},
                 max_queue=4) as ws:
        assert receive(ws)["type"] == "hello"
        ws.send(json.dumps({"cmd": "subscribe", "topic": f"job:{job_id}"}))
        until(ws, lambda m: m["type"] == "log")
        gate.write_text("go")  # 40 MB of output while this client reads nothing
        job = wait_for(lambda: (lambda j: j if j.get("final") else None)(api.ok("get_job", {"id": job_id})["job"]),
                   120, "the job to finish")
        assert job["code"] == 0 and job["log_file_size"] > 40_000_000
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=60)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4008
    assert "fell behind" in proc.log_text("Live")


def test_job_page_hears_when_a_delayed_job_is_held_by_a_suspend_action(node, uid):
    """The hold happens inside the job manager (no state a satellite reports): it must be pushed."""
    proc, api = node
    held_event, parent_event = uid + "h", uid + "p"
    base = {"enabled": True, "category": "general", "plugin": "shellplug", "targets": ["main"], "algo": "random",
            "params": {"script": "#!/bin/sh\ntrue\n"}, "triggers": [{"type": "manual", "enabled": True}]}
    api.ok("create_event", {**base, "id": held_event, "title": "Held " + uid,
                            "actions": [{"type": "suspend", "enabled": True, "condition": "start", "text": "ok?"}]})
    api.ok("create_event", {**base, "id": parent_event, "title": "Parent " + uid,
                            "actions": [{"type": "run_event", "enabled": True, "condition": "complete",
                                         "event_id": held_event, "start_delay": 300}]})
    parent = api.ok("run_event", {"id": parent_event})["id"]
    child = wait_for(lambda: [j["id"] for j in api.ok("get_job", {"id": parent})["job"].get("jobs") or []],
                     60, "the delayed child job")[0]
    try:
        with open_live(proc, api) as ws:
            ws.send(json.dumps({"cmd": "subscribe", "topic": f"job:{child}"}))
            assert receive(ws)["type"] == "subscribed"
            snapshot = receive(ws)["job"]
            assert snapshot["state"] == "start_delay" and not snapshot.get("suspended")
            api.ok("job_skip_delay", {"id": child})
            held = until(ws, lambda m: m["type"] == "job" and m["job"].get("suspended"))[-1]["job"]
        assert held["id"] == child and held["state"] == "ready"
    finally:
        api.call("abort_job", {"id": child})
