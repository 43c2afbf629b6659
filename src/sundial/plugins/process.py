"""Running a plugin as a child of the conductor (scheduler plugins; action plugins can share it).

Spec (plugins-and-wire-protocol §4.2/§4.3, triggers-and-scheduler §4): ``command`` is split
shell-style but run without a shell; a ``script`` is written to a file whose path becomes the
last argument; the child gets one JSON line on STDIN, runs in ``plugin.cwd`` (else the OS temp
folder) under the plugin's (or configured default) user, with the conductor's environment minus
``XYOPS_*`` plus the plugin's secrets, ``XYOPS`` and ``XYOPS_BASE_URL``. A timeout kills the
whole process group, so a plugin that forks cannot leave children behind.

Everything that can go wrong comes back as a :class:`ProcessResult` with ``error`` set; this
module never raises for a misbehaving plugin, so a caller's loop is never at risk.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import hashlib
import os
import pwd
import shlex
import signal
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sundial import __version__

MAX_OUTPUT = 32 * 1024 * 1024  # bytes kept of each stream; more is cut (and flagged)
DRAIN_SECONDS = 2.0  # after a timeout kill: how long to wait for the pipes to close


@dataclass(slots=True)
class ProcessResult:
    """What a plugin child did. ``error``: why it failed (spawn, timeout, exit code), else ''."""

    argv: list[str]
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    error: str = ""
    truncated: bool = False

    @property
    def last_line(self) -> str:
        """The last non-blank STDOUT line: the only one a plugin's answer is read from."""
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        return lines[-1].strip() if lines else ""


@dataclass(slots=True)
class PluginRun:
    """Everything needed to start one plugin child (built by :func:`prepare_run`)."""

    argv: list[str]
    cwd: str
    env: dict[str, str]
    timeout: float
    user: str | int | None = None
    group: str | int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def uid(self) -> int | None:
        """The numeric run-as user, if one is set (and known)."""
        if isinstance(self.user, str):
            try:
                return pwd.getpwnam(self.user).pw_uid
            except KeyError:
                return None
        return self.user


OWN_SETTINGS = ("XYOPS_", "SUNDIAL_")  # our settings (SUNDIAL_* may hold database credentials)


