"""Runs the conductor under uvicorn until SIGTERM/SIGINT."""

from __future__ import annotations

import uvicorn

from sundial.app import Conductor, make_log_manager
from sundial.config import Config
from sundial.protocol import MAX_FRAME_BYTES


async def serve(config: Config, *, echo: bool = False, generated_key: bool = False) -> None:
    logs = make_log_manager(config, echo=echo)
    if generated_key:
        logs.logger("Sundial").debug(1, "Generated a new secret_key and stored it in "
                                        f"{config.overrides_file} (mode 0600)")
    conductor = Conductor(config, logs)
    await conductor.prepare()  # a wrong secret key stops here: ConfigError -> message, exit 1
    server_config = uvicorn.Config(
        conductor.asgi(), host=str(config.get("WebServer.bind_address")),
        port=int(config.get("WebServer.port")), log_level="warning", access_log=False,
        lifespan="on", timeout_graceful_shutdown=10, ws="websockets-sansio",
        # Satellite frames: a job's JSON line may be 32 MiB; per-frame deflate would cost more CPU
        # across a fleet than the bandwidth it saves on small metrics frames.
        ws_max_size=MAX_FRAME_BYTES, ws_per_message_deflate=False)
    server = uvicorn.Server(server_config)
    try:
        await server.serve()
    finally:
        logs.close()
