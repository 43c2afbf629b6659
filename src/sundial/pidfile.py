"""A pid file that keeps two copies of a process from running on one home folder."""

from __future__ import annotations

import os
from pathlib import Path


class PidFileError(Exception):
    pass


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():  # a recycled pid of an unrelated program does not count
        return b"sundial" in cmdline.read_bytes()
    return True


def read_live_pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid != os.getpid() and _pid_alive(pid) else None


def claim_pid_file(path: Path) -> None:
    """Write our pid, refusing when a live process already holds the file."""
    running = read_live_pid(path)
    if running:
        raise PidFileError(f"Another instance is still alive (pid {running}, pid file {path}).")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{os.getpid()}\n")
    if path.read_text().strip() != str(os.getpid()):
        raise PidFileError(f"Could not write the pid file {path}.")


def release_pid_file(path: Path) -> None:
    try:
        if path.read_text().strip() == str(os.getpid()):
            path.unlink()
    except OSError:
        pass
