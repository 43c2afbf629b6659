"""Start real conductor processes for tests: free port, temporary home, SQLite or PostgreSQL.

Tests talk to them over HTTP exactly as users do; nothing in-process is shared.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

PG_HOST, PG_PORT, PG_DB = "127.0.0.1", 5432, "test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_reachable() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1):
            return True
    except OSError:
        return False


def postgres_url() -> str:
    return f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{PG_DB}"


def drop_pg_schema(schema: str) -> None:
    subprocess.run(["psql", "-h", PG_HOST, "-U", "postgres", "-d", PG_DB, "-q", "-c",
                    f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'], capture_output=True, check=False)


class ConductorProcess:
    """A `sundial start --foreground` child process with its own home and port."""

    def __init__(self, backend: str = "sqlite", home: Path | None = None,
                 env: dict[str, str] | None = None, settings: dict[str, Any] | None = None) -> None:
        self.backend = backend
        self.home = home or Path(tempfile.mkdtemp(prefix="sundial-test-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.schema = f"t_{uuid.uuid4().hex[:12]}" if backend == "postgres" else ""
        self.env = dict(env or {})
        self.settings = {"User.use_csrf": "false", "local_satellite.enabled": "false", "WebServer.https": "false",
                         **{k: str(v).lower() if isinstance(v, bool) else str(v)
                            for k, v in (settings or {}).items()}}
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        argv = [sys.executable, "-m", "sundial", "start", "--foreground", "--home", str(self.home),
                "--port", str(self.port)]
        for key, value in self.settings.items():
            argv += ["--set", f"{key}={value}"]
        return argv

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SUNDIAL_", "XYOPS_"))}
        if self.backend == "postgres":
            env["SUNDIAL_Storage__url"] = postgres_url()
            env["SUNDIAL_Storage__schema"] = self.schema
        env.update(self.env)
        return env

    def start(self, timeout: float = 90) -> ConductorProcess:
        self.launch()
        self.wait_ready(timeout)
        return self

    def launch(self) -> ConductorProcess:
        """Start the process without waiting for it to answer (for runs expected to die early)."""
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        self.console = open(self.home / "logs" / "test-console.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(self.command(), env=self.environment(), stdout=self.console,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"conductor exited with {self.proc.returncode}:\n{self.console_text()}")
            try:
                if httpx.post(self.url + "/api/app/ping/v1", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"conductor did not answer within {timeout} s:\n{self.console_text()}")

    def console_text(self) -> str:
        path = self.home / "logs" / "test-console.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def __enter__(self) -> ConductorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def cleanup(self) -> None:
        self.stop()
        if getattr(self, "console", None):
            self.console.close()
        if self.schema:
            drop_pg_schema(self.schema)

    def log_text(self, component: str) -> str:
        path = self.home / "logs" / f"{component}.log"
        return path.read_text(errors="replace") if path.exists() else ""


class Api:
    """A small client of the verb API that returns the decoded envelope."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30)
        self.headers = headers or {}

    def call(self, verb: str, params: dict[str, Any] | None = None, *, ns: str = "app",
             headers: dict[str, str] | None = None, method: str = "POST") -> dict[str, Any]:
        url = f"/api/{ns}/{verb}" + ("/v1" if ns == "app" else "")
        hdrs = {**self.headers, **(headers or {})}
        if method == "GET":
            resp = self.http.get(url, params=params or {}, headers=hdrs)
        else:
            resp = self.http.post(url, json=params or {}, headers=hdrs)
        self.http.cookies.clear()
        data: dict[str, Any] = resp.json()
        return data

    def ok(self, verb: str, params: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        data = self.call(verb, params, **kw)
        assert data.get("code") == 0, f"{verb} failed: {data}"
        return data

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def login(base_url: str, username: str, password: str) -> Api:
    resp = httpx.post(base_url + "/api/user/login", json={"username": username, "password": password})
    data = resp.json()
    assert data["code"] == 0, data
    match = re.search(r"session_id=(\w+)", resp.headers.get("set-cookie", ""))
    assert match
    return Api(base_url, {"X-Session-ID": match.group(1)})


def wait_for(check: Callable[[], Any], timeout: float = 60, what: str = "condition", every: float = 0.05) -> Any:
    """Poll `check` until it returns something truthy and return that; fail naming `what`."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def satellite_node(home: Path, env: dict[str, str] | None = None,
                   settings: dict[str, Any] | None = None) -> Iterator[tuple[ConductorProcess, Api]]:
    """A conductor whose local satellite is online, with an admin session; both gone afterwards."""
    proc = ConductorProcess(home=home, env=env, settings={"local_satellite.enabled": True, **(settings or {})})
    with proc, login(proc.start().url, "admin", "admin") as api:  # a failed start still cleans up
        wait_for(lambda: api.ok("get_active_servers")["rows"], 60, "the local satellite to come online")
        yield proc, api
