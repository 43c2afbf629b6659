"""The `sundial` command as an operator uses it: start/stop/status, admin tools, bad config."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
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


def _quiet(port: int) -> list[str]:
    return ["--port", str(port), "--set", "local_satellite.enabled=false", "--set", "WebServer.https=false"]


def test_start_on_a_port_another_conductor_holds_fails_and_says_why(fresh_conductor, tmp_path: Path) -> None:
    other = fresh_conductor().start()
    home = tmp_path / "second"
    (home / "logs").mkdir(parents=True)
    (home / "logs" / "console.log").write_text("Traceback from an earlier run: boom\n")
    result = run("start", "--home", str(home), *_quiet(other.port))
    try:
        assert result.returncode == 1 and "started" not in result.stdout
        assert f"port {other.port} is in use" in result.stderr
        assert "earlier run" not in result.stderr  # only this run's console output
        assert f"port {other.port} is in use" in (home / "logs" / "Error.log").read_text()
        assert "conductor started" not in (home / "logs" / "Sundial.log").read_text()
        assert run("status", "--home", str(home)).returncode == 1
    finally:  # a start that timed out on a loaded host may still be coming up: never leave it behind
        run("stop", "--home", str(home))


def test_background_start_ignores_proxies_and_restart_and_status_keep_the_flags(tmp_path: Path) -> None:
    home, port = tmp_path / "home", free_port()
    proxies = {name: "http://127.0.0.1:9" for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")}
    started = run("start", "--home", str(home), *_quiet(port), env=proxies)
    try:
        assert started.returncode == 0, started.stderr
        assert f"http://127.0.0.1:{port}" in started.stdout and "admin / admin" in started.stdout
        assert f"http://127.0.0.1:{port}" in run("status", "--home", str(home)).stdout
        restarted = run("restart", "--home", str(home), env=proxies)
        assert restarted.returncode == 0, restarted.stderr
        assert "Sundial started" in restarted.stdout and f"http://127.0.0.1:{port}" in restarted.stdout
        assert httpx.post(f"http://127.0.0.1:{port}/api/app/ping/v1").json() == {"code": 0}
        assert not (home / "satellite" / "config.json").exists()  # local_satellite.enabled=false kept
        assert f"http://127.0.0.1:{port}" in run("status", "--home", str(home)).stdout
    finally:
        run("stop", "--home", str(home))


def _foreground_banner(home: Path, port: int) -> str:
    proc = subprocess.Popen([*SUNDIAL, "start", "--foreground", "--home", str(home), *_quiet(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Logs: "):
                break
    finally:
        proc.terminate()
        proc.wait(30)
    return "".join(lines)


def test_foreground_start_prints_a_banner_when_ready(tmp_path: Path) -> None:
    home, port = tmp_path / "home", free_port()
    text = _foreground_banner(home, port)
    assert f"is ready at http://127.0.0.1:{port}" in text and "admin / admin" in text
    assert str(home / "logs") in text
    assert run("admin", "reset-password", "admin", "--password", "Not-the-default-1", "--home",
               str(home)).returncode == 0
    assert "admin / admin" not in _foreground_banner(home, port)


def test_data_without_its_key_is_refused_and_no_key_is_generated(fresh_conductor, tmp_path: Path) -> None:
    first = fresh_conductor().start()
    first.stop()
    key = json.loads((first.home / "conf" / "overrides.json").read_text())["secret_key"]
    fingerprint = run("key", "verify", "--home", str(first.home)).stdout.split("fingerprint ")[1][:16]
    home = tmp_path / "copy"
    shutil.copytree(first.home / "data", home / "data")
    refused = run("start", "--foreground", "--home", str(home), *_quiet(free_port()))
    assert refused.returncode == 1
    assert "No secret_key is configured" in refused.stderr and fingerprint in refused.stderr
    assert "SUNDIAL_secret_key" in refused.stderr and "SUNDIAL_SECRET_KEY_FILE" in refused.stderr
    assert not (home / "conf" / "overrides.json").exists()
    # a wrong key left in overrides.json by an older version beats the environment: say so
    (home / "conf" / "overrides.json").write_text(json.dumps({"secret_key": "ab" * 32}))
    shadowed = run("start", "--foreground", "--home", str(home), *_quiet(free_port()),
                   env={"SUNDIAL_secret_key": key})
    assert shadowed.returncode == 1 and "takes precedence" in shadowed.stderr
    (home / "conf" / "overrides.json").unlink()
    fresh_conductor(home=home, env={"SUNDIAL_secret_key": key}).start()  # the right key opens it


def test_first_start_writes_the_masters_list(fresh_conductor) -> None:
    proc = fresh_conductor().start()
    masters = json.loads((proc.home / "conf" / "masters.json").read_text())["masters"]
    assert masters == [socket.gethostname().lower()]


def test_satellite_token_refuses_unknown_servers_unless_forced(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"SUNDIAL_secret_key": "token-test-key"}
    refused = run("key", "satellite-token", "no-such-server", "--home", str(home), env=env)
    assert refused.returncode == 1 and "No server with id 'no-such-server'" in refused.stderr
    forced = run("key", "satellite-token", "no-such-server", "--force", "--home", str(home), env=env)
    assert forced.returncode == 0
    assert forced.stdout.strip() == hashlib.sha256(b"no-such-servertoken-test-key").hexdigest()


def test_help_wraps_paragraphs_and_shows_no_type_on_flags() -> None:
    texts = {tuple(c): run(*c, "--help").stdout
             for c in (["start"], ["restart"], ["import"], ["key", "rotate"], ["key", "show-pending"])}
    assert all("<bool>" not in text and "--home" in text for text in texts.values())
    for command, text in texts.items():
        description = text.split("Options:")[0].split("Arguments:")[0]
        for paragraph in description.split("\n\n")[1:]:  # after the usage line
            lines = [line.strip() for line in paragraph.strip().splitlines()]
            assert all(len(line) > 50 for line in lines[:-1]), (command, lines)  # filled, not cut mid-sentence
    assert "--set KEY=VALUE" in texts[("start",)]
