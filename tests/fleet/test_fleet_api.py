"""Server verbs and the satellite install endpoints, over HTTP against the folder's conductor,
including a real run of the one-line installer into a temporary folder.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

import httpx
import pytest
from fleet_peer import SECRET, ScriptedAgent, async_wait_until, wait_until

from harness import Api, ConductorProcess, login
from sundial import protocol as p


def _get(conductor: ConductorProcess, method: str, params: dict, headers: dict | None = None) -> httpx.Response:
    return httpx.get(f"{conductor.url}/api/app/satellite/{method}", params=params, headers=headers or {}, timeout=120)


def test_satellite_token_and_config(fleet_conductor: ConductorProcess, fleet_admin: Api) -> None:
    made = fleet_admin.ok("get_satellite_token", {"title": "Bulk", "groups": []})
    assert len(made["token"]) == 64 and made["version"]
    assert made["base_url"] == f"http://127.0.0.1:{fleet_conductor.port}"
    resp = _get(fleet_conductor, "config", {"t": made["token"]})
    assert resp.status_code == 200 and "config.json" in resp.headers["content-disposition"]
    doc = resp.json()
    assert doc["auth_token"] == p.server_auth_token(doc["server_id"], SECRET)
    assert doc["hosts"] == ["127.0.0.1"] and doc["port"] == fleet_conductor.port
    assert doc["initial"] == {"title": "Bulk"}, "empty groups are dropped from the token's fields"
    again = _get(fleet_conductor, "config", {"t": made["token"]}).json()
    assert again["server_id"] != doc["server_id"], "every download mints a new server"


def test_install_and_upgrade_scripts_name_the_url_they_were_fetched_from(fleet_conductor: ConductorProcess,
                                                                         fleet_admin: Api) -> None:
    token = fleet_admin.ok("get_satellite_token")["token"]
    script = _get(fleet_conductor, "install", {"t": token}, {"Host": "workers.example.test:7552"}).text
    assert 'BASE_URL="http://workers.example.test:7552"' in script and f'TOKEN="{token}"' in script
    assert script.startswith("#!/bin/sh")
    upgrade = _get(fleet_conductor, "upgrade", {"t": token, "s": "someserver"},
                   {"Host": "workers.example.test:8443", "X-Forwarded-Proto": "https"}).text
    assert 'BASE_URL="https://workers.example.test:8443"' in upgrade and 'SERVER_ID="someserver"' in upgrade
    windows = _get(fleet_conductor, "install", {"t": token, "os": "windows"}).text
    assert "not supported" in windows


def test_install_endpoints_refuse_vaguely(fleet_conductor: ConductorProcess, fleet_admin: Api) -> None:
    for params in ({"t": "0" * 64}, {"t": "bad token!"}, {}, {"t": p.server_auth_token("nosuch", SECRET),
                                                               "s": "nosuch"}):
        data = _get(fleet_conductor, "config", params).json()
        assert data == {"code": "satellite", "description": "Access denied."}, params
    token = fleet_admin.ok("get_satellite_token")["token"]
    assert _get(fleet_conductor, "nonsense", {"t": token}).json()["description"] == "Invalid satellite API method."
    short = fleet_admin.ok("get_satellite_token", {"expires": 1})["token"]
    time.sleep(1.5)
    assert _get(fleet_conductor, "config", {"t": short}).json()["code"] == "satellite", "expired tokens are dead"


def test_api_key_with_add_servers_installs_in_bulk(fleet_conductor: ConductorProcess, fleet_admin: Api) -> None:
    adder = fleet_admin.ok("create_api_key", {"title": "Autoscaler", "privileges": {"add_servers": True}})
    other = fleet_admin.ok("create_api_key", {"title": "Reader", "privileges": {"run_jobs": True}})
    ids = {_get(fleet_conductor, "config", {"t": adder["plain_key"]}).json()["server_id"] for _ in range(3)}
    assert len(ids) == 3
    assert _get(fleet_conductor, "config", {"t": other["plain_key"]}).json()["code"] == "satellite"


def test_server_auth_token_may_fetch_its_upgrade(fleet_conductor: ConductorProcess) -> None:
    token = p.server_auth_token("local", SECRET)
    wait_until(lambda: _get(fleet_conductor, "upgrade", {"t": token, "s": "local"}).text.startswith("#!/bin/sh"),
               40, "the local satellite to be online")
    assert _get(fleet_conductor, "upgrade", {"t": token, "s": "other"}).json()["code"] == "satellite"


def test_core_bundle_holds_the_agent_and_its_dependencies(fleet_conductor: ConductorProcess,
                                                          fleet_admin: Api) -> None:
    token = fleet_admin.ok("get_satellite_token")["token"]
    resp = _get(fleet_conductor, "core", {"t": token, "os": "linux", "arch": "x64"})
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/gzip"
    with tarfile.open(fileobj=io.BytesIO(resp.content)) as archive:
        names = archive.getnames()
        manifest = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
    wheels = [n for n in names if n.startswith("wheels/")]
    assert any(n.startswith("wheels/sundial_ops-") for n in wheels)
    for dep in ("websockets", "psutil", "pydantic", "orjson"):
        assert any(n.startswith(f"wheels/{dep}-") for n in wheels), dep
    assert "agent_setup.py" in names and manifest["python"]


def test_one_line_install_runs_an_agent(fleet_conductor: ConductorProcess, fleet_admin: Api, tmp_path: Path) -> None:
    token = fleet_admin.ok("get_satellite_token", {"title": "Installed by script"})["token"]
    target = tmp_path / "sat"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("SUNDIAL_", "VIRTUAL_ENV"))},
           "SUNDIAL_SATELLITE_DIR": str(target), "SUNDIAL_SATELLITE_NO_SERVICE": "1"}
    url = f"{fleet_conductor.url}/api/app/satellite/install?t={token}"
    run = subprocess.run(["sh", "-c", f'curl -s "{url}" | sh'], env=env, capture_output=True, text=True,
                         timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr
    config = json.loads((target / "config.json").read_text())
    assert oct((target / "config.json").stat().st_mode & 0o777) == "0o600"
    launcher = target / "venv" / "bin" / "sundial-satellite"
    try:
        server = wait_until(lambda: fleet_admin.call("get_active_server", {"id": config["server_id"]}).get("server"),
                            40, f"the installed agent to join:\n{run.stdout}")
        assert server["title"] == "Installed by script"
        again = subprocess.run(["sh", "-c", f'curl -s "{url}" | sh'], env=env, capture_output=True, text=True,
                               timeout=60)
        assert again.returncode != 0 and "already installed" in again.stderr
    finally:
        subprocess.run([str(launcher), "stop", "--config", str(target / "config.json")], timeout=60,
                       capture_output=True)


async def test_delete_server_flows(ws_url: str, fleet_admin: Api) -> None:
    sid = "t" + uuid.uuid4().hex[:12]
    async with ScriptedAgent(ws_url) as agent:
        await agent.join("doomed-host", sid)
        fleet_admin.ok("delete_server", {"id": sid})
        await agent.expect("uninstall")
    await async_wait_until(lambda: fleet_admin.call("get_active_server", {"id": sid}).get("code") != 0, 10, "leave")
    refused = fleet_admin.call("delete_server", {"id": sid})
    assert refused["code"] == "server" and sid in refused["description"]
    fleet_admin.ok("delete_server", {"id": sid, "history": True})
    assert fleet_admin.call("update_server", {"id": sid, "title": "x"})["code"] == "server"
    assert fleet_admin.ok("delete_server", {"id": "neverexisted", "history": True})["code"] == 0


async def test_group_limited_users_see_their_servers_only(fleet_conductor: ConductorProcess, ws_url: str,
                                                          fleet_admin: Api) -> None:
    gid, sid = "g" + uuid.uuid4().hex[:10], "t" + uuid.uuid4().hex[:12]
    fleet_admin.ok("create_group", {"id": gid, "title": "Limited", "hostname_match": "^limited-"})
    name = "u" + uuid.uuid4().hex[:8]
    fleet_admin.ok("admin_create", {"username": name, "password": "pw", "email": "l@x.y", "full_name": "L",
                                    "privileges": {"update_servers": True}, "groups": [gid]}, ns="user")
    user = login(fleet_conductor.url, name, "pw")
    try:
        async with ScriptedAgent(ws_url) as agent:
            await agent.join("limited-01", sid)
            seen = {r["id"] for r in user.ok("get_active_servers")["rows"]}
            assert sid in seen and "local" not in seen
            assert user.call("get_active_server", {"id": "local"})["code"] == "access"
            before = fleet_admin.ok("get_active_server", {"id": sid})["server"]["groups"]
            assert gid in before
            refused = user.call("update_server", {"id": sid, "groups": ["main"]})
            assert refused["code"] == "access"
            assert fleet_admin.ok("get_active_server", {"id": sid})["server"]["groups"] == before
    finally:
        user.close()
        fleet_admin.call("delete_group", {"id": gid})


def test_server_verbs_check_their_input(fleet_admin: Api) -> None:
    assert fleet_admin.call("get_server", {"id": "Bad Id"})["code"] == "api"
    assert fleet_admin.call("get_active_server", {"id": "nosuchserver"})["code"] == "notfound"
    assert fleet_admin.call("update_server", {"id": "local", "maxJobs": -1})["code"] == "api"
    assert fleet_admin.call("update_server", {"id": "local", "groups": "notalist"})["code"] == "api"
    servers = fleet_admin.ok("get_servers")
    assert "local" in servers["servers"] and "127.0.0.1" in servers["masters"]


@pytest.mark.parametrize("verb", ["get_active_servers", "get_servers", "get_quickmon_data"])
def test_read_verbs_need_a_session(fleet_conductor: ConductorProcess, verb: str) -> None:
    assert httpx.post(f"{fleet_conductor.url}/api/app/{verb}/v1", json={}).json()["code"] == "session"


async def test_search_servers_finds_online_and_offline_records(ws_url: str, fleet_admin: Api) -> None:
    sid = "t" + uuid.uuid4().hex[:12]
    host = f"searchable-{sid}.example"
    async with ScriptedAgent(ws_url) as agent:
        await agent.join(host, sid)

        def found(query: str) -> list:
            return fleet_admin.ok("search_servers", {"query": query, "limit": 10})["rows"]

        rows = await async_wait_until(lambda: found(f"keywords:{host}"), 10, "the joined server in search")
        assert rows[0]["id"] == sid and rows[0]["online"] is True
    await async_wait_until(lambda: found(f"{host}") and not found(f"{host}")[0]["online"], 10,
                           "the record to say offline")
    await async_wait_until(lambda: any(r["id"] == "local" for r in found("os_platform:linux groups:main")), 40,
                           "the local satellite's record")
    assert fleet_admin.call("search_servers", {"query": "cpu_cores:>>2"})["code"] == "api"


def test_update_server_data_merges_or_replaces(fleet_admin: Api) -> None:
    wait_until(lambda: fleet_admin.call("get_active_server", {"id": "local"}).get("code") == 0, 40, "local")
    fleet_admin.ok("update_server_data", {"id": "local", "data": {"replace": True}, "replace": True})
    assert fleet_admin.ok("update_server_data", {"id": "local", "data": {"rack": "r1"}})["data"] == \
        {"replace": True, "rack": "r1"}
    assert fleet_admin.ok("update_server_data", {"id": "local", "userData": {"x": 1}, "replace": True})["data"] == \
        {"x": 1}
    assert fleet_admin.ok("get_active_server", {"id": "local"})["server"]["userData"] == {"x": 1}
    assert fleet_admin.call("update_server_data", {"id": "local"})["code"] == "api"
