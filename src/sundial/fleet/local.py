"""The local satellite: one agent on the conductor's own machine, so a single box runs jobs.

The conductor writes ``<home>/satellite/config.json`` (server id ``local``, token from the
secret key, loopback address and our port; ``managed_keys`` so that pushed fleet settings
cannot point it elsewhere) and runs the agent as a child process, restarting it with back-off
when it dies and stopping it on shutdown. An agent left running by a conductor that was killed
is adopted instead of fought over: its pid-file lock says it is alive, and it reconnects by
itself; a new child is started only once it is gone. Adopted or not, the agent stops with the
conductor, so a crash followed by a clean stop leaves no agent behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sundial.config import Config, read_json_file, write_json_atomic
from sundial.logs import Logger
from sundial.protocol import server_auth_token
from sundial.satellite.daemon import agent_status

LOCAL_ID = "local"
MANAGED_KEYS = ["auth_token", "airgap"]
BACKOFF_START, BACKOFF_MAX, HEALTHY_AFTER = 1.0, 60.0, 60.0
ADOPT_POLL_SEC = 5.0


def local_address(config: Config) -> str:
    """Where the agent dials: the bound address, or loopback when we listen everywhere."""
    bound = str(config.get("WebServer.bind_address") or "")
    return "127.0.0.1" if bound in ("", "0.0.0.0", "::", "*") else bound


def agent_environment() -> dict[str, str]:
    """The conductor's environment minus its own settings: ``SUNDIAL_secret_key`` and friends must
    never reach the agent, which hands its environment down to every job."""
    return {k: v for k, v in os.environ.items() if not k.upper().startswith(("SUNDIAL_", "XYOPS_"))}


class LocalSatellite:
    """Writes the local agent's config and supervises its process."""

    def __init__(self, config: Config, log: Logger, *, secret_key: Callable[[], str]) -> None:
        self.config = config
        self.log = log
        self.secret_key = secret_key
        self.dir = config.home / "satellite"
        self.config_file = self.dir / "config.json"
        self.proc: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self.adopted_pid: int | None = None  # an agent left by a killed conductor, watched not owned
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def enabled(self) -> bool:
        return bool(self.config.get("local_satellite.enabled", True))

    def write_config(self) -> Path:
        """Refresh our keys in the file, keeping anything an operator added."""
        self.dir.mkdir(parents=True, exist_ok=True)
        doc: dict[str, Any] = read_json_file(self.config_file) if self.config_file.exists() else {}
        address = local_address(self.config)
        doc.update(hosts=[address], host=address, port=int(self.config.get("WebServer.port")), secure=False,
                   server_id=LOCAL_ID, auth_token=server_auth_token(LOCAL_ID, self.secret_key()),
                   airgap=self.config.get("airgap") or {}, managed_keys=MANAGED_KEYS)
        for key, value in (("pid_file", "pid.txt"), ("log_dir", "logs"), ("temp_dir", "temp")):
            doc.setdefault(key, value)
        doc.pop("secret_key", None)
        write_json_atomic(self.config_file, doc, mode=0o600)
        return self.config_file

    def start(self) -> None:
        if self.enabled:
            self.write_config()
            self._task = asyncio.create_task(self._supervise())

    async def stop(self, grace: float = 20.0) -> None:
        """SIGTERM the agent (it aborts its jobs first), SIGKILL it if it overstays ``grace`` seconds."""
        self._stopping = True
        await self._stop_adopted(grace)
        proc = self.proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), grace)
            except TimeoutError:
                self.log.error("local_satellite", f"Local satellite (pid {proc.pid}) ignored SIGTERM; killing it")
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _stop_adopted(self, grace: float) -> None:
        """The adopted agent is no child of ours to wait on: signal it and watch its pid-file lock."""
        status = await asyncio.to_thread(agent_status, self.config_file) if self.adopted_pid else None
        pid = self.adopted_pid
        if status is None or not status.running or pid is None or status.pid != pid:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not (await asyncio.to_thread(agent_status, self.config_file)).running:
                return
            await asyncio.sleep(0.1)
        self.log.error("local_satellite", f"Adopted local satellite (pid {pid}) ignored SIGTERM; killing it")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def command(self) -> list[str]:
        return [sys.executable, "-m", "sundial.satellite.main", "start", "--foreground",
                "--config", str(self.config_file)]

    async def _supervise(self) -> None:
        delay = BACKOFF_START
        while not self._stopping:
            if await self._adopted():
                continue
            started = time.monotonic()
            code = await self._run_once()
            if self._stopping:
                return
            if time.monotonic() - started >= HEALTHY_AFTER:
                delay = BACKOFF_START
            self.restarts += 1
            self.log.error("local_satellite", f"Local satellite exited with code {code}; restarting in {delay:.0f} s")
            await asyncio.sleep(delay)
            delay = min(BACKOFF_MAX, delay * 2)

    async def _adopted(self) -> bool:
        """An agent from a previous conductor still holds the pid file: let it be, look again later."""
        status = await asyncio.to_thread(agent_status, self.config_file)
        if not status.running:
            return False
        self.log.debug(3, f"Local satellite already running (pid {status.pid}); adopting it")
        self.adopted_pid = status.pid
        while not self._stopping:
            if not (await asyncio.to_thread(agent_status, self.config_file)).running:
                break
            await asyncio.sleep(ADOPT_POLL_SEC)
        if not self._stopping:
            self.adopted_pid = None
        return True

    async def _run_once(self) -> int | None:
        log_file = self.dir / "logs" / "console.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(log_file, "ab") as out:  # noqa: ASYNC230 (opening a log file does not block)
            self.proc = await asyncio.create_subprocess_exec(
                *self.command(), stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.STDOUT,
                start_new_session=True, cwd=str(self.dir), env=agent_environment())
        self.log.debug(2, f"Started the local satellite (pid {self.proc.pid})")
        return await self.proc.wait()
