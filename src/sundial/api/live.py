"""`/api/live`: the users' WebSocket. Authenticate once, subscribe to topics, receive events.

Protocol (docs/api.md, "Live updates"): the client sends JSON objects with a `cmd`
(`subscribe`, `unsubscribe`, `ping`); the server sends JSON objects with a `type`. Topics are
`job:<id>`, `jobs` and `server:<id>`, each checked against the same category and group limits as
the REST verbs, at subscribe time and again on every message (with the caller's current
privileges, re-read every ping interval).

Credentials are those of the API: `X-Session-ID`, an API key (`X-API-Key` or
`Authorization: Bearer`), or the `session_id` cookie. A cookie rides along with any page's
request, so a cookie-authenticated socket must come from a page of this very host: its
`Origin` must name the `Host` it connects to (no cross-site WebSocket hijacking). A header
cannot be set by another site's page, so header credentials need no such check.

A bad frame is dropped with a (rate-limited) log line and answered with an `error`; the socket
stays open. Everything a socket sends goes through its bounded outbox (`live.bus`), written by
one task; when the outbox overflows, the socket is closed with 4008 and the client resyncs.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import traceback
from typing import Any
from urllib.parse import urlsplit

import orjson
from starlette.websockets import WebSocket

from sundial.api.dispatch import principal_for
from sundial.auth.privileges import Principal
from sundial.ids import generate_id
from sundial.live.bus import Subscriber
from sundial.live.feeds import (
    JOB_KEYS,
    JOBS_TOPIC,
    JobFeed,
    final_view,
    job_topic,
    job_visible,
    pick,
    server_topic,
    server_visible,
)
from sundial.services import Services

PING_SECONDS = 20.0
MAX_FRAME_CHARS = 4096
MAX_TOPICS = 64
DEFAULT_TAIL = 32768
MAX_TAIL = 1 << 20
CLOSE_SESSION = 4401  # credentials missing, wrong or expired: log in again, do not retry as is
CLOSE_SLOW = 4008  # the outbox overflowed: reconnect and resync
DEFAULT_PORTS = {"http": "80", "https": "443"}


class Refused(Exception):
    """A request the protocol answers with an `error` message (code and description, xyOps words)."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(description)
        self.code, self.description = code, description


def _netloc(host: str, scheme: str) -> str:
    host = host.strip().lower()
    default = DEFAULT_PORTS.get(scheme, "")
    return host[: -len(default) - 1] if default and host.endswith(":" + default) else host


def origin_allowed(origin: str | None, host: str | None) -> bool:
    """A browser's Origin must name the host it connects to; no Origin means no browser page."""
    if origin is None:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc or not host:
        return False  # includes "null" (sandboxed frames, file: pages)
    return _netloc(parts.netloc, parts.scheme) == _netloc(host, parts.scheme)


class LiveSocket:
    """One connection: its subscriber, its bad-frame count, its credentials for re-checks."""

    def __init__(self, ws: WebSocket, principal: Principal, credential: tuple[str, str]) -> None:
        self.ws = ws
        self.sub = Subscriber(principal)
        self.credential = credential
        self.socket_id = generate_id("lv")
        self.drops = 0
        self.ip = ws.client.host if ws.client else ""

    @property
    def principal(self) -> Principal:
        principal: Principal = self.sub.principal
        return principal

    def label(self) -> str:
        return f"{self.principal.actor or '?'} from {self.ip} [{self.socket_id}]"

    def send(self, message: dict[str, Any]) -> None:
        self.sub.send(message)


