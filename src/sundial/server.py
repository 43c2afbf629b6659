"""Runs the conductor under uvicorn until SIGTERM/SIGINT: HTTP, and HTTPS beside it.

uvicorn serves one TLS setting per server, so HTTPS is a second uvicorn server on the same
ASGI app in the same process and event loop. The HTTP server owns the lifespan (services
start once) and the signal handlers; the HTTPS one starts after the services are up and is
stopped before they go down, so neither listener ever sees a half-built conductor.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Literal

import uvicorn

from sundial.app import Conductor, make_log_manager
from sundial.config import Config, ConfigError
from sundial.logs import Logger
from sundial.masters import setup_masters
from sundial.protocol import MAX_FRAME_BYTES
from sundial.tls import HttpsFront, TlsFiles, prepare_tls


def _uvicorn_config(app: Any, config: Config, port: int, *, lifespan: Literal["on", "off"],
                    tls: TlsFiles | None = None) -> uvicorn.Config:
    return uvicorn.Config(
        app, host=str(config.get("WebServer.bind_address")), port=port, log_level="warning",
        access_log=False, lifespan=lifespan, timeout_graceful_shutdown=10, ws="websockets-sansio",
        # Idle keep-alive connections outlive the clients' own idle limits (httpx 5 s, aiohttp
        # 15 s), so a client never reuses one at the instant the server closes it (uvicorn's 5 s
        # default made that race fail a request now and then under load).
        timeout_keep_alive=75,
        # Satellite frames: a job's JSON line may be 32 MiB; per-frame deflate would cost more CPU
        # across a fleet than the bandwidth it saves on small metrics frames.
        ws_max_size=MAX_FRAME_BYTES, ws_per_message_deflate=False,
        ssl_certfile=str(tls.cert) if tls else None, ssl_keyfile=str(tls.key) if tls else None)


class _Companion(uvicorn.Server):
    """The HTTPS listener: no lifespan, no signal handlers (the primary server owns both)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


ReadyHook = Callable[[Conductor], Awaitable[None]]


class _Primary(uvicorn.Server):
    """The HTTP listener; starts the companion once the conductor is up, stops it first."""

    def __init__(self, config: uvicorn.Config, companion: tuple[_Companion, socket.socket] | None,
                 on_ready: Callable[[], Awaitable[None]] | None = None) -> None:
        super().__init__(config)
        self.companion = companion
        self.on_ready = on_ready
        self._companion_task: asyncio.Task[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.companion is not None and self.started:
            server, sock = self.companion
            self._companion_task = asyncio.create_task(server.serve(sockets=[sock]))
        if self.on_ready is not None and self.started:
            await self.on_ready()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.companion is not None and self._companion_task is not None:
            self.companion[0].should_exit = True
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self._companion_task, 15)
        await super().shutdown(sockets)


def listen_problem(host: str, port: int, exc: OSError) -> str:
    """An operator-facing reason a port cannot be bound, with what to do about it."""
    if exc.errno == errno.EADDRINUSE:
        return (f"port {port} is in use by another program (another Sundial?): stop it, or choose another "
                f"port with --port or WebServer.port")
    if exc.errno == errno.EACCES:
        return f"port {port} needs more privileges than this user has: choose a port above 1023"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {host}:{port}: {host} is not an address of this machine (WebServer.bind_address)"
    return f"cannot listen on {host}:{port} ({exc.strerror or exc})"


def bind_listener(host: str, port: int) -> socket.socket:
    """Bind before serving, so a taken port is an OSError here rather than uvicorn's sys.exit.

    The protocol is named (IPPROTO_TCP, not 0) because asyncio sets TCP_NODELAY only on
    connections whose socket says TCP: without it every reply on a kept-alive connection
    waited ~40 ms (Nagle's algorithm against the client's delayed ACK)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def https_companion(app: Any, config: Config, log: Logger,
                    tls: TlsFiles | None) -> tuple[_Companion, socket.socket] | None:
    """The HTTPS server with its bound socket, or None (HTTPS off, or its port unavailable).

    A port that cannot be bound is logged as an error and the conductor carries on over HTTP,
    so a port clash never takes the whole service down.
    """
    if tls is None:
        return None
    if tls.generated:
        log.debug(1, f"Generated a self-signed HTTPS certificate: {tls.cert} (key {tls.key}, mode 0600)")
    port = int(config.get("WebServer.https_port"))
    try:
        sock = bind_listener(str(config.get("WebServer.bind_address")), port)
    except OSError as exc:
        log.error("https", f"HTTPS is off: cannot listen on port {port} ({exc.strerror}). Serving HTTP only; "
                           "free the port or set WebServer.https_port, then restart.")
        return None
    server = _Companion(_uvicorn_config(app, config, port, lifespan="off", tls=tls))
    log.debug(2, f"HTTPS on port {port} with {tls.cert} (valid until {tls.not_after:%Y-%m-%d})")
    return server, sock


def _bind_http(config: Config, log: Logger) -> socket.socket:
    """The HTTP port, bound before the conductor starts, so "started" is only logged once it is ours."""
    host, port = str(config.get("WebServer.bind_address")), int(config.get("WebServer.port"))
    try:
        return bind_listener(host, port)
    except OSError as exc:
        problem = listen_problem(host, port, exc)
        log.error("port", f"Cannot start: {problem}")
        raise ConfigError(problem) from None


async def serve(config: Config, *, echo: bool = False, on_ready: ReadyHook | None = None) -> None:
    """Run until stopped; `on_ready(conductor)` runs once the HTTP port serves the started conductor.

    A port that cannot be bound, a bad certificate pair or a wrong secret key raise ConfigError
    (logged to Sundial.log and Error.log) before anything starts.
    """
    logs = make_log_manager(config, echo=echo)
    log = logs.logger("Sundial")
    try:
        sock = _bind_http(config, log)
        try:
            tls = prepare_tls(config)  # a bad certificate pair stops start-up here (TlsError -> message, exit 1)
            conductor = Conductor(config, logs)
            await conductor.prepare()  # a wrong secret key stops here: ConfigError -> message, exit 1
            conductor.services.extras["masters"] = setup_masters(config, conductor.services.hostname, log)
            app = HttpsFront(conductor.asgi(), config)
            companion = https_companion(app, config, log, tls)
            ready = (lambda: on_ready(conductor)) if on_ready is not None else None
            server = _Primary(_uvicorn_config(app, config, int(config.get("WebServer.port")), lifespan="on"),
                              companion, ready)
            await server.serve(sockets=[sock])
        finally:
            sock.close()
    finally:
        logs.close()
