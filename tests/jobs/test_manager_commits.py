"""The job manager's write path on a real SQLite store: what is durable when, and how many commits.

A job that can start at once is stored already as ``starting`` on its server, in the one commit
that also answers ``run_event``; its launch leaves only after that commit. The final record is
stored before the job stops being active (and so before ``get_job`` shows it final).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sundial.jobs.logs import JobLogs
from sundial.jobs.manager import JobManager
from sundial.jobs.store import JobStore
from sundial.logs import LogManager
from sundial.storage.engine import Storage
from sundial.storage.migrate import migrate


class RecordingFleet:
    """One online server; each send records what the database held for the job at that moment."""

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self.sent: list[tuple[str, dict[str, Any], int, int]] = []

    def online_servers(self) -> list[dict[str, Any]]:
        return [{"id": "s1", "hostname": "host1", "groups": ["main"]}]

    def send(self, server_id: str, cmd: str, data: dict[str, Any]) -> bool:
        self.sent.append((cmd, data, self.store.commits, len(self.store._pending)))
        return True


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[JobManager]:
    storage = Storage(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    await migrate(storage)
    logs = LogManager(tmp_path / "logs", columns=["component", "code", "msg"], debug_level=9)
    store = JobStore(storage, logs.logger("jobs"))
    jobs = JobManager(store, JobLogs(tmp_path / "live", tmp_path / "archive"), logs.logger("jobs"))
    jobs.fleet = RecordingFleet(store)
    await jobs.start()
    yield jobs
    await jobs.stop()
    await storage.close()


def job(job_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": job_id, "event": "e1", "category": "general", "plugin": "shellplug", "state": "ready",
            "targets": ["main"], "algo": "random", "limits": [], "actions": [], "params": {}, **extra}


async def until_sent(jobs: JobManager, count: int) -> None:
    fleet = jobs.fleet
    assert isinstance(fleet, RecordingFleet)
    for _ in range(200):
        if len(fleet.sent) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("launch not sent")


async def test_one_commit_stores_the_job_as_starting_before_its_launch(manager: JobManager) -> None:
    await manager.accept(job("j1"))
    row = await manager.store.get("j1")
    assert row is not None and row["state"] == "starting" and row["server"] == "s1", "durable when accepted"
    await until_sent(manager, 1)
    fleet = manager.fleet
    assert isinstance(fleet, RecordingFleet)
    cmd, payload, commits, pending = fleet.sent[0]
    assert cmd == "launch_job" and payload["job"]["id"] == "j1" and payload["job"]["state"] == "active"
    assert commits == 1 and pending == 0, "the launch left after exactly one commit, with nothing unwritten"


async def test_a_job_that_must_wait_is_stored_queued_by_its_one_write(manager: JobManager) -> None:
    limit = [{"type": "job", "enabled": True, "amount": 1}, {"type": "queue", "enabled": True, "amount": 5}]
    await manager.accept(job("j1", limits=limit))
    await until_sent(manager, 1)
    commits = manager.store.commits
    await manager.accept(job("j2", limits=limit))
    assert manager.store.commits == commits + 1
    second = await manager.store.get("j2")
    assert second is not None and second["state"] == "queued" and second["position"] == 1 and not second.get("server")
    assert "job was queued" in second["activity"][-1]["msg"], "the concurrency slot was taken by j1"
    assert (manager.get_active("j2") or {}).get("state") == "queued"


async def test_final_record_is_stored_before_the_job_leaves_the_active_set(manager: JobManager) -> None:
    await manager.accept(job("j1"))
    await until_sent(manager, 1)
    manager.handle_updates("s1", {"j1": {"state": "complete", "code": 0, "description": "ok", "complete": True}})
    for _ in range(200):
        if manager.get_active("j1") is None:
            break
        await asyncio.sleep(0.01)
    row = await manager.store.get("j1")
    assert row is not None and row["final"] and row["state"] == "complete" and row["code"] == 0
    assert manager.get_active("j1") is None


async def test_search_with_fields_matches_whole_documents(manager: JobManager) -> None:
    for job_id in ("j1", "j2"):
        await manager.accept(job(job_id, tags=["a b"]))
    await until_sent(manager, 2)
    manager.handle_updates("s1", {"j1": {"state": "complete", "code": 0, "complete": True},
                                  "j2": {"state": "complete", "code": "err", "description": "bad", "complete": True}})
    for _ in range(200):
        if not manager.active:
            break
        await asyncio.sleep(0.01)
    keys = ["id", "completed", "code", "tags", "nothing"]
    args: dict[str, Any] = {"offset": 0, "limit": 10, "sort_by": "_id", "sort_dir": -1}
    light, total = await manager.store.search("event:e1", fields=keys, **args)
    whole, _total = await manager.store.search("event:e1", **args)
    assert total == 2 and light == [{k: doc.get(k) for k in keys} for doc in whole]
    assert {row["code"] for row in light} == {0, "err"}, "values keep their JSON types"
    odd, _total = await manager.store.search("event:e1", fields=['x"y'], **args)
    assert odd == whole, "keys that are not plain words fall back to whole documents"


def test_job_logs_find_output_of_this_run_and_of_an_earlier_one(tmp_path: Path) -> None:
    live = tmp_path / "live"
    live.mkdir()
    (live / "jold.log").write_text("before the restart\n")
    logs = JobLogs(live, tmp_path / "archive")
    logs.append("jnew", "printed now\n")
    assert logs.finalize("jold", 1 << 20) == (19, "before the restart\n"), "a re-attached job keeps its output"
    assert logs.finalize("jnew", 1 << 20) == (12, "printed now\n")
    assert logs.finalize("jquiet", 1 << 20) == (0, None)
    assert not list(live.iterdir())


async def test_queued_jobs_fill_every_free_slot_once_a_server_is_back(manager: JobManager) -> None:
    fleet = manager.fleet
    assert isinstance(fleet, RecordingFleet)
    servers = fleet.online_servers()
    fleet.online_servers = lambda: []  # type: ignore[method-assign]  # the satellite is away
    limit = [{"type": "job", "enabled": True, "amount": 3}, {"type": "queue", "enabled": True, "amount": 5}]
    for job_id in ("j1", "j2", "j3"):
        await manager.accept(job(job_id, limits=limit))
    for _ in range(200):
        if all((manager.get_active(j) or {}).get("state") == "queued" for j in ("j1", "j2", "j3")):
            break
        await asyncio.sleep(0.01)
    assert [manager.get_active(j)["position"] for j in ("j1", "j2", "j3")] == [1, 2, 3]  # type: ignore[index]
    fleet.online_servers = lambda: servers  # type: ignore[method-assign]
    manager.server_online("s1")
    for _ in range(1500):  # one job at once, the others on the following queue passes
        if len(fleet.sent) >= 3:
            break
        await asyncio.sleep(0.01)
    assert sorted(data["job"]["id"] for _cmd, data, *_ in fleet.sent) == ["j1", "j2", "j3"]
