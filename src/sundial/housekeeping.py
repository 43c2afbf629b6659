"""Periodic upkeep of the conductor's own files (log archives)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta

from sundial.config import Config, parse_duration
from sundial.logs import LogManager, prune_archives


def seconds_until_midnight(now: float | None = None) -> float:
    current = datetime.fromtimestamp(now or time.time())
    midnight = (current + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1.0, midnight.timestamp() - current.timestamp())


def rotate_logs(logs: LogManager, config: Config) -> None:
    """Archive today's logs and drop archives past `log_archive_keep`."""
    template = str(config.get("log_archive_path") or "")
    if not template:
        return
    logs.archive(template)
    keep = config.get("log_archive_keep")
    if keep:
        prune_archives(template, config.home, parse_duration(keep))


async def nightly_log_rotation(logs: LogManager, config: Config) -> None:
    while True:
        await asyncio.sleep(seconds_until_midnight())
        try:
            await asyncio.to_thread(rotate_logs, logs, config)
        except OSError as exc:
            logs.logger("Maint").error("logs", f"Log archiving failed: {exc}")
