"""Real agent processes against real conductors on loopback.

The local satellite of the folder's conductor, an agent started by the test, a backup
conductor that redirects, a silent (stopped) agent, a conductor restart, and a shell job
dispatched end to end. The restart test comes last: it restarts the shared conductor.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fleet_peer import AgentProcess, agent_config, wait_until

from harness import Api, ConductorProcess


def _online(admin: Api, sid: str) -> bool:
    return admin.call("get_active_server", {"id": sid}).get("code") == 0


@pytest.fixture(scope="module")
def agent(fleet_conductor: ConductorProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    config = agent_config(tmp_path_factory.mktemp("agent") / "config.json", port=fleet_conductor.port,
                          server_id="realagent1")
    proc = AgentProcess(config).start()
    yield proc
    proc.stop()


def test_real_agent_joins_and_reports_metrics(agent: AgentProcess, fleet_admin: Api) -> None:
    wait_until(lambda: _online(fleet_admin, "realagent1"), 30, f"the agent to join:\n{agent.log_text()}")
    server = fleet_admin.ok("get_active_server", {"id": "realagent1"})["server"]
    info = server["info"]
    assert server["hostname"] and info["os"]["platform"] and info["memory"]["total"] > 0
    assert info["cpu"].get("cores") and info["satellite"] and "main" in server["groups"]
    data = wait_until(lambda: fleet_admin.call("get_server", {"id": "realagent1"}).get("data"), 30,
                      "the first minute sample (sent right after joined)")
    assert data["server"] == "realagent1" and data["data"]["memory"]["total"] > 0
    rows = wait_until(lambda: fleet_admin.ok("get_quickmon_data", {"server": "realagent1"})["servers"]
                      .get("realagent1"), 15, "per-second samples")
    assert rows[-1]["_qm_mem_used"] > 0 and "_qm_cpu_usage" in rows[-1]
    status = subprocess.run([sys.executable, "-m", "sundial", "satellite", "status", "--config", str(agent.config)],
                            capture_output=True, text=True, timeout=60)
    assert status.returncode == 0 and "running" in status.stdout


def test_silent_agent_goes_offline_then_comes_back(agent: AgentProcess, fleet_admin: Api) -> None:
    wait_until(lambda: _online(fleet_admin, "realagent1"), 30, "the agent online")
    agent.signal(signal.SIGSTOP)
    try:
        wait_until(lambda: not _online(fleet_admin, "realagent1"), 20, "the stopped agent to be dropped")
    finally:
        agent.signal(signal.SIGCONT)
    wait_until(lambda: _online(fleet_admin, "realagent1"), 30, f"the agent to reconnect:\n{agent.log_text()}")


def test_local_satellite_is_online_and_restarted(fleet_conductor: ConductorProcess, fleet_admin: Api) -> None:
    wait_until(lambda: _online(fleet_admin, "local"), 40, "the local satellite")
    config = fleet_conductor.home / "satellite" / "config.json"
    assert oct(config.stat().st_mode & 0o777) == "0o600"
    pid_file = fleet_conductor.home / "satellite" / "pid.txt"
    pid = int(pid_file.read_text())
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not _online(fleet_admin, "local"), 20, "the killed local satellite to drop")
    wait_until(lambda: pid_file.exists() and int(pid_file.read_text() or 0) not in (0, pid), 30,
               "the supervisor to start a new local satellite")
    wait_until(lambda: _online(fleet_admin, "local"), 30, "the restarted local satellite")


def test_backup_conductor_redirects_to_primary(fleet_conductor: ConductorProcess, fleet_admin: Api,
                                               tmp_path: Path) -> None:
    backup = ConductorProcess(home=tmp_path / "backup", settings={
        "WebServer.bind_address": "127.0.0.2", "testing.not_primary": True, "testing.primary_host": "127.0.0.1"})
    backup.port, backup.url = fleet_conductor.port, f"http://127.0.0.2:{fleet_conductor.port}"
    backup.start(timeout=60)
    config = agent_config(tmp_path / "agent" / "config.json", port=fleet_conductor.port, server_id="redirected1",
                          host="127.0.0.2")
    proc = AgentProcess(config).start()
    try:
        wait_until(lambda: _online(fleet_admin, "redirected1"), 40, f"the redirected agent:\n{proc.log_text()}")
        assert "redirected to primary conductor 127.0.0.1" in proc.log_text()
    finally:
        proc.stop()
        backup.cleanup()


def test_shell_event_runs_end_to_end_on_a_satellite(agent: AgentProcess, fleet_admin: Api) -> None:
    wait_until(lambda: _online(fleet_admin, "realagent1"), 30, "the agent online")
    event = fleet_admin.ok("create_event", {
        "title": "Fleet e2e", "enabled": True, "category": "general", "plugin": "shellplug",
        "targets": ["realagent1"], "algo": "random", "params": {"script": "#!/bin/sh\necho hello-from-$JOB_ID\n"
                                                     "echo '{\"xy\":1,\"serverData\":{\"last_e2e\":\"ok\"}}'\n"},
        "triggers": [{"type": "manual", "enabled": True}]})["event"]
    try:
        job_id = fleet_admin.ok("run_event", {"id": event["id"]})["id"]
        job = wait_until(lambda: (fleet_admin.ok("get_job", {"id": job_id})["job"] or {}).get("final") and
                         fleet_admin.ok("get_job", {"id": job_id})["job"], 60, "the job to finish")
        assert job["server"] == "realagent1" and job["code"] == 0, job
        log = fleet_admin.http.get("/api/app/get_job_log/v1", params={"id": job_id},
                                   headers=fleet_admin.headers).text
        assert f"hello-from-{job_id}" in log
        wait_until(lambda: (fleet_admin.ok("get_active_server", {"id": "realagent1"})["server"].get("userData") or {})
                   .get("last_e2e") == "ok", 10, "the job's serverData on its server")
    finally:
        fleet_admin.call("delete_event", {"id": event["id"]})


def test_agents_reconnect_after_conductor_restart(fleet_conductor: ConductorProcess, agent: AgentProcess,
                                                  fleet_admin: Api) -> None:
    wait_until(lambda: _online(fleet_admin, "realagent1"), 30, "the agent online before the restart")
    fleet_conductor.stop()
    time.sleep(1)
    assert agent.proc is not None and agent.proc.poll() is None, "the agent outlives its conductor"
    fleet_conductor.start(timeout=60)
    wait_until(lambda: _online(fleet_admin, "realagent1"), 40, f"the agent to reconnect:\n{agent.log_text()}")
    wait_until(lambda: _online(fleet_admin, "local"), 40, "the local satellite after the restart")
    assert fleet_admin.ok("get_server", {"id": "realagent1"})["online"] is True
