"""Job output: appended live to `<log_dir>/jobs/<id>.log`, kept inline or gzipped at the end."""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import IO


class JobLogs:
    def __init__(self, live_dir: Path, archive_dir: Path) -> None:
        self.live_dir = live_dir
        self.archive_dir = archive_dir
        live_dir.mkdir(parents=True, exist_ok=True)
        archive_dir.mkdir(parents=True, exist_ok=True)
        self._handles: dict[str, IO[bytes]] = {}
        # Jobs that may have a live file: opened by this process, or left by an earlier one (jobs
        # re-attached after a restart). Any other job has none, so finishing it needs no lookup.
        self._on_disk: set[str] = {path.stem for path in live_dir.glob("*.log")}

    def live_path(self, job_id: str) -> Path:
        return self.live_dir / f"{job_id}.log"

    def archive_path(self, job_id: str) -> Path:
        return self.archive_dir / f"{job_id}.log.gz"

    def append(self, job_id: str, text: str) -> int:
        """Append output; returns the number of bytes written."""
        data = text.encode("utf-8", "replace")
        handle = self._handles.get(job_id)
        if handle is None:
            handle = open(self.live_path(job_id), "ab")  # noqa: SIM115 (kept open while the job runs)
            self._handles[job_id] = handle
            self._on_disk.add(job_id)
        handle.write(data)
        return len(data)

    def close(self, job_id: str) -> None:
        handle = self._handles.pop(job_id, None)
        if handle is not None:
            handle.close()

    def tail(self, job_id: str, size: int) -> str:
        """The last `size` bytes of a live log, starting at a whole line when cut."""
        handle = self._handles.get(job_id)
        if handle is not None:
            handle.flush()
        path = self.live_path(job_id)
        if not path.exists():
            return ""
        total = path.stat().st_size
        with open(path, "rb") as src:
            src.seek(max(0, total - size))
            data = src.read(size)
        if total > size and b"\n" in data:
            data = data[data.index(b"\n") + 1:]
        return data.decode("utf-8", "replace")

    def finalize(self, job_id: str, inline_limit: int) -> tuple[int, str | None]:
        """Close the live log: (size, inline text) for small logs, (size, None) when archived."""
        self.close(job_id)
        if job_id not in self._on_disk:
            return 0, None  # the common case of a job that printed nothing: no file system call
        self._on_disk.discard(job_id)
        path = self.live_path(job_id)
        if not path.exists():
            return 0, None
        size = path.stat().st_size
        if size == 0:
            path.unlink()
            return 0, None
        if size <= inline_limit:
            text = path.read_text("utf-8", "replace")
            path.unlink()
            return size, text
        with open(path, "rb") as src, gzip.open(self.archive_path(job_id), "wb", compresslevel=6) as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
        path.unlink()
        return size, None

    def read_archived(self, job_id: str) -> bytes | None:
        """The gzip bytes of an archived log (served as-is with Content-Encoding: gzip)."""
        path = self.archive_path(job_id)
        return path.read_bytes() if path.exists() else None

    def delete(self, job_id: str) -> None:
        self.close(job_id)
        self._on_disk.discard(job_id)
        for path in (self.live_path(job_id), self.archive_path(job_id)):
            if path.exists():
                os.unlink(path)
