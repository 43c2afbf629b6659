"""Helpers for fleet tests: a scripted in-process agent speaking the real protocol, and real agents.

The scripted agent (:class:`ScriptedAgent`) lets a test send exactly the frames it wants,
well-formed or not; :class:`AgentProcess` runs the real satellite as a child process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from sundial import protocol as p

SECRET = "f1ee7" + "0" * 54 + "5ec7e"  # 64 hex: the direct rotation API needs that form


class ScriptedAgent:
    """One WebSocket to a conductor; frames in and out under the test's control."""

    def __init__(self, url: str, *, answer_echoes: bool = True) -> None:
        self.url = url
        self.answer_echoes = answer_echoes
        self.ws: ClientConnection | None = None
        self.inbox: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self.closed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ScriptedAgent:
        self.ws = await connect(self.url, max_size=p.MAX_FRAME_BYTES, proxy=None, ping_interval=None)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                frame = p.decode_frame(raw)
                if frame.cmd == "echo" and self.answer_echoes:
                    await self.send("echoback", frame.data)
                    continue
                await self.inbox.put((frame.cmd, frame.data))
        except ConnectionClosed:
            pass
        finally:
            self.closed.set()

    async def send(self, cmd: str, data: Any) -> None:
        await self.send_raw(json.dumps({"cmd": cmd, "data": data}))

    async def send_raw(self, raw: str | bytes) -> None:
        assert self.ws is not None
        await self.ws.send(raw)

    async def expect(self, cmd: str, within: float = 10.0) -> dict[str, Any]:
        """The next frame of kind ``cmd`` (others of no interest are skipped)."""
        deadline = time.monotonic() + within
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no '{cmd}' frame within {within} s")
            got, data = await asyncio.wait_for(self.inbox.get(), left)
            if got == cmd:
                return data

    async def nothing(self, seconds: float) -> list[str]:
        """Frames (other than echoes) received during ``seconds``."""
        await asyncio.sleep(seconds)
        seen = []
        while not self.inbox.empty():
            seen.append(self.inbox.get_nowait()[0])
        return seen

    async def hello(self, hostname: str, server_id: str = "", **extra: Any) -> dict[str, Any]:
        await self.send("hello", {"hostname": hostname, "id": server_id, "info": {"platform": "linux"}, **extra})
        return await self.expect("hello")

    async def join(self, hostname: str, server_id: str, secret: str = SECRET, **extra: Any) -> dict[str, Any]:
        """Full handshake with the server auth token; returns the ``joined`` data."""
        await self.hello(hostname, server_id, **extra)
        await self.send("join", {"token": p.server_auth_token(server_id, secret)})
        return await self.expect("joined")


def agent_config(path: Path, *, port: int, server_id: str, host: str = "127.0.0.1", secret: str = SECRET,
                 **extra: Any) -> Path:
    """Write a real agent's config.json with quick reconnects, for tests."""
    doc = {"hosts": [host], "port": port, "server_id": server_id,
           "auth_token": p.server_auth_token(server_id, secret), "socket_reconnect_delay_sec": 0.5,
           "socket_reconnect_delay_max": 2, "connect_timeout_sec": 3, "docker_enabled": False, **extra}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


class AgentProcess:
    """The real satellite (``python -m sundial.satellite.main start --foreground``) as a child."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> AgentProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SUNDIAL_", "SATELLITE_", "XYSAT_"))}
        log = open(self.config.parent / "console.log", "ab")  # noqa: SIM115 (closed with the process)
        self.proc = subprocess.Popen([sys.executable, "-m", "sundial.satellite.main", "start", "--foreground",
                                      "--config", str(self.config)], stdout=log, stderr=subprocess.STDOUT,
                                     env=env, start_new_session=True)
        log.close()
        return self

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def log_text(self) -> str:
        parts = [self.config.parent / "console.log", self.config.parent / "logs" / "Satellite.log"]
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in parts if p.exists())


def wait_until(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition",
               interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            value = check()
            if value:
                return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


async def async_wait_until(check: Callable[[], Any], within: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = await asyncio.to_thread(check)
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {within:.0f} s waiting for {what}")