class LiveEndpoint:
    """The Starlette WebSocket route for `/api/live`."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.bus = services.live
        self.log = services.logger("Live")
        self.sockets: dict[str, LiveSocket] = {}

    # -- connection ----------------------------------------------------------------------------

    async def endpoint(self, ws: WebSocket) -> None:
        credential = _credential(ws)
        if credential[0] == "cookie" and not origin_allowed(ws.headers.get("origin"), ws.headers.get("host")):
            self.log.debug(3, f"Refused a cookie WebSocket from another site: Origin "
                              f"{str(ws.headers.get('origin'))[:200]!r}, Host {str(ws.headers.get('host'))[:200]!r}")
            await ws.close(code=1008)  # before accept: the handshake fails with HTTP 403
            return
        await ws.accept()
        try:
            principal = self.authenticate(credential)
        except Refused as exc:
            with contextlib.suppress(Exception):
                await ws.send_text(orjson.dumps({"type": "error", "code": exc.code,
                                                 "description": exc.description}).decode())
                await ws.close(code=CLOSE_SESSION, reason=exc.description[:100])
            return
        sock = LiveSocket(ws, principal, credential)
        self.sockets[sock.socket_id] = sock
        sock.send({"type": "hello", "ping_seconds": PING_SECONDS, "user": principal.actor})
        writer = asyncio.create_task(self._write_forever(sock))
        try:
            await self._read_forever(sock)
        except Exception:  # a transport error ends this socket only
            self.log.debug(6, f"Live socket read ended with an error: {sock.label()}",
                           {"trace": traceback.format_exc(3)})
        finally:
            self.sockets.pop(sock.socket_id, None)
            self.bus.drop(sock.sub)
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

    def authenticate(self, credential: tuple[str, str]) -> Principal:
        """The API's rules for a session or an API key (an API key's rate counts this connect)."""
        kind, value = credential
        services = self.services
        if kind in ("cookie", "session"):
            session = services.users.get_session(value)
            if session is None:
                raise Refused("session", "Session has expired or is invalid.")
            user = services.users.get(session["username"])
            if user is None or not user.get("active"):
                raise Refused("session", f"User account is disabled or gone: {session['username']}")
            principal = principal_for(services, "user", user)
            principal.session = session
            return principal
        if kind == "api_key":
            record = services.api_keys.match(value)
            if record is None:
                raise Refused("session", "Invalid API Key")
            if services.api_keys.over_rate(record):
                raise Refused("rate", f'API Key "{record.get("title", "")}" exceeded its rate limit.')
            return principal_for(services, "api_key", record)
        raise Refused("session", "No Session ID or API Key could be found")

    # -- reading -------------------------------------------------------------------------------

    async def _read_forever(self, sock: LiveSocket) -> None:
        while True:
            message = await sock.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                reason = "binary frames are not part of the protocol; send JSON text"
                self._bad(sock, reason)
                sock.send({"type": "error", "code": "api", "description": reason})
                continue
            await self.handle_text(sock, text)

    async def handle_text(self, sock: LiveSocket, text: str) -> None:
        """Decode and run one command; every refusal becomes an `error` message, never an exception."""
        ref: Any = None
        try:
            frame = _decode(text)
            ref = frame.get("id")
            if ref is not None and not (isinstance(ref, int | str) and len(str(ref)) <= 64):
                ref = None
                raise Refused("api", "Parameter is not a string or number of at most 64 characters: id")
            await self._command(sock, frame, ref)
        except Refused as exc:
            if exc.code == "api":
                self._bad(sock, exc.description)
            reply: dict[str, Any] = {"type": "error", "code": exc.code, "description": exc.description}
            if ref is not None:
                reply["id"] = ref
            sock.send(reply)
        except Exception:
            err = generate_id("x")
            self.log.error("live", f"Error handling a live frame from {sock.label()} (ref {err})",
                           {"trace": traceback.format_exc(limit=8)})
            sock.send({"type": "error", "code": "internal", "description": f"Internal error (ref {err})."})

    def _bad(self, sock: LiveSocket, reason: str) -> None:
        """Log a dropped frame: the first 25 per socket, then one in a thousand (no log flooding)."""
        sock.drops += 1
        if sock.drops <= 25 or sock.drops % 1000 == 0:
            self.log.debug(3, f"Dropped live frame #{sock.drops} from {sock.label()}: {reason[:300]}")
            if sock.drops == 25:
                self.log.debug(3, f"Further dropped frames from {sock.label()} are logged one in a thousand")

    async def _command(self, sock: LiveSocket, frame: dict[str, Any], ref: Any) -> None:
        cmd = frame.get("cmd")
        if cmd == "ping":
            sock.send({"type": "pong", **({"id": ref} if ref is not None else {})})
            return
        topic = frame.get("topic")
        if not isinstance(topic, str) or not topic or len(topic) > 200:
            raise Refused("api", "Missing parameter: topic" if topic is None else "Parameter is not type string: topic")
        if cmd == "unsubscribe":
            self.bus.unsubscribe(sock.sub, topic)
            sock.send({"type": "unsubscribed", "topic": topic, **({"id": ref} if ref is not None else {})})
        elif cmd == "subscribe":
            if topic not in sock.sub.topics and len(sock.sub.topics) >= MAX_TOPICS:
                raise Refused("api", f"Too many subscriptions on one socket (limit {MAX_TOPICS}).")
            await self._subscribe(sock, topic, frame, ref)
        else:
            raise Refused("api", f"Unknown command: {str(cmd)[:64]}" if cmd is not None else "Missing parameter: cmd")

    # -- subscriptions -------------------------------------------------------------------------

    async def _subscribe(self, sock: LiveSocket, topic: str, frame: dict[str, Any], ref: Any) -> None:
        kind, _, key = topic.partition(":")
        if topic == JOBS_TOPIC:
            self._subscribed(sock, topic, ref)
            sock.send(JobFeed.snapshot(self.services.jobs.active_jobs(), sock.principal))
        elif kind == "job" and key:
            await self._subscribe_job(sock, key, _tail_size(frame), ref)
        elif kind == "server" and key:
            await self._subscribe_server(sock, key, ref)
        else:
            raise Refused("api", f"Unknown topic: {topic[:100]} (topics: job:<id>, jobs, server:<id>)")

    def _subscribed(self, sock: LiveSocket, topic: str, ref: Any) -> None:
        """Join the topic and say so; the caller queues the snapshot right after, with no await between,
        so nothing published in the meantime is missed or sent twice."""
        self.bus.subscribe(sock.sub, topic)
        sock.send({"type": "subscribed", "topic": topic, **({"id": ref} if ref is not None else {})})

    async def _subscribe_job(self, sock: LiveSocket, job_id: str, tail: int, ref: Any) -> None:
        jobs, topic = self.services.jobs, job_topic(job_id)
        if job_id not in jobs.active:
            record = await jobs.store.get(job_id)
            if job_id not in jobs.active:  # still not running after the read
                if record is None or not record.get("final"):
                    raise Refused("notfound", f"Failed to locate job: {job_id}")
                if not job_visible(sock.principal, record):
                    raise _job_access()
                sock.send({"type": "subscribed", "topic": topic, **({"id": ref} if ref is not None else {})})
                sock.send({"type": "final", "topic": topic, "job": final_view(record)})
                return
        job = jobs.active[job_id]
        if not job_visible(sock.principal, job):
            raise _job_access()
        self._subscribed(sock, topic, ref)
        sock.send({"type": "job", "topic": topic, "job": pick(job, JOB_KEYS)})
        sock.send({"type": "log", "topic": topic, "text": jobs.logs.tail(job_id, tail) if tail else "",
                   "initial": True})

    async def _subscribe_server(self, sock: LiveSocket, server_id: str, ref: Any) -> None:
        fleet = self.services.fleet
        if fleet is None:
            raise Refused("notfound", f"Server not found: {server_id}")
        record, _online = await fleet.find(server_id)
        if record is None:
            raise Refused("notfound", f"Server not found: {server_id}")
        if not server_visible(sock.principal, list(record.get("groups") or [])):
            raise Refused("access", f"You do not have the required account privileges to access server {server_id}.")
        topic, online = server_topic(server_id), server_id in fleet.online
        self._subscribed(sock, topic, ref)
        sock.send({"type": "server", "topic": topic, "online": online})
        sock.send({"type": "quickmon", "topic": topic, "rows": fleet.metrics.quick_rows(server_id) if online else [],
                   "reset": True})

    # -- writing -------------------------------------------------------------------------------

    async def _write_forever(self, sock: LiveSocket) -> None:
        """The socket's only sender: queued frames, a ping after each quiet interval, 4008 when it fell behind."""
        last_check = time.monotonic()
        try:
            while True:
                text = await sock.sub.next(PING_SECONDS)
                if sock.sub.overflowed:
                    self.log.debug(3, f"Live socket fell behind (queue full), closing: {sock.label()}")
                    await sock.ws.close(code=CLOSE_SLOW, reason="too slow: reconnect and resync")
                    return
                if time.monotonic() - last_check >= PING_SECONDS:
                    last_check = time.monotonic()
                    if not await self._still_allowed(sock):
                        return
                if text is None:
                    text = orjson.dumps({"type": "ping", "time": round(time.time(), 3)}).decode()
                await sock.ws.send_text(text)
        except Exception:  # the peer went away mid-send: the reader sees the disconnect
            return

    async def _still_allowed(self, sock: LiveSocket) -> bool:
        """Every ping interval: the session or key must still be valid; privileges are re-read."""
        try:
            sock.sub.principal = self.authenticate(sock.credential) if sock.credential[0] != "api_key" \
                else self._key_principal(sock)
            return True
        except Refused as exc:
            with contextlib.suppress(Exception):
                await sock.ws.send_text(orjson.dumps({"type": "error", "code": exc.code,
                                                      "description": exc.description}).decode())
                await sock.ws.close(code=CLOSE_SESSION, reason=exc.description[:100])
            return False

    def _key_principal(self, sock: LiveSocket) -> Principal:
        """Re-check a key without counting against its per-second rate."""
        record = self.services.api_keys.match(sock.credential[1])
        if record is None:
            raise Refused("session", "Invalid API Key")
        return principal_for(self.services, "api_key", record)

    async def close_all(self) -> None:
        """At shutdown: close every socket with 1001 so clients reconnect to whoever comes up next."""
        for sock in list(self.sockets.values()):
            with contextlib.suppress(Exception):
                await sock.ws.close(code=1001, reason="conductor shutting down")


