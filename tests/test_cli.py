"""The `sundial` command as an operator uses it: start/stop/status, admin tools, bad config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from harness import ConductorProcess, free_port, login

SUNDIAL = [sys.executable, "-m", "sundial"]


def run(*args: str, env: dict[str, str] | None = None, input: str | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SUNDIAL_", "XYOPS_"))}
    return subprocess.run([*SUNDIAL, *args], capture_output=True, text=True, timeout=timeout,
                          env={**clean, **(env or {})}, input=input)


def test_version_and_help() -> None:
    assert run("version").stdout.startswith("Sundial ")
    for command in (["start"], ["stop"], ["status"], ["admin", "create-user"], ["admin", "create-api-key"]):
        text = run(*command, "--help").stdout
        assert "--home" in text and len(text) > 200, command


def test_background_start_status_stop(tmp_path: Path) -> None:
    home, port = tmp_path / "home", free_port()
    started = run("start", "--home", str(home), "--port", str(port), "--set", "local_satellite.enabled=false")
    assert started.returncode == 0, started.stderr
    assert f"http://127.0.0.1:{port}" in started.stdout
    assert httpx.post(f"http://127.0.0.1:{port}/api/app/ping/v1").json() == {"code": 0}
    assert "is running" in run("status", "--home", str(home)).stdout
    again = run("start", "--home", str(home), "--port", str(free_port()))
    assert again.returncode == 1 and "already running" in again.stderr
    stopped = run("stop", "--home", str(home))
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    status = run("status", "--home", str(home))
    assert status.returncode == 1 and "not running" in status.stdout
    assert (home / "conf/config.json").exists() and (home / "logs/Sundial.log").exists()


def test_bad_config_stops_startup_naming_key_and_source(tmp_path: Path) -> None:
    result = run("start", "--foreground", "--home", str(tmp_path), env={"SUNDIAL_WebServer__port": "eighty"})
    assert result.returncode == 1
    assert "WebServer.port" in result.stderr and "SUNDIAL_WebServer__port" in result.stderr


def test_admin_commands_work_offline_and_online(fresh_conductor, tmp_path: Path) -> None:
    home = tmp_path / "adminhome"
    made = run("admin", "create-user", "ops.lead", "--password", "Lead-pw-1", "--admin", "--home", str(home))
    assert made.returncode == 0, made.stderr
    key = run("admin", "create-api-key", "Deploys", "-p", "create_tags", "--home", str(home))
    plain = key.stdout.strip().splitlines()[-1]
    proc: ConductorProcess = fresh_conductor(home=home).start()
    api = login(proc.url, "ops.lead", "Lead-pw-1")
    assert api.ok("get_tags")["rows"]
    resp = httpx.post(proc.url + "/api/app/create_tag/v1", json={"title": "cli"}, headers={"X-API-Key": plain})
    assert resp.json()["code"] == 0
    # while it runs: lock the account out, then unlock it from the shell (SIGHUP reload)
    for _ in range(6):
        httpx.post(proc.url + "/api/user/login", json={"username": "ops.lead", "password": "wrong"})
    assert httpx.post(proc.url + "/api/user/login",
                      json={"username": "ops.lead", "password": "Lead-pw-1"}).json()["code"] == "login"
    assert run("admin", "unlock", "ops.lead", "--home", str(home)).returncode == 0
    deadline_ok = False
    for _ in range(50):
        data = httpx.post(proc.url + "/api/user/login", json={"username": "ops.lead", "password": "Lead-pw-1"}).json()
        if data["code"] == 0:
            deadline_ok = True
            break
        import time

        time.sleep(0.1)
    assert deadline_ok
    bad = run("admin", "grant", "ops.lead", "no_such_privilege", "--home", str(home))
    assert bad.returncode == 1 and "Unknown privilege" in bad.stderr


def test_second_foreground_instance_is_refused(fresh_conductor) -> None:
    proc = fresh_conductor().start()
    result = run("start", "--foreground", "--home", str(proc.home), "--port", str(free_port()))
    assert result.returncode == 1 and "still alive" in result.stderr
