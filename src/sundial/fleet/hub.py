"""The satellite WebSocket hub on the conductor's root path (satellite-protocol.md §3-§4).

One :class:`Socket` per connection moves through ``new → hello → joining → authed``; only
``hello``, ``join`` and ``echoback`` count before ``authed``. The hub owns the sockets and the
protocol; what a join or a frame *means* (server records, jobs, metrics) belongs to its
:class:`HubOwner`, the fleet service.

Robustness is the first requirement: a frame that is not text, not JSON, not an object with a
string ``cmd`` and an object ``data``, too large, unknown or of the wrong shape is dropped with
a (rate-limited) log line and the socket stays open; an exception in any handler is caught and
logged. No frame reaches code that could take the conductor or another satellite down. Each
socket writes through its own queue and task, so a slow peer only slows itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.websockets import WebSocket

from sundial import protocol as p
from sundial.ids import generate_id
from sundial.logs import Logger

AUTH_TIMEOUT_SEC = 30.0
MAX_OUTBOX_BYTES = 256 * 1024 * 1024
_CLOSE = object()


@dataclass(eq=False)
class Socket:
    """One connection and its protocol state."""

    ws: WebSocket | None
    socket_id: str
    ip: str
    state: str = "new"
    hello: dict[str, Any] = field(default_factory=dict)
    nonce: str = ""
    server_id: str = ""
    hostname: str = ""
    opened: float = field(default_factory=time.monotonic)
    last_ping: float = field(default_factory=time.monotonic)
    echoes: dict[str, float] = field(default_factory=dict)
    rtt_ms: float = 0.0
    closed: bool = False
    drops: int = 0
    outbox: deque[Any] = field(default_factory=deque)
    outbox_bytes: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    auth_timer: asyncio.TimerHandle | None = None

    @property
    def authed(self) -> bool:
        return self.state == "authed"

    def label(self) -> str:
        who = f"{self.hostname or '?'} ({self.server_id})" if self.server_id else "unauthenticated peer"
        return f"{who} from {self.ip} [{self.socket_id}]"


class HubOwner(Protocol):
    """What the hub asks of the fleet service."""

    def primary(self) -> tuple[bool, str]: ...

    def secret_key(self) -> str: ...

    def duplicate_hostname(self, server_id: str, hostname: str) -> str | None: ...

    async def join(self, sock: Socket) -> dict[str, Any]: ...

    def leave(self, sock: Socket) -> None: ...

    def auth_failed(self, sock: Socket, reason: str) -> None: ...

    def on_message(self, sock: Socket, frame: p.Frame) -> None: ...


class Hub:
    """Accepts satellite sockets, authenticates them, keeps them alive, routes their frames."""

    def __init__(self, owner: HubOwner, log: Logger, *, ping_freq: Callable[[], float],
                 ping_timeout: Callable[[], float], auth_timeout: float = AUTH_TIMEOUT_SEC) -> None:
        self.owner = owner
        self.log = log
        self.ping_freq = ping_freq
        self.ping_timeout = ping_timeout
        self.auth_timeout = auth_timeout
        self.sockets: dict[str, Socket] = {}
        self.by_server: dict[str, Socket] = {}
        self._pinger: asyncio.Task[None] | None = None
        self.stopping = False

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> None:
        self._pinger = asyncio.create_task(self._ping_forever())

    async def stop(self) -> None:
        """Close every socket (agents reconnect to whichever conductor comes up next)."""
        self.stopping = True
        if self._pinger is not None:
            self._pinger.cancel()
            await asyncio.gather(self._pinger, return_exceptions=True)
        for sock in list(self.sockets.values()):
            self.terminate(sock, "conductor shutting down", code=1001)

    # -- the ASGI endpoint -------------------------------------------------------------------

    async def endpoint(self, ws: WebSocket) -> None:
        """Starlette WebSocket route for ``/``: one call per connection, for its whole life."""
        if self.stopping:
            await ws.close(code=1013)
            return
        await ws.accept()
        sock = Socket(ws=ws, socket_id=generate_id("ws"), ip=ws.client.host if ws.client else "")
        self.sockets[sock.socket_id] = sock
        sock.auth_timer = asyncio.get_running_loop().call_later(self.auth_timeout, self._auth_expired, sock)
        writer = asyncio.create_task(self._write_forever(sock))
        try:
            await self._read_forever(sock)
        except Exception:  # a transport error ends this socket only
            self.log.debug(6, f"Socket read ended with an error: {sock.label()}", {"trace": traceback.format_exc(3)})
        finally:
            self._forget(sock)
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

    async def _read_forever(self, sock: Socket) -> None:
        assert sock.ws is not None
        while True:
            message = await sock.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if sock.closed:
                continue
            text = message.get("text")
            if text is None:
                self._drop(sock, "binary frame (only text frames are part of the protocol)")
                continue
            await self.handle_text(sock, text)

    async def handle_text(self, sock: Socket, text: str) -> None:
        """Decode, check and route one text frame; never raises."""
        limit = p.MAX_FRAME_BYTES if sock.authed else p.MAX_PREAUTH_FRAME_BYTES
        try:
            frame = p.decode_frame(text, max_bytes=limit)
        except p.FrameError as exc:
            self._drop(sock, str(exc))
            return
        if not sock.authed:
            await self._pre_auth(sock, frame)
            return
        try:
            if frame.cmd == "echoback":
                self._echoback(sock, frame)
            elif frame.cmd not in ("hello", "join"):
                self.owner.on_message(sock, frame)
        except p.FrameError as exc:
            self._drop(sock, str(exc))
        except Exception:
            self.log.error("socket", f"Error handling '{frame.cmd[:64]}' from {sock.label()}",
                           {"trace": traceback.format_exc(limit=8)})

    async def _pre_auth(self, sock: Socket, frame: p.Frame) -> None:
        if frame.cmd not in p.PRE_AUTH_AGENT_COMMANDS:
            return  # silently ignored before auth (spec §4.1): nothing stored, no reply
        try:
            msg = p.parse_agent_message(frame)
            if isinstance(msg, p.AgentHello):
                self._hello(sock, msg, frame.data)
            elif isinstance(msg, p.Join):
                await self._join(sock, msg)
            elif isinstance(msg, p.EchoBack):
                self._echoback(sock, frame)
        except p.FrameError as exc:
            self._drop(sock, str(exc))
        except Exception:
            self.log.error("socket", f"Error handling '{frame.cmd}' from {sock.label()}",
                           {"trace": traceback.format_exc(limit=8)})

    def _drop(self, sock: Socket, reason: str) -> None:
        """Log a dropped frame: the first 25 per socket, then one in a thousand (no log flooding)."""
        sock.drops += 1
        if sock.drops <= 25 or sock.drops % 1000 == 0:
            self.log.debug(3, f"Dropped frame #{sock.drops} from {sock.label()}: {reason[:300]}")

    # -- handshake -------------------------------------------------------------------------

    def _hello(self, sock: Socket, msg: p.AgentHello, data: dict[str, Any]) -> None:
        if sock.state not in ("new", "hello"):
            return
        primary, primary_host = self.owner.primary()
        if not primary:
            if primary_host:
                self.send(sock, "redirect", {"host": primary_host})
            else:
                self.send(sock, "retry", {})
            return
        hostname = p.normalize_hostname(msg.hostname)
        if msg.id and self._refuse_duplicate(sock, msg.id, hostname):
            return
        sock.hello, sock.hostname = dict(data), hostname
        sock.server_id = msg.id or generate_id("s")
        sock.nonce, sock.state = p.new_nonce(), "hello"
        self.send(sock, "hello", {"nonce": sock.nonce, "id": sock.server_id})

    def _refuse_duplicate(self, sock: Socket, server_id: str, hostname: str) -> bool:
        other = self.owner.duplicate_hostname(server_id, hostname)
        if other is None:
            return False
        reason = f"Duplicate server ID: {server_id} is already connected as {other}."
        self.log.debug(2, f"Refused {hostname} from {sock.ip}: {reason}")
        self.send(sock, "auth_failure", {"description": reason})
        sock.server_id, sock.hostname = server_id, hostname
        self.owner.auth_failed(sock, reason)
        sock.server_id, sock.state, sock.nonce = "", "new", ""
        return True

    async def _join(self, sock: Socket, msg: p.Join) -> None:
        if sock.state != "hello" or not sock.nonce:
            return
        key = self.owner.secret_key()
        if not key or not p.verify_join_token(msg.token, nonce=sock.nonce, server_id=sock.server_id,
                                              secret_key=key):
            self.send(sock, "auth_failure", {"description": "Invalid authentication token."})
            self.owner.auth_failed(sock, "Invalid authentication token.")
            sock.state, sock.nonce = "new", ""
            return
        if self._refuse_duplicate(sock, sock.server_id, sock.hostname):
            return
        sock.nonce, sock.state = "", "joining"
        self._replace_older(sock)
        self.by_server[sock.server_id] = sock
        joined = await self.owner.join(sock)
        if sock.closed:  # gone while we were registering it: undo the join
            self.owner.leave(sock)
            return
        sock.state = "authed"
        if sock.auth_timer is not None:
            sock.auth_timer.cancel()
        self.send(sock, "joined", joined)

    def _replace_older(self, sock: Socket) -> None:
        """A reconnect raced its own old socket: the new one wins, the old one is closed."""
        older = self.by_server.get(sock.server_id)
        if older is not None and older is not sock:
            self.log.debug(3, f"Closing the older socket of {sock.server_id} (reconnected): {older.label()}")
            self.by_server.pop(sock.server_id, None)
            older.state = "replaced"  # the server stays online: no leave, no offline blip
            self.terminate(older, "replaced by a newer connection", code=1000)

    def _auth_expired(self, sock: Socket) -> None:
        if not sock.authed and not sock.closed:
            self.log.debug(4, f"No authentication within {self.auth_timeout:.0f} s: closing {sock.label()}")
            self.terminate(sock, "authentication timeout", code=1008)

    # -- keepalive -------------------------------------------------------------------------

    async def _ping_forever(self) -> None:
        while True:
            await asyncio.sleep(max(0.2, self.ping_freq()))
            try:
                self.ping_all()
            except Exception:
                self.log.error("socket", "Keepalive round failed", {"trace": traceback.format_exc(limit=5)})

    def ping_all(self) -> None:
        """Echo every socket; terminate those whose echoes went unanswered for ``ping_timeout``."""
        now, timeout = time.monotonic(), self.ping_timeout()
        for sock in list(self.sockets.values()):
            if sock.closed:
                continue
            if sock.echoes and now - sock.last_ping >= timeout:
                self.log.debug(3, f"No echo for {now - sock.last_ping:.0f} s: closing {sock.label()}")
                self.terminate(sock, "ping timeout", code=1001)
                continue
            echo_id = generate_id("e")
            sock.echoes[echo_id] = now
            while len(sock.echoes) > 16:
                sock.echoes.pop(next(iter(sock.echoes)))
            self.send(sock, "echo", {"id": echo_id, "last_ping_ms": round(sock.rtt_ms, 3)})

    def _echoback(self, sock: Socket, frame: p.Frame) -> None:
        echo_id = frame.data.get("id")
        sent = sock.echoes.pop(echo_id, None) if isinstance(echo_id, str) else None
        if sent is None:
            return
        now = time.monotonic()
        sock.rtt_ms, sock.last_ping = (now - sent) * 1000.0, now
        sock.echoes.clear()

    # -- sending and closing -----------------------------------------------------------------

    def send(self, sock: Socket, cmd: str, data: dict[str, Any]) -> bool:
        """Queue one frame; False when the socket is closed or its queue is over the bound."""
        if sock.closed:
            return False
        text = p.encode_frame(cmd, data)
        if sock.outbox_bytes + len(text) > MAX_OUTBOX_BYTES:
            self.log.error("socket", f"Send queue full, dropped '{cmd}' to {sock.label()}")
            return False
        sock.outbox.append(text)
        sock.outbox_bytes += len(text)
        sock.ready.set()
        return True

    def send_to_server(self, server_id: str, cmd: str, data: dict[str, Any]) -> bool:
        sock = self.by_server.get(server_id)
        return sock is not None and sock.authed and self.send(sock, cmd, data)

    def broadcast(self, cmd: str, data: dict[str, Any]) -> int:
        """Send to every authenticated satellite; returns how many were reached."""
        return sum(1 for sock in list(self.by_server.values()) if sock.authed and self.send(sock, cmd, data))

    def terminate(self, sock: Socket, reason: str, code: int = 1000) -> None:
        """Close a socket now as far as the fleet is concerned; the close frame follows the queue."""
        if sock.closed:
            return
        self._forget(sock)
        sock.outbox.append((_CLOSE, code, reason))
        sock.ready.set()

    def _forget(self, sock: Socket) -> None:
        """Idempotent: the server leaves (if this socket is its current one), timers stop."""
        if sock.closed:
            return
        sock.closed = True
        self.sockets.pop(sock.socket_id, None)
        if sock.auth_timer is not None:
            sock.auth_timer.cancel()
        if self.by_server.get(sock.server_id) is sock:
            del self.by_server[sock.server_id]
            if sock.state == "authed":
                self.owner.leave(sock)

    async def _write_forever(self, sock: Socket) -> None:
        assert sock.ws is not None
        try:
            while True:
                while not sock.outbox:
                    sock.ready.clear()
                    await sock.ready.wait()
                item = sock.outbox.popleft()
                if isinstance(item, tuple):
                    with contextlib.suppress(Exception):
                        await sock.ws.close(code=item[1], reason=item[2][:100])
                    return
                sock.outbox_bytes -= len(item)
                await sock.ws.send_text(item)
        except Exception:  # the peer went away mid-send: the reader sees the disconnect
            return
