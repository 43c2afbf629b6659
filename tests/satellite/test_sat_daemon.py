"""Pid file, status and stop, with a real agent process."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sundial.defaults import DEFAULTS
from sundial.logs import parse_row
from sundial.satellite import logfmt
from sundial.satellite.daemon import AlreadyRunning, PidFile, agent_status, run_agent, stop_agent

LOG_COLUMNS = list(DEFAULTS["log_columns"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config(tmp_path: Path, **extra: object) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"hosts": ["127.0.0.1"], "port": free_port(), "auth_token": "t",
                                "server_id": "s1", **extra}))
    return path


def test_pid_file_is_exclusive_and_released(tmp_path: Path) -> None:
    first = PidFile(tmp_path / "pid.txt")
    first.acquire()
    assert (tmp_path / "pid.txt").read_text().strip() == str(os.getpid())
    with pytest.raises(AlreadyRunning) as info:
        PidFile(tmp_path / "pid.txt").acquire()
    assert info.value.pid == os.getpid()
    first.release()
    assert not (tmp_path / "pid.txt").exists()
    with PidFile(tmp_path / "pid.txt"):
        pass


def test_stale_pid_file_does_not_count_as_running(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    (tmp_path / "pid.txt").write_text("999999\n")
    status = agent_status(cfg)
    assert not status.running and status.pid is None
    assert stop_agent(cfg) is True


def test_refuses_to_start_without_credential(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"hosts": ["127.0.0.1"]}))
    assert run_agent(path, foreground=True) == 1
    assert "auth_token" in capsys.readouterr().err


def _wait(predicate: object, what: str, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_status_and_stop_of_a_running_agent(tmp_path: Path) -> None:
    cfg = config(tmp_path, socket_reconnect_delay_sec=0.1, socket_reconnect_delay_max=0.2)
    code = f"import sys; from sundial.satellite.daemon import run_agent; sys.exit(run_agent({str(cfg)!r}, True))"
    with open(tmp_path / "stderr.txt", "w") as err:
        proc = subprocess.Popen([sys.executable, "-c", code], stderr=err)
    try:
        _wait(lambda: agent_status(cfg).running, "the agent to take its pid file")
        status = agent_status(cfg)
        assert status.pid == proc.pid
        second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert second.returncode == 1 and "already running" in second.stderr
        assert stop_agent(cfg, timeout=60) is True
        assert proc.wait(timeout=60) == 0
        assert not agent_status(cfg).running
        rows = [parse_row(line, LOG_COLUMNS) for line in
                (tmp_path / "logs" / "Satellite.log").read_text().splitlines()]
        assert rows and all(row["component"] == "Satellite" and row["pid"] == str(proc.pid) for row in rows)
        assert rows[0]["category"] == "debug" and rows[0]["msg"].startswith("satellite starting (config ")
        assert rows[-1]["msg"] == "satellite stopped" and float(rows[-1]["hires_epoch"]) > 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_agent_log_rows_use_the_conductors_columns() -> None:
    record = logging.LogRecord("sat", logging.WARNING, __file__, 1, "line one\nline ][ two", None, None)
    record.data = {"server_id": "s1", "é": 1}
    row = parse_row(logfmt.BracketFormatter(hostname="W7").format(record), LOG_COLUMNS)
    assert logfmt.DEFAULT_COLUMNS == LOG_COLUMNS
    assert row["hostname"] == "w7" and row["component"] == "Satellite" and row["category"] == "error"
    assert row["code"] == "warning" and row["msg"] == "line one line  two"
    assert json.loads(row["data"]) == {"server_id": "s1", "é": 1}
