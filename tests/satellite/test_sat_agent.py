"""The agent against a real WebSocket peer: handshake, pushed config, redirect, back-off, jobs across drops."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sat_peer import SECRET, FakeConductor, until, write_agent_config

from sundial import protocol as p
from sundial.satellite.agent import Agent, next_delay
from sundial.satellite.config import ConfigStore


@asynccontextmanager
async def running_agent(config_path: Path) -> AsyncIterator[Agent]:
    agent = Agent(ConfigStore(config_path, environ={}))
    task = asyncio.create_task(agent.run())
    try:
        yield agent
    finally:
        agent.request_stop()
        await asyncio.wait_for(task, 60)


def job_frame(match: Callable[[dict[str, Any]], bool]) -> Callable[[int, str, dict[str, Any]], bool]:
    return lambda _c, cmd, data: cmd == "jobs" and any(isinstance(v, dict) and match(v) for v in data.values())


def test_back_off_doubles_from_base_to_the_cap_and_resets_on_open() -> None:
    delay, waits = 1.0, []
    for _ in range(7):
        pause, delay = next_delay(delay, opened=False, base=1, maximum=30)
        waits.append(pause)
    assert waits == [1, 2, 4, 8, 16, 30, 30]
    assert next_delay(30, opened=True, base=1, maximum=30) == (1, 1)


async def test_handshake_with_auth_token_and_pushed_config(conductor: FakeConductor, tmp_path: Path) -> None:
    cfg = write_agent_config(tmp_path / "config.json", conductor.port, initial={"title": "Unit", "groups": ["g1"]})
    conductor.joined_data = {"config": {"child_kill_timeout": 3, "monitoring_enabled": True}}
    async with running_agent(cfg) as agent:
        hello = await conductor.wait_cmd("hello")
        assert hello["id"] == "satunit1" and hello["hostname"] == agent.hostname
        assert hello["title"] == "Unit" and hello["groups"] == ["g1"], "initial keys ride along"
        assert {"satellite", "arch", "platform", "os", "cpu", "memory"} <= hello["info"].keys()
        join = await conductor.wait_cmd("join")
        assert join["token"] == p.server_auth_token("satunit1", SECRET)
        monitor = await conductor.wait_cmd("monitor")
        assert monitor["server"] == "satunit1" and "memory" in monitor["data"]
        await conductor.send("echo", {"id": "e123", "last_ping_ms": 5})
        assert await conductor.wait_cmd("echoback") == {"id": "e123", "last_ping_ms": 5}
    saved = json.loads(cfg.read_text())
    assert saved["child_kill_timeout"] == 3 and saved["hosts"] == ["127.0.0.1"]
    assert "initial" not in saved, "initial is one-shot: gone after the first save"


async def test_nonce_challenge_and_assigned_server_id(conductor: FakeConductor, tmp_path: Path) -> None:
    cfg = write_agent_config(tmp_path / "config.json", conductor.port, server_id=None, auth_token=None,
                             secret_key=SECRET)
    async with running_agent(cfg) as agent:
        assert (await conductor.wait_cmd("hello"))["id"] == ""
        join = await conductor.wait_cmd("join")
        assert join["token"] == p.nonce_token(conductor.nonces[0], SECRET)
        await conductor.wait_cmd("monitor")
        assert agent.config.server_id == "sassigned1"
    assert json.loads(cfg.read_text())["server_id"] == "sassigned1"


async def test_auth_failure_waits_for_a_config_change(conductor: FakeConductor, tmp_path: Path) -> None:
    conductor.mode = "refuse"
    cfg = write_agent_config(tmp_path / "config.json", conductor.port)
    async with running_agent(cfg) as agent:
        await conductor.wait_cmd("join")
        await until(lambda: agent.auth_failed, "the agent to take the refusal")
        await asyncio.sleep(0.5)  # ten reconnect delays: none may happen
        assert len(conductor.connections) == 1
        conductor.mode = "accept"
        doc = json.loads(cfg.read_text())
        doc["debug_level"] = 6
        cfg.write_text(json.dumps(doc))
        os.utime(cfg, ns=(1, 1))
        await conductor.wait_cmd("monitor", conn=1)


async def test_redirect_to_the_primary(tmp_path: Path) -> None:
    primary = await FakeConductor(host="127.0.0.2").start()
    backup = await FakeConductor(host="127.0.0.1", port=primary.port).start()
    backup.mode, backup.redirect_to = "redirect", "127.0.0.2"
    try:
        cfg = write_agent_config(tmp_path / "config.json", primary.port)
        async with running_agent(cfg) as agent:
            await backup.wait_cmd("hello")
            await primary.wait_cmd("monitor")
            assert agent.connected_host == "127.0.0.2"
        assert json.loads(cfg.read_text())["hosts"] == ["127.0.0.2"], "hosts follow masterData"
    finally:
        await primary.stop()
        await backup.stop()


async def test_keeps_dialling_an_unreachable_conductor(tmp_path: Path, unused_tcp_port: int) -> None:
    cfg = write_agent_config(tmp_path / "config.json", unused_tcp_port)
    async with running_agent(cfg) as agent:
        await until(lambda: agent.dial_attempts >= 3, "three dial attempts")
        assert agent.connections == 0


async def test_bad_frames_from_the_conductor_are_dropped(conductor: FakeConductor, tmp_path: Path) -> None:
    cfg = write_agent_config(tmp_path / "config.json", conductor.port)
    async with running_agent(cfg):
        await conductor.wait_cmd("monitor")
        for raw in ["null", "[1]", '{"cmd":"launch_job","data":{"job":{}}}', '{"cmd":"abort_job"}',
                    '{"cmd":"launch_job","data":{"job":{"id":"__proto__","command":"true"}}}', "{"]:
            await conductor.send_raw(raw)
        await conductor.send("echo", {"id": "still-alive"})
        assert (await conductor.wait_cmd("echoback"))["id"] == "still-alive"
        assert len(conductor.connections) == 1


PY_JOB = (f"{sys.executable} -c \"import json,sys,time,os; job=json.loads(sys.stdin.readline()); "
          "print('started', job['id'], flush=True); print(json.dumps({'xy':1,'progress':0.5}), flush=True); "
          "[time.sleep(0.02) for _ in iter(lambda: os.path.exists(job['params']['gate']), True)]; "
          "print('finished while offline', flush=True); "
          "print(json.dumps({'xy':1,'code':0,'data':{'answer':42}}), flush=True)\"")


async def test_job_survives_a_dropped_connection(conductor: FakeConductor, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    cfg = write_agent_config(tmp_path / "config.json", conductor.port)
    async with running_agent(cfg) as agent:
        await conductor.wait_cmd("monitor")
        await conductor.send("launch_job", {"job": {"id": "jdrop1", "command": PY_JOB, "params": {"gate": str(gate)}},
                                            "details": {}, "sec": {}})
        await conductor.wait_for(lambda _c, cmd, d: cmd == "job_log" and "started jdrop1" in d["text"], "output")
        conductor.mode = "retry"  # the conductor goes away and will not take the agent back yet
        await conductor.connections[0].close()
        await conductor.wait_for(lambda c, cmd, _d: c >= 1 and cmd == "hello", "a reconnect attempt")
        gate.touch()
        await until(lambda: "jdrop1" not in agent.jobs, "the job to finish while offline")
        conductor.mode = "accept"
        conn, _cmd, data = await conductor.wait_for(job_frame(lambda j: j.get("state") == "complete"),
                                                    "the final job update")
        assert conn >= 2, "the outcome was delivered on a later connection"
        final = data["jdrop1"]
        assert final["code"] == 0 and final["data"] == {"answer": 42} and final["complete"] is True
        logs = "".join(d["text"] for c, cmd, d in conductor.frames if cmd == "job_log")
        assert "finished while offline" in logs
        metas = [d["text"] for _c, cmd, d in conductor.frames if cmd == "job_meta"]
        assert any("Lost connection" in m for m in metas)


async def test_abort_job_kills_the_child(conductor: FakeConductor, tmp_path: Path) -> None:
    cfg = write_agent_config(tmp_path / "config.json", conductor.port)
    async with running_agent(cfg):
        await conductor.wait_cmd("monitor")
        await conductor.send("launch_job", {"job": {"id": "jabort1", "command": "sleep 1000", "kill": "all"}})
        await conductor.wait_for(lambda _c, cmd, d: cmd == "job_meta" and "Spawned" in d["text"], "spawn")
        await conductor.send("abort_job", {"id": "jabort1", "reason": "User aborted"})
        _c, _cmd, data = await conductor.wait_for(job_frame(lambda j: j.get("state") == "complete"), "completion")
        assert data["jabort1"]["code"] == "abort" and data["jabort1"]["description"] == "User aborted"


@pytest.fixture
def unused_tcp_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
