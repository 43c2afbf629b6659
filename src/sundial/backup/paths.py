"""Where binary backup keys live on disk, and the guard that keeps them inside the data folder.

xyOps keeps files in its key/value store; Sundial keeps them as plain files: `files/...`
under `data/files/` (what `/files/<key>` serves), archived job logs
(`logs/jobs/<id>/log.txt.gz`) where the job manager reads them, and any other binary key
(avatars, ...) under `data/blobs/`, so an import keeps what it cannot use yet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sundial.config import Config

_JOB_LOG = re.compile(r"^logs/jobs/(\w+)/log\.txt\.gz$")


class UnsafeKey(ValueError):
    """A key that would escape the data folder (`..`, absolute parts)."""


@dataclass(frozen=True)
class BlobPaths:
    files: Path
    job_logs: Path
    other: Path

    @classmethod
    def from_config(cls, config: Config) -> BlobPaths:
        data = config.path("Storage.sqlite_file").parent  # the job manager derives its folder the same way
        return cls(files=config.home / "data" / "files", job_logs=data / "jobs", other=data / "blobs")

    def job_log(self, job_id: str) -> Path:
        return self.job_logs / f"{job_id}.log.gz"

    def path_for(self, key: str) -> Path:
        """The file a binary key maps to; raises UnsafeKey for keys that leave their folder."""
        parts = key.split("/")
        if any(part in ("", ".", "..") for part in parts):
            raise UnsafeKey(f"Unsafe storage key: {key[:80]}")
        match = _JOB_LOG.match(key)
        if match:
            return self.job_log(match.group(1))
        if parts[0] == "files" and len(parts) > 1:
            return self._inside(self.files, parts[1:], key)
        return self._inside(self.other, parts, key)

    @staticmethod
    def _inside(root: Path, parts: list[str], key: str) -> Path:
        path = root.joinpath(*parts)
        if root.resolve() not in path.resolve().parents:
            raise UnsafeKey(f"Unsafe storage key: {key[:80]}")
        return path
