"""Start a throw-away conductor for a benchmark (temporary home, free port, SQLite)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def conductor(*settings: str, local_satellite: bool = False) -> Iterator[tuple[str, int]]:
    """Yields (base_url, pid) of a fresh conductor; stops it afterwards."""
    home = Path(tempfile.mkdtemp(prefix="sundial-bench-"))
    port = free_port()
    argv = [sys.executable, "-m", "sundial", "start", "--foreground", "--home", str(home), "--port", str(port),
            "--set", "User.use_csrf=false", "--set", f"local_satellite.enabled={str(local_satellite).lower()}",
            *[part for s in settings for part in ("--set", s)]]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUNDIAL_", "XYOPS_"))}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.post(url + "/api/app/ping/v1", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