def plugin_env(secrets: Mapping[str, str], base_url: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Conductor env minus our own settings, then the plugin's secrets, then ``XYOPS``/``XYOPS_BASE_URL``."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if not k.startswith(OWN_SETTINGS)}
    env.update({str(k): str(v) for k, v in secrets.items()})
    env["XYOPS"] = __version__
    env["XYOPS_BASE_URL"] = base_url
    return env


def script_path(folder: Path, plugin: Mapping[str, Any]) -> Path:
    """Write the plugin's script (once per content) and return its path (mode 0700)."""
    text = str(plugin.get("script") or "").replace("\r\n", "\n")
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    target = folder / f"{plugin.get('id')}-{digest}"
    if not target.exists():
        folder.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(".tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.chmod(0o700)
        temporary.replace(target)
    return target


def _credential(value: Any) -> str | int | None:
    if value in (None, ""):
        return None
    return int(value) if isinstance(value, int) or (isinstance(value, str) and value.isdigit()) else str(value)


def prepare_run(plugin: Mapping[str, Any], *, script_folder: Path, secrets: Mapping[str, str], base_url: str,
                default_timeout: float, default_credentials: Mapping[str, Any] | None = None) -> PluginRun:
    """The child's argv, cwd, env, timeout and run-as user; ValueError for an unusable command."""
    try:
        argv = shlex.split(str(plugin.get("command") or ""))
    except ValueError as exc:
        raise ValueError(f"Plugin command cannot be parsed: {exc}") from None
    if not argv:
        raise ValueError("Plugin has no command")
    if plugin.get("script"):
        argv.append(str(script_path(script_folder, plugin)))
    timeout = plugin.get("timeout")
    credentials = default_credentials or {}
    return PluginRun(
        argv=argv,
        cwd=str(plugin.get("cwd") or tempfile.gettempdir()),
        env=plugin_env(secrets, base_url),
        timeout=float(timeout) if isinstance(timeout, int | float) and timeout > 0 else default_timeout,
        user=_credential(plugin.get("uid")) or _credential(credentials.get("uid")),
        group=_credential(plugin.get("gid")) or _credential(credentials.get("gid")),
    )


def _check_credentials(run: PluginRun) -> str:
    """An unknown user or group is refused before spawning, with xyOps' wording."""
    try:
        if isinstance(run.user, str):
            pwd.getpwnam(run.user)
    except KeyError:
        return f"User does not exist: {run.user}"
    try:
        if isinstance(run.group, str):
            grp.getgrnam(run.group)
    except KeyError:
        return f"Group does not exist: {run.group}"
    return ""


def _run_as(run: PluginRun) -> dict[str, Any]:
    """Only switch user when it is a different one (a non-root conductor cannot switch at all)."""
    options: dict[str, Any] = {}
    user = pwd.getpwnam(run.user).pw_uid if isinstance(run.user, str) else run.user
    if user is not None and user != os.getuid():
        options["user"] = user
    group = grp.getgrnam(run.group).gr_gid if isinstance(run.group, str) else run.group
    if group is not None and group != os.getgid():
        options["group"] = group
    return options


@dataclass(slots=True)
class _Streams:
    """STDOUT/STDERR bytes read so far: filled as they arrive, so a timeout keeps what came."""

    out: bytearray = field(default_factory=bytearray)
    err: bytearray = field(default_factory=bytearray)
    cut: bool = False

    def into(self, result: ProcessResult) -> None:
        result.stdout = self.out.decode("utf-8", "replace")
        result.stderr = self.err.decode("utf-8", "replace")
        result.truncated = self.cut


async def _read_capped(stream: asyncio.StreamReader | None, kept: bytearray, streams: _Streams) -> None:
    if stream is None:
        return
    while chunk := await stream.read(65536):
        room = MAX_OUTPUT - len(kept)
        if len(chunk) > room:
            streams.cut = True
        kept += chunk[:max(room, 0)]


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


async def run_plugin(run: PluginRun, stdin_line: str) -> ProcessResult:
    """Start the child, write one line to STDIN, collect STDOUT/STDERR until exit or timeout.

    After a timeout the process group is killed and the output it printed so far is kept
    (read until the pipes close, at most ``DRAIN_SECONDS``), so the error can show it."""
    result = ProcessResult(argv=list(run.argv))
    problem = _check_credentials(run)
    if problem:
        result.error = problem
        return result
    try:
        proc = await asyncio.create_subprocess_exec(
            *run.argv, cwd=run.cwd, env=run.env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True, **_run_as(run))
    except (OSError, ValueError) as exc:
        result.error = f"Child spawn error: {exc}"
        return result
    streams = _Streams()
    talk = asyncio.ensure_future(_talk(proc, stdin_line, streams))
    try:
        await asyncio.wait_for(asyncio.shield(talk), run.timeout)
    except TimeoutError:
        _kill_group(proc)
        await _finish(talk)
        await proc.wait()
        result.error = f"Plugin timed out after {run.timeout:g} seconds"
    except BaseException:
        _kill_group(proc)  # cancelled (shutdown): never leave the child behind
        talk.cancel()
        raise
    streams.into(result)
    result.exit_code = proc.returncode
    if not result.error and proc.returncode:
        first = next((line for line in result.stderr.splitlines() if line.strip()), "")
        result.error = f"Plugin exited with code {proc.returncode}" + (f": {first.strip()}" if first else "")
    return result


async def _finish(talk: asyncio.Future[None]) -> None:
    """Let the readers take what the killed group left in the pipes; a descendant that left the
    group could hold them open, so give up after DRAIN_SECONDS."""
    with contextlib.suppress(TimeoutError, OSError):
        await asyncio.wait_for(talk, DRAIN_SECONDS)


async def _talk(proc: asyncio.subprocess.Process, stdin_line: str, streams: _Streams) -> None:
    async def feed() -> None:
        if proc.stdin is None:
            return
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            proc.stdin.write(stdin_line.encode() + b"\n")
            await proc.stdin.drain()
            proc.stdin.close()

    await asyncio.gather(feed(), _read_capped(proc.stdout, streams.out, streams),
                         _read_capped(proc.stderr, streams.err, streams))
    await proc.wait()
