"""Start actions and their records, on an in-process conductor whose only stand-in is the fleet.

Until the satellite hub lands no job can start for real, so a minimal fleet object accepts
the launch and the test reports completion through the job manager's own entry point
(`handle_updates`), exactly as the hub will. Everything else is the real conductor.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hook_receivers import Receiver

from sundial.actions.records import WEB_HOOK
from sundial.activity import ClientInfo
from sundial.app import Conductor, make_log_manager
from sundial.config import ensure_secret_key, load_config

SERVER = {"id": "sat1", "hostname": "sat1.example.test", "title": "Sat One", "groups": ["main"], "enabled": True}


class OneServerFleet:
    """Stands in for the satellite hub: one online server that accepts every launch."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def online_servers(self) -> list[dict[str, Any]]:
        return [SERVER]

    def send(self, server_id: str, cmd: str, data: dict[str, Any]) -> bool:
        self.sent.append((server_id, cmd))
        return True


@pytest.fixture
async def conductor(tmp_path: Path) -> AsyncIterator[Conductor]:
    config = load_config(tmp_path, {"local_satellite.enabled": False, "debug_level": 9}, environ={})
    ensure_secret_key(config)
    conductor = Conductor(config, make_log_manager(config))
    await conductor.start()
    conductor.services.jobs.fleet = OneServerFleet()
    yield conductor
    await conductor.stop()
    conductor.logs.close()


async def settle(check: Any, seconds: float = 10) -> Any:
    """Poll: the job manager offers no event for "actions recorded", and tests must not add one."""
    async with asyncio.timeout(seconds):
        while not (value := await check()):  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        return value


async def test_start_actions_land_on_the_final_record_even_when_slower_than_the_job(conductor: Conductor) -> None:
    services = conductor.services
    slow = Receiver(delay=0.6)
    try:
        await services.objects.create(
            WEB_HOOK, services.list("web_hooks"),
            {"id": "slow", "title": "Slow", "method": "POST", "url": slow.url("/start"),
             "body": "{{nice_server}} {{text}}", "enabled": True},
            username="admin", actor="admin", client=ClientInfo())
        event = await services.events.create({
            "id": "ev1", "title": "Nightly", "enabled": True, "category": "general", "plugin": "shellplug",
            "targets": ["main"], "algo": "random", "params": {"script": "true"},
            "triggers": [{"type": "manual", "enabled": True}],
            "actions": [{"enabled": True, "condition": "start", "type": "web_hook", "web_hook": "slow"},
                        {"enabled": True, "condition": "start", "type": "tag", "tags": ["important"]},
                        {"enabled": True, "condition": "start", "type": "disable"},
                        {"enabled": True, "condition": "success", "type": "label", "label": "ok {{job.code}}"}],
        }, is_admin=True, username="admin", actor="admin", client=ClientInfo())
        job = await services.launcher.launch(event, {}, source="user", manual=True)
        job_id = job["id"]

        async def active() -> bool:
            live = services.jobs.get_active(job_id)
            return bool(live and live.get("state") == "active")

        await settle(active)
        app = httpx.ASGITransport(app=conductor.asgi())
        async with httpx.AsyncClient(transport=app, base_url="http://conductor") as http:
            fired = (await http.post("/api/app/fire_job_web_hook/v1", json={
                "job": job_id, "server": "sat1", "web_hook": "slow", "text": "midway"})).json()
            assert fired["code"] == 0 and fired["condition"] == "continue" and fired["elapsed_ms"] > 0
            assert slow.hits[-1].body.endswith(" midway")
            wrong = (await http.post("/api/app/fire_job_web_hook/v1", json={
                "job": job_id, "server": "other", "web_hook": "slow"})).json()
            assert wrong == {"code": "api", "description": "Invalid."}
        services.jobs.handle_updates("sat1", {job_id: {"state": "complete", "code": 0}})

        async def final_with_results() -> dict[str, Any] | None:
            record = await services.jobs.store.get(job_id)
            if record and record.get("final") and all("code" in a for a in record["actions"]):
                return record
            return None

        record = await settle(final_with_results)
        hook, tag, disable, label = record["actions"]
        assert hook["code"] == 0 and hook["description"] == "Success (HTTP 200 OK)"
        assert any(h.body.startswith("Sat One (sat1.example.test) Sundial Job started on Sat One") for h in slow.hits)
        assert tag["code"] == 0 and "important" in record["tags"]
        assert disable["code"] == 0 and record["update_event"] == {"enabled": False}
        assert label["code"] == 0 and record["label"] == "ok 0"

        async def disabled() -> bool:
            return (services.events.get("ev1") or {}).get("enabled") is False

        await settle(disabled)  # the start-time disable took effect once the job completed
    finally:
        slow.close()
