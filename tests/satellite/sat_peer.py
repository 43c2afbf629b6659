"""A tiny real WebSocket peer that plays the conductor's side of the handshake, for agent tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from sundial import protocol as p

SECRET = "UNIT_TEST"


class FakeConductor:
    """Records every frame and answers hello/join per ``mode`` (accept, redirect, retry, refuse)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self.mode = "accept"
        self.redirect_to = ""
        self.assign_id = "sassigned1"
        self.joined_data: dict[str, Any] = {}
        self.frames: list[tuple[int, str, dict[str, Any]]] = []
        self.connections: list[ServerConnection] = []
        self.nonces: dict[int, str] = {}
        self.hellos: dict[int, dict[str, Any]] = {}
        self._changed = asyncio.Condition()
        self._server: Server | None = None

    async def start(self) -> FakeConductor:
        self._server = await serve(self._handle, self.host, self.port, max_size=p.MAX_FRAME_BYTES)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, ws: ServerConnection) -> None:
        conn = len(self.connections)
        self.connections.append(ws)
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                frame = p.decode_frame(raw)
                await self._record(conn, frame)
                await self._answer(ws, conn, frame)

    async def _record(self, conn: int, frame: p.Frame) -> None:
        async with self._changed:
            self.frames.append((conn, frame.cmd, frame.data))
            self._changed.notify_all()

    async def _answer(self, ws: ServerConnection, conn: int, frame: p.Frame) -> None:
        if frame.cmd == "hello":
            self.hellos[conn] = frame.data
            if self.mode == "redirect":
                return await ws.send(p.encode_frame("redirect", {"host": self.redirect_to}))
            if self.mode == "retry":
                return await ws.send(p.encode_frame("retry", {}))
            self.nonces[conn] = p.new_nonce()
            server_id = frame.data.get("id") or self.assign_id
            await ws.send(p.encode_frame("hello", {"nonce": self.nonces[conn], "id": server_id}))
        elif frame.cmd == "join":
            hello = self.hellos.get(conn, {})
            server_id = hello.get("id") or self.assign_id
            ok = p.verify_join_token(frame.data["token"], nonce=self.nonces.get(conn, ""), server_id=server_id,
                                     secret_key=SECRET)
            if not ok or self.mode == "refuse":
                return await ws.send(p.encode_frame("auth_failure", {"description": "Invalid authentication token."}))
            data = {"config": {}, "masterData": {"masters": [self.host]}, "groups": ["main"], "plugins": [],
                    "commands": [], "numServers": 1, "features": {"api_finish_job": True}, **self.joined_data}
            await ws.send(p.encode_frame("joined", data))

    async def send(self, cmd: str, data: dict[str, Any], conn: int = -1) -> None:
        await self.connections[conn].send(p.encode_frame(cmd, data))

    async def send_raw(self, raw: str, conn: int = -1) -> None:
        await self.connections[conn].send(raw)

    async def wait_for(self, match: Callable[[int, str, dict[str, Any]], bool], what: str,
                       limit: float = 30.0) -> tuple[int, str, dict[str, Any]]:
        """The first recorded frame that matches; waits for it (the limit only catches hangs)."""
        async def find() -> tuple[int, str, dict[str, Any]]:
            async with self._changed:
                while True:
                    for item in self.frames:
                        if match(*item):
                            return item
                    await self._changed.wait()
        try:
            return await asyncio.wait_for(find(), limit)
        except TimeoutError:
            seen = [(c, cmd) for c, cmd, _ in self.frames]
            raise AssertionError(f"never received {what}; frames so far: {seen[-30:]}") from None

    async def wait_cmd(self, cmd: str, conn: int | None = None, limit: float = 30.0) -> dict[str, Any]:
        _c, _cmd, data = await self.wait_for(lambda c, name, _d: name == cmd and (conn is None or c == conn),
                                             f"'{cmd}'", limit)
        return data


def write_agent_config(path: Path, port: int, **extra: Any) -> Path:
    doc = {"hosts": ["127.0.0.1"], "port": port, "server_id": "satunit1",
           "auth_token": p.server_auth_token("satunit1", SECRET), "socket_reconnect_delay_sec": 0.05,
           "socket_reconnect_delay_max": 0.2, "connect_timeout_sec": 5, "child_kill_timeout": 2,
           "quickmon_enabled": False, **extra}
    doc = {k: v for k, v in doc.items() if v is not None}
    path.write_text(json.dumps(doc))
    return path


async def until(predicate: Callable[[], bool], what: str, limit: float = 30.0) -> None:
    """Poll a condition; the limit only turns a hang into a readable failure (no timing is asserted)."""
    deadline = asyncio.get_running_loop().time() + limit
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
