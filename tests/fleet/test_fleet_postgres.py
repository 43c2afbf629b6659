"""The fleet's storage paths on PostgreSQL: server upserts, samples, install tokens, search, delete."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from fleet_peer import SECRET, ScriptedAgent, async_wait_until

from harness import Api, ConductorProcess, login, postgres_reachable
from sundial import protocol as p

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pg_conductor() -> Iterator[ConductorProcess]:
    if not postgres_reachable():
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    proc = ConductorProcess("postgres", env={"SUNDIAL_secret_key": SECRET}).start(timeout=60)
    yield proc
    proc.cleanup()


async def test_fleet_on_postgres(pg_conductor: ConductorProcess) -> None:
    admin: Api = login(pg_conductor.url, "admin", "admin")
    sid = "t" + uuid.uuid4().hex[:12]
    try:
        async with ScriptedAgent(f"ws://127.0.0.1:{pg_conductor.port}/") as agent:
            await agent.join("pg-host", sid)
            await agent.send("monitor", {"date": time.time(), "data": {"load": [1, 2, 3]}})
            got = await async_wait_until(lambda: admin.call("get_server", {"id": sid}).get("data"), 10, "sample")
            assert got["data"]["load"] == [1, 2, 3]
            admin.ok("update_server", {"id": sid, "title": "On PG"})
            rows = await async_wait_until(lambda: admin.ok("search_servers", {"query": "pg-host"})["rows"], 10,
                                          "search")
            assert rows[0]["title"] == "On PG"
        await async_wait_until(lambda: admin.call("get_active_server", {"id": sid}).get("code") != 0, 10, "leave")
        admin.ok("delete_server", {"id": sid, "history": True})
        assert admin.ok("search_servers", {"query": "pg-host"})["rows"] == []
        token = admin.ok("get_satellite_token", {"title": "pg"})["token"]
        doc = admin.http.get("/api/app/satellite/config", params={"t": token}).json()
        assert doc["auth_token"] == p.server_auth_token(doc["server_id"], SECRET) and doc["initial"]["title"] == "pg"
    finally:
        admin.close()
