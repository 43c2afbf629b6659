"""Process housekeeping for the agent: the pid file, start (foreground or daemon), status, stop.

The pid file is guarded by an exclusive ``flock`` held for the agent's whole life, not by the pid
number alone: a stale file left by a crash (or a pid reused by an unrelated process) can never
block a start or make ``status`` lie, and two agents racing to start cannot both win.
The CLI (``sundial satellite start|stop|status``) is a thin layer over these functions.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sundial.satellite.config import ConfigError, ConfigStore
from sundial.satellite.logfmt import BracketFormatter

__all__ = ["AgentStatus", "AlreadyRunning", "PidFile", "agent_status", "run_agent", "stop_agent"]

log = logging.getLogger("sundial.satellite")


class AlreadyRunning(RuntimeError):
    """Another agent holds the pid file lock."""

    def __init__(self, path: Path, pid: int | None) -> None:
        super().__init__(f"another satellite is already running (pid {pid or '?'}, lock {path})")
        self.pid = pid


@dataclass(frozen=True, slots=True)
class AgentStatus:
    running: bool
    pid: int | None
    pid_file: Path


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


class PidFile:
    """An exclusively locked pid file; the lock, not the file's presence, means "running"."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        """Lock and write our pid, or raise :class:`AlreadyRunning` naming the holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+", encoding="ascii")  # noqa: SIM115 (held open for the lock's lifetime)
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise AlreadyRunning(self.path, _read_pid(self.path)) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
        self._fh.close()
        self._fh = None

    def __enter__(self) -> PidFile:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _is_locked(path: Path) -> bool:
    try:
        fh = open(path, encoding="ascii")  # noqa: SIM115
    except OSError:
        return False
    with fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        return False


def _pid_file_of(config_path: str | os.PathLike[str]) -> Path:
    return ConfigStore(config_path).config.path("pid_file")


def agent_status(config_path: str | os.PathLike[str]) -> AgentStatus:
    """Whether an agent using this config is running, and its pid."""
    path = _pid_file_of(config_path)
    running = _is_locked(path)
    return AgentStatus(running=running, pid=_read_pid(path) if running else None, pid_file=path)


def stop_agent(config_path: str | os.PathLike[str], timeout: float = 60.0) -> bool:
    """SIGTERM the running agent and wait for it to release its lock (it first aborts its jobs).

    Returns True when no agent is running any more. The wait covers the jobs' kill timeout, so the
    default leaves room for ``child_kill_timeout`` plus delivering the results.
    """
    status = agent_status(config_path)
    if not status.running or status.pid is None:
        return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(status.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _is_locked(status.pid_file):
            return True
        time.sleep(0.1)
    return False


def _daemonize(log_file: Path) -> None:
    """Classic double fork: detach from the terminal and session, stdio to the log file."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    devnull = os.open(os.devnull, os.O_RDONLY)
    out = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    os.dup2(devnull, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)


def _setup_logging(store: ConfigStore, foreground: bool) -> Path:
    cfg = store.config
    name = str(cfg.get("log_filename") or "[component].log").replace("[component]", "Satellite")
    log_file = cfg.path("log_dir") / name
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handlers: list[logging.Handler] = [logging.FileHandler(log_file, encoding="utf-8")]
    if foreground:
        handlers.append(logging.StreamHandler(sys.stderr))
    columns = cfg.get("log_columns")
    formatter = BracketFormatter(columns if isinstance(columns, list) and columns else None,
                                 hostname=str(cfg.get("hostname") or "") or None)
    for handler in handlers:
        handler.setFormatter(formatter)
    level = logging.DEBUG if int(cfg.get("debug_level") or 0) >= 9 else logging.INFO
    logging.basicConfig(level=level, handlers=handlers, force=True)
    return log_file


_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


async def _serve(store: ConfigStore) -> None:
    from sundial.satellite.agent import Agent

    agent = Agent(store)
    loop = asyncio.get_running_loop()
    for sig in _STOP_SIGNALS:
        loop.add_signal_handler(sig, agent.request_stop)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)  # a stop sent during start-up lands here
    await agent.run()


def run_agent(config_path: str | os.PathLike[str], foreground: bool = True) -> int:
    """Entry point for ``sundial satellite start``: returns a process exit status.

    Refuses to start (status 1) without a credential or when another agent holds the pid file.
    In background mode the caller returns at once while the daemon carries on.
    """
    try:
        store = ConfigStore(config_path)
        store.validate()
    except ConfigError as exc:
        print(f"sundial satellite: {exc}", file=sys.stderr)
        return 1
    if agent_status(config_path).running:
        print(f"sundial satellite: already running (pid {agent_status(config_path).pid})", file=sys.stderr)
        return 1
    log_file = store.config.path("log_dir") / "background.out"
    if not foreground:
        _daemonize(log_file)
    _setup_logging(store, foreground)
    # From the moment the pid file names us, a stop request must mean a graceful stop: hold the
    # signals until the event loop's handlers are in place.
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        with PidFile(store.config.path("pid_file")):
            log.info("satellite starting (config %s)", store.path)
            asyncio.run(_serve(store))
    except AlreadyRunning as exc:
        log.error("%s", exc)
        return 1
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    log.info("satellite stopped")
    return 0
