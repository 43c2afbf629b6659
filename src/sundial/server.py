"""Runs the conductor under uvicorn until SIGTERM/SIGINT: HTTP, and HTTPS beside it.

uvicorn serves one TLS setting per server, so HTTPS is a second uvicorn server on the same
ASGI app in the same process and event loop. The HTTP server owns the lifespan (services
start once) and the signal handlers; the HTTPS one starts after the services are up and is
stopped before they go down, so neither listener ever sees a half-built conductor.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from typing import Any, Literal

import uvicorn

from sundial.app import Conductor, make_log_manager
from sundial.config import Config
from sundial.logs import Logger
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


class _Primary(uvicorn.Server):
    """The HTTP listener; starts the companion once the conductor is up, stops it first."""

    def __init__(self, config: uvicorn.Config, companion: tuple[_Companion, socket.socket] | None) -> None:
        super().__init__(config)
        self.companion = companion
        self._companion_task: asyncio.Task[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.companion is not None and self.started:
            server, sock = self.companion
            self._companion_task = asyncio.create_task(server.serve(sockets=[sock]))

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.companion is not None and self._companion_task is not None:
            self.companion[0].should_exit = True
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self._companion_task, 15)
        await super().shutdown(sockets)


def bind_listener(host: str, port: int) -> socket.socket:
    """Bind before serving, so a taken port is an OSError here rather than uvicorn's sys.exit."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
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


async def serve(config: Config, *, echo: bool = False, generated_key: bool = False) -> None:
    logs = make_log_manager(config, echo=echo)
    log = logs.logger("Sundial")
    if generated_key:
        log.debug(1, f"Generated a new secret_key and stored it in {config.overrides_file} (mode 0600)")
    try:
        tls = prepare_tls(config)  # a bad certificate pair stops start-up here (TlsError -> message, exit 1)
        conductor = Conductor(config, logs)
        await conductor.prepare()  # a wrong secret key stops here: ConfigError -> message, exit 1
        app = HttpsFront(conductor.asgi(), config)
        companion = https_companion(app, config, log, tls)
        server = _Primary(_uvicorn_config(app, config, int(config.get("WebServer.port")), lifespan="on"),
                          companion)
        await server.serve()
    finally:
        logs.close()
