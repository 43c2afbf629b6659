"""The hub against scripted agents: handshake, refusals, bad frames, keepalive, groups, metrics.

Every agent here is an in-process WebSocket client sending exactly the frames the test wants,
against the real conductor process of the folder.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
from fleet_peer import SECRET, ScriptedAgent, async_wait_until

from harness import Api, ConductorProcess
from sundial import protocol as p


def _sid() -> str:
    return "t" + uuid.uuid4().hex[:12]


def _online(admin: Api, sid: str) -> bool:
    return admin.call("get_active_server", {"id": sid}).get("code") == 0


async def test_handshake_assigns_id_and_registers_the_server(ws_url: str, fleet_admin: Api) -> None:
    async with ScriptedAgent(ws_url) as agent:
        await agent.send("hello", {"hostname": "Web 01/Prod!.x", "id": "", "info": {}, "title": "From hello"})
        hello = await agent.expect("hello")
        assert len(hello["nonce"]) == 64 and hello["id"].startswith("s") and len(hello["id"]) == 16
        await agent.send("join", {"token": p.nonce_token(hello["nonce"], SECRET)})
        joined = await agent.expect("joined")
        assert joined["features"] == {"api_finish_job": True}
        assert joined["masterData"] == {"masters": ["127.0.0.1"]}
        assert "main" in joined["groups"] and joined["numServers"] >= 1
        assert any(pl["id"] == "shellplug" for pl in joined["plugins"])
        assert joined["config"]["airgap"] is not None and "host" not in joined["config"]
        server = fleet_admin.ok("get_active_server", {"id": hello["id"]})["server"]
        assert server["hostname"] == "web01prod.x" and server["title"] == "From hello"
        assert server["enabled"] is True and server["autoGroup"] is True and server["ip"] == "127.0.0.1"
    await async_wait_until(lambda: not _online(fleet_admin, hello["id"]), 10, "the server to leave")


async def test_bad_token_is_refused_and_nothing_registered(ws_url: str, fleet_admin: Api) -> None:
    sid = _sid()
    async with ScriptedAgent(ws_url) as agent:
        await agent.hello("badtoken", sid)
        await agent.send("join", {"token": p.server_auth_token(sid, "not-the-key")})
        failure = await agent.expect("auth_failure")
        assert failure["description"] == "Invalid authentication token."
        await agent.send("monitor", {"date": time.time(), "data": {}})
        assert not _online(fleet_admin, sid)
        # a join without a fresh hello is ignored: the failed nonce cannot be retried
        await agent.send("join", {"token": p.server_auth_token(sid, SECRET)})
        assert "joined" not in await agent.nothing(1.0)
    assert not _online(fleet_admin, sid)

    def warned() -> bool:
        rows = fleet_admin.ok("search_activity", {"query": "action:warning", "limit": 50}).get("rows") or []
        return any("authentication failed" in r.get("description", "") for r in rows)

    await async_wait_until(warned, 10, "an activity warning about the refused satellite")


async def test_replayed_nonce_answer_is_refused(ws_url: str) -> None:
    async with ScriptedAgent(ws_url) as first:
        hello = await first.hello("replay-a", "")
        answer = p.nonce_token(hello["nonce"], SECRET)
        async with ScriptedAgent(ws_url) as second:
            await second.hello("replay-b", "")
            await second.send("join", {"token": answer})
            assert (await second.expect("auth_failure"))["description"] == "Invalid authentication token."


async def test_duplicate_id_with_another_hostname_is_refused(ws_url: str, fleet_admin: Api) -> None:
    sid = _sid()
    async with ScriptedAgent(ws_url) as owner:
        await owner.join("owner-host", sid)
        async with ScriptedAgent(ws_url) as impostor:
            await impostor.send("hello", {"hostname": "other-host", "id": sid, "info": {}})
            failure = await impostor.expect("auth_failure")
            assert sid in failure["description"] and "owner-host" in failure["description"]
        assert fleet_admin.ok("get_active_server", {"id": sid})["server"]["hostname"] == "owner-host"


async def test_reconnect_of_same_server_replaces_the_older_socket(ws_url: str, fleet_admin: Api) -> None:
    sid = _sid()
    async with ScriptedAgent(ws_url) as old:
        await old.join("same-host", sid)
        async with ScriptedAgent(ws_url) as new:
            await new.join("same-host", sid)
            await asyncio.wait_for(old.closed.wait(), 10)
            await asyncio.sleep(0.5)
            assert _online(fleet_admin, sid), "the newer socket keeps the server online"
            active = fleet_admin.ok("get_active_servers")["rows"]
            assert [r["id"] for r in active].count(sid) == 1


BAD_FRAMES: list[str | bytes] = [
    "null", "42", "[]", '"text"', "{not json", '{"cmd":"hello"}', '{"cmd":"echoback"}', '{"cmd":"join"}',
    '{"cmd":5,"data":{}}', '{"cmd":"hello","data":null}', '{"cmd":"join","data":{"token":5}}',
    '{"cmd":"hello","data":{"hostname":["x"],"id":"BAD ID"}}', '{"cmd":"no_such_command","data":{}}',
    '{"cmd":"hello","data":{"__proto__":{}}}', b"\x00\x01binary", "x" * (p.MAX_PREAUTH_FRAME_BYTES + 10),
]


async def test_malformed_frames_hurt_nobody(ws_url: str, fleet_admin: Api,
                                           fleet_conductor: ConductorProcess) -> None:
    sid = _sid()
    async with ScriptedAgent(ws_url) as good:
        await good.join("good-neighbour", sid)
        async with ScriptedAgent(ws_url) as bad:
            for frame in BAD_FRAMES:
                await bad.send_raw(frame)
            # the bad socket is still open and can still authenticate afterwards
            joined = await bad.join("bad-but-honest", _sid())
            assert joined["numServers"] >= 2
            for frame in BAD_FRAMES + ['{"cmd":"jobs","data":{"x":"not an object"}}',
                                       '{"cmd":"quickmon","data":{"mem":[1,2]}}',
                                       '{"cmd":"monitor","data":{"date":"soon"}}',
                                       '{"cmd":"job_log","data":{"id":"nosuchjob","text":"x"}}',
                                       '{"cmd":"jobs","data":{"j1":null,"j2":5}}', '{"cmd":"monitor","data":null}',
                                       '{"cmd":"master","data":{}}', '{"cmd":"monitorPluginTestResult","data":'
                                       '{"plugin_id":"x","request_id":"__proto__"}}']:
                await bad.send_raw(frame)
            assert bad.ws is not None
            await bad.ws.send(['{"cmd":"quickmon",', '"data":{"mem":{"used":1}}}'])  # a fragmented frame
        await good.send("quickmon", {"mem": {"used": 5}, "cpu": {"currentLoad": 1.5}, "fs": {}, "net": {}})

        def quick() -> list:
            return fleet_admin.ok("get_quickmon_data", {"server": sid})["servers"].get(sid) or []

        rows = await async_wait_until(quick, 10, "the good agent's quickmon row")
        assert rows[-1]["_qm_mem_used"] == 5 and rows[-1]["_qm_cpu_usage"] == 1.5
        assert not good.closed.is_set()
    assert fleet_admin.ok("get_active_servers")["code"] == 0
    log = fleet_conductor.log_text("Fleet")
    assert "Dropped frame" in log and "binary frame" in log and "exceeds the limit" in log
    assert "Error handling" not in log, "no frame may reach a handler and blow up"


async def test_frames_before_auth_are_ignored(ws_url: str, fleet_admin: Api) -> None:
    sid = _sid()
    async with ScriptedAgent(ws_url) as agent:
        await agent.hello("early-bird", sid)
        await agent.send("monitor", {"date": time.time(), "server": sid, "data": {"load": [1, 1, 1]}})
        await agent.send("quickmon", {"mem": {"used": 1}})
        await agent.send("join", {"token": p.server_auth_token(sid, SECRET)})
        await agent.expect("joined")
        assert fleet_admin.call("get_server", {"id": sid})["code"] == "notfound"
        assert fleet_admin.ok("get_quickmon_data", {"server": sid})["servers"][sid] == []


async def test_metrics_are_kept_and_served(ws_url: str, fleet_admin: Api) -> None:
    sid = _sid()
    async with ScriptedAgent(ws_url) as agent:
        await agent.join("metrics-host", sid)
        sample = {"version": "1.0", "date": time.time(), "server": sid, "hostname": "metrics-host",
                  "data": {"load": [0.5, 0.4, 0.3], "cpu": {"brand": "TestCPU", "avgLoad": 0.5},
                           "memory": {"total": 100, "active": 40}, "jobs": 0}}
        await agent.send("monitor", sample)
        await agent.send("monitor", {**sample, "data": {"load": [9, 9, 9]}})  # same agent minute: dropped
        for used in (10, 20, 30):
            await agent.send("quickmon", {"mem": {"used": used}, "cpu": {}, "fs": {"rx": used}, "net": {}})

        def served() -> dict:
            data = fleet_admin.call("get_server", {"id": sid})
            return data if data.get("code") == 0 else {}

        got = await async_wait_until(served, 10, "get_server to find the minute sample")
        assert got["online"] is True and got["data"]["data"]["load"] == [0.5, 0.4, 0.3]
        assert got["data"]["hostname"] == "metrics-host" and got["data"]["ip"] == "127.0.0.1"
        assert got["server"]["info"]["cpu"]["avgLoad"] == 0.5
        rows = fleet_admin.ok("get_quickmon_data", {"server": sid})["servers"][sid]
        # rows are one per second: a second sample in the same second moves to the next second, one
        # arriving "before" the newest row (clock conflict) is dropped, so 30 may or may not be kept
        assert [r["_qm_mem_used"] for r in rows][:2] == [10, 20] and len(rows) in (2, 3)
        assert [r["date"] for r in rows] == sorted({r["date"] for r in rows}), "one row per second, in order"
        latest = fleet_admin.ok("get_latest_monitor_data", {"server": sid, "sys": "hourly", "limit": 5})
        assert len(latest["rows"]) == 1 and latest["rows"][0]["count"] == 1
        assert latest["data"]["data"]["load"] == [0.5, 0.4, 0.3]
        bad = fleet_admin.call("get_latest_monitor_data", {"server": sid, "sys": "weekly"})
        assert bad == {"code": "monitor", "description": "Unknown system: weekly"}


async def test_silent_server_goes_offline(ws_url: str, fleet_admin: Api) -> None:
    sid = _sid()
    async with ScriptedAgent(ws_url, answer_echoes=False) as agent:
        await agent.join("silent-host", sid)
        assert _online(fleet_admin, sid)
        started = time.monotonic()
        await async_wait_until(lambda: not _online(fleet_admin, sid), 15, "the silent server to be dropped")
        assert time.monotonic() - started < 12
        await asyncio.wait_for(agent.closed.wait(), 15)
    offline = fleet_admin.ok("get_servers")["servers"]
    assert sid not in offline


async def test_unauthenticated_socket_gets_echoes_and_no_data(ws_url: str) -> None:
    async with ScriptedAgent(ws_url, answer_echoes=False) as agent:
        await agent.send("hello", {"hostname": "lurker", "id": "", "info": {}})
        await agent.expect("hello")
        assert "echo" in await agent.nothing(1.5)


@pytest.mark.parametrize("pattern", ["^grp-match-", "grp-match-.*-east$"])
async def test_groups_are_rematched_when_groups_change(ws_url: str, fleet_admin: Api, pattern: str) -> None:
    sid, gid = _sid(), "g" + uuid.uuid4().hex[:10]
    async with ScriptedAgent(ws_url) as agent:
        joined = await agent.join("grp-match-01-east", sid)
        assert gid not in joined["groups"]
        fleet_admin.ok("create_group", {"id": gid, "title": "Rematch", "hostname_match": pattern})
        try:
            update = await agent.expect("update")
            assert gid in update["groups"]
            server = fleet_admin.ok("get_active_server", {"id": sid})["server"]
            assert gid in server["groups"]
            fleet_admin.ok("update_group", {"id": gid, "hostname_match": "^nothing-matches$"})
            update = await agent.expect("update")
            assert gid not in update["groups"]
        finally:
            fleet_admin.call("delete_group", {"id": gid})


async def test_manual_groups_survive_and_fall_back_to_auto(ws_url: str, fleet_admin: Api) -> None:
    sid, gid = _sid(), "g" + uuid.uuid4().hex[:10]
    fleet_admin.ok("create_group", {"id": gid, "title": "Manual", "hostname_match": "^never$"})
    async with ScriptedAgent(ws_url) as agent:
        await agent.join("manual-host", sid)
        fleet_admin.ok("update_server", {"id": sid, "groups": [gid], "title": "Renamed"})
        assert (await agent.expect("update"))["groups"] == [gid]
        server = fleet_admin.ok("get_active_server", {"id": sid})["server"]
        assert server["groups"] == [gid] and server["autoGroup"] is False and server["title"] == "Renamed"
        fleet_admin.ok("delete_group", {"id": gid})
        update = await agent.expect("update")
        assert "main" in update["groups"], "no manual group left: back to automatic membership"
        assert fleet_admin.ok("get_active_server", {"id": sid})["server"]["autoGroup"] is True


async def test_notice_from_agent_lands_in_activity(ws_url: str, fleet_admin: Api) -> None:
    sid = _sid()
    async with ScriptedAgent(ws_url) as agent:
        await agent.join("notice-host", sid)
        await agent.send("warning", {"description": f"disk almost full on {sid}"})

        def found() -> bool:
            rows = fleet_admin.ok("search_activity", {"query": sid, "limit": 20}).get("rows") or []
            return any(r.get("action") == "warning" and sid in r.get("description", "") for r in rows)

        await async_wait_until(found, 10, "the agent warning in the activity log")


async def test_hello_carries_initial_fields_only_for_new_servers(ws_url: str, fleet_admin: Api) -> None:
    sid = _sid()
    async with ScriptedAgent(ws_url) as agent:
        await agent.join("initial-host", sid, title="First", groups=["main"], enabled=False,
                         socket_id="forged", created=1)
        server = fleet_admin.ok("get_active_server", {"id": sid})["server"]
        assert server["title"] == "First" and server["enabled"] is False and server["autoGroup"] is False
        assert server["socket_id"] != "forged" and server["created"] > 1
    await async_wait_until(lambda: not _online(fleet_admin, sid), 10, "leave")
    async with ScriptedAgent(ws_url) as agent:
        await agent.join("initial-host", sid, title="Second")
        assert fleet_admin.ok("get_active_server", {"id": sid})["server"]["title"] == "First"


def test_json_of_frames_is_what_the_spec_says() -> None:
    assert json.loads(p.encode_frame("echo", {"id": "e1"})) == {"cmd": "echo", "data": {"id": "e1"}}


async def test_plugin_changes_are_pushed_to_agents(ws_url: str, fleet_admin: Api) -> None:
    async with ScriptedAgent(ws_url) as agent:
        await agent.join("plugin-watcher", _sid())
        original = fleet_admin.ok("get_plugin", {"id": "testplug"})["plugin"]["title"]
        fleet_admin.ok("update_plugin", {"id": "testplug", "title": "Renamed Test Plugin"})
        try:
            update = await agent.expect("update")
            titles = {pl["id"]: pl["title"] for pl in update["plugins"]}
            assert titles["testplug"] == "Renamed Test Plugin" and "commands" in update
            assert all(pl["type"] == "event" for pl in update["plugins"])
            assert all(cmd["type"] == "monitor" and "sec" in cmd for cmd in update["commands"])
        finally:
            fleet_admin.ok("update_plugin", {"id": "testplug", "title": original})


async def test_key_rotation_sends_each_agent_its_new_token(ws_url: str, fleet_admin: Api) -> None:
    """Kept last in the file: it rotates the shared conductor's key, then rotates it back."""
    sid, new_key = _sid(), "a" * 64

    def rotate(old: str, new: str) -> dict:
        resp = fleet_admin.http.post("/api/maintenance/rotate-key", headers=fleet_admin.headers,
                                     json={"old_key": old, "new_key": new, "quiesce": False})
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    async with ScriptedAgent(ws_url) as agent:
        await agent.join("rotating-host", sid)
        await asyncio.to_thread(rotate, SECRET, new_key)
        try:
            assert await agent.expect("updateConfig") == {"auth_token": p.server_auth_token(sid, new_key)}
            async with ScriptedAgent(ws_url) as fresh:
                assert "main" in (await fresh.join("rotating-2", _sid(), secret=new_key))["groups"]
        finally:
            await asyncio.to_thread(rotate, new_key, SECRET)
        assert await agent.expect("updateConfig") == {"auth_token": p.server_auth_token(sid, SECRET)}
