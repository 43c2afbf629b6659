"""Live reload of conf/config.json and the overrides file, as xyOps reloads its config on change.

A cheap stat poll (mtime, size, inode) every `config_watch_sec` rather than inotify: it works
the same on every OS and on network or container-mounted `conf/` folders, and costs two
`stat` calls. Most settings are read where they are used (`config.get` at call time), so
swapping the merged data in place applies them; the few values copied at start are refreshed
in `apply`. A file that does not parse or validate leaves the running config as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from sundial.config import Config, ConfigError, reload_config
from sundial.logs import Logger

Signature = tuple[int, int, int] | None


def _signature(path: Path) -> Signature:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


class ConfigWatcher:
    def __init__(self, config: Config, log: Logger, apply: Callable[[list[str]], None]) -> None:
        self.config = config
        self.log = log
        self.apply = apply
        self._seen = self._current()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def _paths(self) -> list[Path]:
        return [self.config.home / "conf" / "config.json", self.config.overrides_file]

    def _current(self) -> list[Signature]:
        return [_signature(path) for path in self._paths()]

    def start(self) -> None:
        if float(self.config.get("config_watch_sec") or 0) > 0:
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(max(0.5, float(self.config.get("config_watch_sec") or 3)))
            now = self._current()
            if now != self._seen:
                await asyncio.sleep(0.2)  # let a writer finish; a half-written file would only log an error
                self._seen = self._current()
                await self.reload("file change")

    async def reload(self, why: str) -> bool:
        """Reload now; False (and an error in the log naming key or file) when the new config is refused."""
        async with self._lock:
            try:
                applied, pending = reload_config(self.config)  # a small file: no thread, and no reader sees a half swap
            except ConfigError as exc:
                self.log.error("config", f"Configuration not reloaded ({why}), the running configuration stays: "
                                         f"{exc}")
                return False
            except OSError as exc:
                self.log.error("config", f"Configuration not reloaded ({why}): cannot read {exc.filename}: "
                                         f"{exc.strerror}")
                return False
            self._seen = self._current()
            if applied:
                self.apply(applied)
                self.log.debug(2, f"Configuration reloaded ({why}): {', '.join(applied)}")
            if pending:
                self.log.debug(1, f"Configuration changed ({why}) but needs a restart to apply: {', '.join(pending)}")
            return True