def _credential(ws: WebSocket) -> tuple[str, str]:
    """(kind, value): headers first (no other site can set them), then the session cookie."""
    headers = ws.headers
    session = headers.get("x-session-id", "").strip()
    if session:
        return "session", session
    bearer = headers.get("authorization", "")
    key = headers.get("x-api-key", "").strip() or (bearer[7:].strip() if bearer.lower().startswith("bearer ") else "")
    if key:
        return "api_key", key
    cookie = ws.cookies.get("session_id", "")
    return ("cookie", cookie) if cookie else ("none", "")


def _decode(text: str) -> dict[str, Any]:
    if len(text) > MAX_FRAME_CHARS:
        raise Refused("api", f"Frame is too large (limit {MAX_FRAME_CHARS} characters).")
    try:
        frame = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise Refused("api", "Malformed JSON in frame.") from None
    if not isinstance(frame, dict):
        raise Refused("api", "A frame must be a JSON object with a cmd.")
    return frame


def _tail_size(frame: dict[str, Any]) -> int:
    tail = frame.get("tail", DEFAULT_TAIL)
    if isinstance(tail, bool) or not isinstance(tail, int) or not 0 <= tail <= MAX_TAIL:
        raise Refused("api", f"Parameter is not an integer from 0 to {MAX_TAIL}: tail")
    return tail


def _job_access() -> Refused:
    return Refused("access", "You do not have the required account privileges to access this job.")
