"""Fleet and operations as a client sees them (servers-groups-monitoring.md, satellite-protocol.md,
config.md, admin-and-data.md): verbs, envelopes, error codes and strings, and side effects.

Servers are joined by a scripted agent speaking the WebSocket protocol with the conductor's
`secret_key` (what a real satellite does), so every test stays black-box.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from harness import Api, ConductorProcess, wait_for


def _secret(conductor: ConductorProcess) -> str:
    overrides = json.loads((conductor.home / "conf" / "overrides.json").read_text())
    return str(overrides["secret_key"])


async def _recv(ws: ClientConnection, *cmds: str) -> dict[str, Any]:
    """The next frame whose cmd is one of `cmds` (echoes are answered on the way)."""
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if frame["cmd"] == "echo":
            await ws.send(json.dumps({"cmd": "echoback", "data": frame["data"]}))
        if frame["cmd"] in cmds:
            return frame


@asynccontextmanager
async def agent(conductor: ConductorProcess, server_id: str, **initial: Any) -> AsyncIterator[ClientConnection]:
    """A joined satellite: hello, then join with sha256(nonce + secret_key)."""
    async with connect(f"ws://127.0.0.1:{conductor.port}/", proxy=None, ping_interval=None) as ws:
        hello = {"hostname": f"{server_id}.example.test", "id": server_id, "info": {}, **initial}
        await ws.send(json.dumps({"cmd": "hello", "data": hello}))
        nonce = (await _recv(ws, "hello"))["data"]["nonce"]
        token = hashlib.sha256((nonce + _secret(conductor)).encode()).hexdigest()
        await ws.send(json.dumps({"cmd": "join", "data": {"token": token}}))
        await _recv(ws, "joined")
        yield ws


def _activity(admin: Api, action: str, word: str) -> list[dict[str, Any]]:
    return admin.ok("search_activity", {"query": f"action:{action} {word}", "limit": 5})["rows"]


# -- servers ---------------------------------------------------------------------------------------

def test_unknown_active_server_is_notfound(admin: Api) -> None:
    got = admin.call("get_active_server", {"id": "no_such_server"})
    assert got == {"code": "notfound", "description": "Failed to locate server: no_such_server"}


def test_update_of_a_missing_server_answers_code_server(admin: Api, uid: str) -> None:
    """Like every update of a missing id (core-api.md §8.4), the object-type code, not `notfound`."""
    assert admin.call("update_server", {"id": uid, "title": "x"}) == \
        {"code": "server", "description": f"Failed to update server: Server not found: {uid}"}
    assert admin.call("update_server_data", {"id": uid, "data": {"a": 1}}) == \
        {"code": "server", "description": f"Failed to update server data: Server not found: {uid}"}


async def test_server_record_times_are_whole_seconds(conductor: ConductorProcess, admin: Api, uid: str) -> None:
    """servers §1: `created`/`modified` are epoch seconds, whole like every record time."""
    async with agent(conductor, uid):
        server = admin.ok("get_active_server", {"id": uid})["server"]
        assert isinstance(server["created"], int) and isinstance(server["modified"], int)
        updated = admin.ok("update_server", {"id": uid, "title": "Renamed"})["server"]
        assert updated["title"] == "Renamed" and isinstance(updated["modified"], int)


async def test_search_servers_pages_one_row_by_default(conductor: ConductorProcess, admin: Api, uid: str) -> None:
    """core-api.md §4: `limit` defaults to 1 for every `search_*`; `list.length` counts all matches."""
    async with agent(conductor, uid + "a"), agent(conductor, uid + "b"):
        def both() -> bool:
            rows = admin.ok("search_servers", {"query": "*", "limit": 1000})["rows"]
            return {uid + "a", uid + "b"} <= {row["id"] for row in rows}
        wait_for(both, 10, "both servers indexed")
        data = admin.ok("search_servers", {"query": "*"})
        assert len(data["rows"]) == 1 and data["list"]["length"] >= 2
    assert len(admin.ok("search_activity")["rows"]) == 1


def test_satellite_releases_without_a_feed(admin: Api, anon: Api) -> None:
    assert admin.call("get_satellite_releases") == {"code": 0, "releases": ["latest"]}
    assert anon.call("get_satellite_releases")["code"] == "session"


async def test_watch_server_sets_and_cancels_the_state_key(conductor: ConductorProcess, admin: Api,
                                                           uid: str) -> None:
    assert admin.call("watch_server", {"id": uid, "duration": 60}) == \
        {"code": "server", "description": f"Failed to locate server: {uid}"}
    async with agent(conductor, uid):
        assert admin.call("watch_server", {"id": uid})["code"] == "api"
        before = int(time.time())
        assert admin.call("watch_server", {"id": uid, "duration": 600}) == {"code": 0}
        until = admin.ok("get_global_state")["state"]["watches"]["servers"][uid]
        assert before + 600 <= until <= int(time.time()) + 600
        assert _activity(admin, "server_watch", uid)
        admin.ok("watch_server", {"id": uid, "duration": 0})
        assert uid not in admin.ok("get_global_state")["state"]["watches"]["servers"]


def test_watch_group(admin: Api, uid: str) -> None:
    assert admin.call("watch_group", {"id": uid, "duration": 60}) == \
        {"code": "watch", "description": f"Unknown group: {uid}"}
    admin.ok("create_group", {"id": uid, "title": "Watched", "hostname_match": "^$"})
    try:
        admin.ok("watch_group", {"id": uid, "duration": 120})
        assert admin.ok("get_global_state")["state"]["watches"]["groups"][uid] >= int(time.time()) + 119
        assert _activity(admin, "group_watch", uid)
        admin.ok("watch_group", {"id": uid, "duration": 0})
        assert uid not in admin.ok("get_global_state")["state"]["watches"]["groups"]
    finally:
        admin.call("delete_group", {"id": uid})


async def test_upgrade_workers_sends_upgrade_to_online_targets(conductor: ConductorProcess, admin: Api,
                                                               uid: str) -> None:
    assert admin.call("admin_upgrade_workers", {"stagger": 0, "targets": [uid]})["code"] == "api"
    assert admin.call("admin_upgrade_workers", {"release": "latest", "stagger": 0}) == \
        {"code": "admin", "description": "No targets selected for upgrade."}
    assert admin.call("admin_upgrade_workers", {"release": "latest", "stagger": 0, "targets": [uid]}) == \
        {"code": "admin", "description": "No active servers matched your target selection."}
    async with agent(conductor, uid) as ws:
        admin.ok("admin_upgrade_workers", {"release": "v9.9.9", "stagger": 0, "targets": [uid, "no_group"]})
        assert (await _recv(ws, "upgrade"))["data"] == {}
    assert admin.ok("admin_get_config")["overrides"]["satellite.version"] == "v9.9.9"


async def test_historical_monitor_data_starts_at_the_bucket_of_date(conductor: ConductorProcess, admin: Api,
                                                                    uid: str) -> None:
    assert admin.call("get_historical_monitor_data", {"server": uid, "sys": "weekly", "date": 0, "limit": 3}) == \
        {"code": "monitor", "description": "Unknown system: weekly"}
    assert admin.call("get_historical_monitor_data", {"server": uid, "sys": "hourly", "limit": 3})["code"] == "api"
    async with agent(conductor, uid) as ws:
        await ws.send(json.dumps({"cmd": "monitor", "data": {"version": "1.0", "date": time.time(), "server": uid,
                                                             "hostname": uid, "data": {"load": [0.5, 0.4, 0.3]}}}))
        wait_for(lambda: admin.call("get_latest_monitor_data", {"server": uid})["code"] == 0, 10, "the sample")
        now = int(time.time())
        rows = admin.ok("get_historical_monitor_data", {"server": uid, "sys": "hourly", "date": now - 60,
                                                        "limit": 3})["rows"]
        assert len(rows) == 1 and rows[0]["epoch_div"] == rows[0]["date"] // 60 and rows[0]["count"] == 1
        daily = admin.ok("get_historical_monitor_data", {"server": uid, "sys": "daily", "date": now - 600,
                                                         "limit": 10})["rows"]
        assert [r["epoch_div"] for r in daily] == [now // 120]
        assert admin.ok("get_historical_monitor_data", {"server": uid, "sys": "hourly", "date": now - 3600,
                                                        "limit": 10})["rows"] == []


# -- configuration ---------------------------------------------------------------------------------

def test_update_config_takes_env_style_and_new_paths(admin: Api, uid: str) -> None:
    admin.ok("admin_update_config", {"XYOPS_client__company": "Acme " + uid, f"custom_{uid}": 7})
    got = admin.ok("admin_get_config")
    assert got["config"]["client"]["company"] == "Acme " + uid and got["config"][f"custom_{uid}"] == 7
    assert got["overrides"]["XYOPS_client__company"] == "Acme " + uid
    assert admin.call("admin_update_config", {"XYOPS_secret_key": "x"}) == \
        {"code": "api", "description": "Cannot update reserved configuration keys via API."}


def test_update_config_with_no_keys_changes_nothing(admin: Api) -> None:
    """config.md §1.1: sparse and additive, so an empty update is a plain success."""
    before = admin.ok("admin_get_config")["overrides"]
    assert admin.call("admin_update_config", {}) == {"code": 0}
    assert admin.ok("admin_get_config")["overrides"] == before


# -- maintenance -----------------------------------------------------------------------------------

def test_run_optimization(conductor: ConductorProcess, admin: Api, anon: Api) -> None:
    assert anon.call("admin_run_optimization")["code"] == "session"
    got = admin.call("admin_run_optimization")
    if conductor.backend == "postgres":
        assert got == {"code": "admin", "description": "The current storage configuration does not require "
                                                       "optimization."}
        return
    assert got["code"] == 0 and got["id"].startswith("i")
    done = wait_for(lambda: _activity(admin, "internal_job", got["id"]), 30, "the optimization to finish")
    assert done[0]["job"]["code"] == 0 and "No issues found" in done[0]["job"]["details"]


def test_bulk_search_delete(admin: Api, uid: str) -> None:
    assert admin.call("bulk_search_delete", {"query": "*"}) == \
        {"code": "api", "description": "Missing parameter: index"}
    assert admin.call("bulk_search_delete", {"index": "activity"})["code"] == "api"
    assert admin.call("bulk_search_delete", {"index": "nothing", "query": "*"}) == \
        {"code": "api", "description": "Unknown index: nothing"}
    admin.ok("create_tag", {"id": uid, "title": "Doomed " + uid})
    admin.ok("delete_tag", {"id": uid})
    assert len(admin.ok("search_activity", {"query": uid, "limit": 50})["rows"]) >= 2
    got = admin.ok("bulk_search_delete", {"index": "activity", "query": uid})
    assert got["id"].startswith("i")
    wait_for(lambda: not admin.ok("search_activity", {"query": uid, "limit": 50})["rows"], 30, "the records to go")


async def test_servers_and_sockets_in_the_listing_shapes(conductor: ConductorProcess, admin: Api, uid: str) -> None:
    async with agent(conductor, uid):
        data = admin.ok("get_servers")
        assert uid in data["servers"]
        for row in data["masters"].values():
            assert {"id", "online", "master", "date", "version", "ping", "stats"} <= set(row)
        assert any(row["master"] for row in data["masters"].values())
        sockets = admin.ok("admin_stats")["stats"]["sockets"]
        mine = [s for s in sockets if s["server"] == uid]
        assert len(mine) == 1 and mine[0]["id"] == data["servers"][uid]["socket_id"]
        assert {"id", "ip", "type", "auth", "username", "loc", "server", "timeStart", "ping"} <= set(mine[0])
        assert mine[0]["type"] == "server" and mine[0]["auth"] is True and mine[0]["timeStart"] > 0
