"""What `sundial start` was given, and what the started conductor says about itself.

The conductor writes a small state file next to its pid file once its HTTP port serves:
its pid, the local URL, whether admin still has the default password, and the start flags
(`--port`, `--debug-level`, `--set`). `status` reads the URL from it and `restart` starts
again with the same flags; the background `start` waits for the file to name its own child,
which proves the process that answers is the one it launched. Environment variables are not
recorded (they may hold secrets); they come from the shell that runs the command.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from sundial.config import Config, write_json_atomic


@dataclass
class StartFlags:
    """The configuration flags of `sundial start`, reused by `restart`."""

    port: int | None = None
    debug_level: int | None = None
    settings: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: Any) -> StartFlags:
        if not isinstance(data, dict):
            return cls()
        port, level, settings = data.get("port"), data.get("debug_level"), data.get("settings")
        return cls(port=port if isinstance(port, int) else None,
                   debug_level=level if isinstance(level, int) else None,
                   settings=[s for s in settings if isinstance(s, str)] if isinstance(settings, list) else [])

    def argv(self) -> list[str]:
        """The same flags as command-line arguments (for the background child)."""
        args: list[str] = []
        if self.port is not None:
            args += ["--port", str(self.port)]
        if self.debug_level is not None:
            args += ["--debug-level", str(self.debug_level)]
        for item in self.settings:
            args += ["--set", item]
        return args


@dataclass
class LaunchState:
    pid: int
    url: str
    flags: StartFlags
    default_password: bool = False


def state_file(config: Config) -> Path:
    """`logs/sundial.pid` -> `logs/sundial.launch.json`."""
    pid_file = config.path("pid_file")
    return pid_file.with_name(pid_file.stem + ".launch.json")


def local_url(config: Config) -> str:
    """Where this machine reaches the HTTP port: loopback unless bound to one address."""
    bound = str(config.get("WebServer.bind_address") or "")
    host = "127.0.0.1" if bound in ("", "0.0.0.0", "*") else "[::1]" if bound == "::" else bound
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{config.get('WebServer.port')}"


def write_state(config: Config, state: LaunchState) -> None:
    data = {"pid": state.pid, "url": state.url, "default_password": state.default_password,
            "flags": asdict(state.flags)}
    write_json_atomic(state_file(config), data, mode=0o644)


def read_state(config: Config) -> LaunchState | None:
    """The last launch's state, or None (never started, or an unreadable file)."""
    try:
        data = orjson.loads(state_file(config).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("pid"), int):
        return None
    return LaunchState(pid=data["pid"], url=str(data.get("url") or local_url(config)),
                       flags=StartFlags.from_dict(data.get("flags")),
                       default_password=bool(data.get("default_password")))


def live_state(config: Config, pid: int) -> LaunchState | None:
    """The state file when it was written by the running process `pid`."""
    state = read_state(config)
    return state if state is not None and state.pid == pid else None


def banner(config: Config, state: LaunchState, *, interactive: bool) -> list[str]:
    """The few lines a foreground start prints once it serves."""
    from sundial import __version__

    lines = [f"Sundial {__version__} is ready at {state.url} (pid {os.getpid()})."]
    if state.default_password:
        lines.append("Log in as admin / admin, then change that password.")
    lines.append(f"Logs: {config.path('log_dir')} (Sundial.log; errors also in Error.log).")
    if interactive:
        lines.append("Press Ctrl-C to stop.")
    return lines


async def admin_has_default_password(users: Any) -> bool:
    """Whether the seeded account still logs in with admin/admin (the banner says so only then)."""
    from sundial.auth.passwords import verify_password_async

    admin = users.get("admin")
    if not admin or not admin.get("active", 1):
        return False
    return await verify_password_async("admin", str(admin.get("salt") or ""), str(admin.get("password") or ""))
