"""Bracket-column log files, one per component, with nightly gzip archives.

The row format is xyOps's (`[c1][c2]...[cN]`), because `admin_search_logs` and operators'
existing grep/awk tooling parse it back into columns. Writes are synchronous appends:
one short line per call, so a crash never loses what was logged before it.
"""

from __future__ import annotations

import gzip
import os
import shutil
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from sundial.logrows import format_row, parse_row

__all__ = ["LogManager", "Logger", "format_row", "parse_row", "prune_archives"]


class LogManager:
    """Owns the open log files of a process; hands out per-component loggers."""

    def __init__(self, log_dir: Path, *, columns: list[str], filename: str = "[component].log",
                 debug_level: int = 5, hostname: str | None = None, echo: bool = False,
                 echo_stream: TextIO | None = None) -> None:
        self.log_dir = log_dir
        self.columns = list(columns)
        self.filename = filename
        self.debug_level = debug_level
        self.hostname = hostname or socket.gethostname().lower()
        self.echo = echo
        self.echo_stream = echo_stream or sys.stdout
        self._files: dict[str, TextIO] = {}
        self._lock = threading.Lock()
        log_dir.mkdir(parents=True, exist_ok=True)

    def logger(self, component: str) -> Logger:
        return Logger(self, component)

    def file_for(self, component: str) -> Path:
        return self.log_dir / self.filename.replace("[component]", component)

    def write(self, component: str, category: str, code: Any, msg: str, data: Any = None) -> None:
        now = time.time()
        row = format_row(self.columns, {
            "hires_epoch": now, "date": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)),
            "hostname": self.hostname, "pid": os.getpid(), "component": component,
            "category": category, "code": code, "msg": msg, "data": data,
        }) + "\n"
        with self._lock:
            self._append(self.file_for(component), row)
            if category == "error" and component != "Error":
                self._append(self.file_for("Error"), row)
            if self.echo:
                self.echo_stream.write(row)
                self.echo_stream.flush()

    def _append(self, path: Path, row: str) -> None:
        handle = self._files.get(str(path))
        if handle is None or handle.closed:
            handle = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 (kept open)
            self._files[str(path)] = handle
        handle.write(row)

    def close(self) -> None:
        with self._lock:
            for handle in self._files.values():
                handle.close()
            self._files.clear()

    def archive_path(self, archive_template: str, day: time.struct_time, name: str) -> Path:
        """Where the nightly archive puts log `name` (file stem) of `day`; relative to the home."""
        target = Path(_fill_template(archive_template, day, name))
        return target if target.is_absolute() else self.log_dir.parent / target

    def archive(self, archive_template: str, when: float | None = None) -> list[Path]:
        """Gzip-append every live log to its dated archive and truncate it (nightly job).

        The date is taken 30 minutes back so a run just after midnight files the logs
        under the day that just ended.
        """
        stamp = time.localtime((when or time.time()) - 1800)
        written: list[Path] = []
        with self._lock:
            for handle in self._files.values():
                handle.close()
            self._files.clear()
            for live in sorted(self.log_dir.glob("*.log")):
                target = self.archive_path(archive_template, stamp, live.stem)
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(live, "rb") as src, gzip.open(target, "ab") as dst:
                    shutil.copyfileobj(src, dst)
                live.write_bytes(b"")
                written.append(target)
        return written


def _fill_template(template: str, stamp: time.struct_time, filename: str) -> str:
    values = {"yyyy": f"{stamp.tm_year:04d}", "mm": f"{stamp.tm_mon:02d}",
              "dd": f"{stamp.tm_mday:02d}", "hh": f"{stamp.tm_hour:02d}", "filename": filename}
    for key, value in values.items():
        template = template.replace(f"[{key}]", value)
    return template


def prune_archives(archive_template: str, base: Path, keep_seconds: float,
                   now: float | None = None) -> list[Path]:
    """Delete archives older than the retention window; returns what was removed."""
    root_text = archive_template.split("[", 1)[0]
    root = Path(root_text) if Path(root_text).is_absolute() else base / root_text
    if not root.is_dir() or keep_seconds <= 0:
        return []
    cutoff = (now or time.time()) - keep_seconds
    removed = []
    for path in root.rglob("*"):
        if path.is_file() and path.suffix in (".gz", ".log") and path.stat().st_mtime < cutoff:
            path.unlink()
            removed.append(path)
    return removed


class Logger:
    """A component's view of the log: debug rows are filtered by `debug_level`."""

    def __init__(self, manager: LogManager, component: str) -> None:
        self.manager = manager
        self.component = component

    def debug(self, level: int, msg: str, data: Any = None) -> None:
        if level <= self.manager.debug_level:
            self.manager.write(self.component, "debug", level, msg, data)

    def error(self, code: str, msg: str, data: Any = None) -> None:
        self.manager.write(self.component, "error", code, msg, data)

    def transaction(self, code: str, msg: str, data: Any = None) -> None:
        self.manager.write(self.component, "transaction", code, msg, data)
