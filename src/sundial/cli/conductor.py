"""Run the conductor: start (in the foreground or the background), stop, restart, status, version."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from sundial import __version__
from sundial.cli.common import (
    DebugLevelOption,
    HomeOption,
    PortOption,
    SetOption,
    app,
    cli_overrides,
    fail,
    load_home,
)
from sundial.config import (
    Config,
    ConfigError,
)
from sundial.pidfile import PidFileError, claim_pid_file, read_live_pid, release_pid_file


@app.command()
def start(
    home: HomeOption = None,
    foreground: Annotated[bool, typer.Option("--foreground", "-f",
                                             help="Run in this terminal instead of in the background.")] = False,
    echo: Annotated[bool, typer.Option("--echo", help="Mirror log lines to the console.")] = False,
    port: PortOption = None,
    debug_level: DebugLevelOption = None,
    setting: SetOption = None,
) -> None:
    """Start the conductor (API, UI, scheduler) with its local satellite.

    The flags are remembered: `status` shows the URL they give and `restart` uses them again.
    """
    from sundial.launch import StartFlags

    flags = StartFlags(port=port, debug_level=debug_level, settings=list(setting or []))
    config = load_home(home, cli_overrides(port, debug_level, flags.settings))
    if not foreground:
        _start_background(config, flags)
        return
    _run_foreground(config, flags, echo or bool(config.get("echo")))


def _run_foreground(config: Config, flags: Any, echo: bool) -> None:
    from sundial.memory import tune_malloc

    tune_malloc()  # before the imports and threads below allocate (see sundial.memory)
    from sundial.server import serve

    pid_file = config.path("pid_file")
    try:
        claim_pid_file(pid_file)
    except PidFileError as exc:
        fail(str(exc))
    try:
        asyncio.run(serve(config, echo=echo, on_ready=lambda conductor: _announce(config, flags, conductor)))
    except ConfigError as exc:
        fail(f"Cannot start: {exc}")
    except KeyboardInterrupt:
        pass
    finally:
        release_pid_file(pid_file)


async def _announce(config: Config, flags: Any, conductor: Any) -> None:
    """The conductor serves: record the launch (status, restart, the waiting `start`), print the banner."""
    from sundial.launch import LaunchState, admin_has_default_password, banner, local_url, write_state

    state = LaunchState(pid=os.getpid(), url=local_url(config), flags=flags,
                        default_password=await admin_has_default_password(conductor.services.users))
    try:
        write_state(config, state)
    except OSError as exc:
        typer.secho(f"Could not record the launch state ({exc}); `status` and `restart` fall back to the "
                    f"configuration.", fg=typer.colors.YELLOW, err=True)
    for line in banner(config, state, interactive=sys.stdin is not None and sys.stdin.isatty()):
        typer.echo(line)


def _start_background(config: Config, flags: Any) -> None:
    pid_file = config.path("pid_file")
    running = read_live_pid(pid_file)
    if running:
        fail(f"Sundial is already running (pid {running}).")
    console = config.path("log_dir") / "console.log"
    offset = console.stat().st_size if console.exists() else 0  # show this run's output only
    argv = [sys.executable, "-m", "sundial", "start", "--foreground", "--home", str(config.home), *flags.argv()]
    with open(console, "ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    state = _wait_ready(config, proc, timeout=30)
    if state is not None:
        typer.echo(f"Sundial started (pid {proc.pid}) at {state.url}  (logs: {config.path('log_dir')})")
        if state.default_password:
            typer.echo("Log in as admin / admin, then change that password.")
        return
    code = proc.poll()
    output = _console_since(console, offset)
    if code is not None:
        fail(f"Sundial did not start (exit code {code}). Console output:\n{output}")
    fail(f"Sundial (pid {proc.pid}) did not come up within 30 s; it may still be starting (see "
          f"{config.path('log_dir')}). Console output so far:\n{output}")


def _console_since(console: Path, offset: int) -> str:
    try:
        with open(console, "rb") as handle:
            handle.seek(offset)
            text = handle.read().decode(errors="replace")
    except OSError:
        return ""
    return text[-4000:].rstrip() or "(none)"


def _wait_ready(config: Config, proc: subprocess.Popen[bytes], timeout: float) -> Any:
    """The launch state once our own child says it serves, and its URL answers; None if it died or hung.

    The state file must name the child's pid: another process that answers on the port (a
    second conductor holding it) proves nothing. Local checks never go through a proxy.
    """
    import httpx

    from sundial.launch import live_state

    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return None
        state = live_state(config, proc.pid)
        if state is not None:
            try:
                if httpx.get(state.url + "/health", timeout=1, trust_env=False).status_code in (200, 503):
                    return state
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    return None


@app.command()
def stop(home: HomeOption = None,
         timeout: Annotated[float, typer.Option(help="Seconds to wait before giving up.")] = 30) -> None:
    """Stop the conductor gracefully (running jobs are told to finish or stop first)."""
    config = load_home(home)
    pid = read_live_pid(config.path("pid_file"))
    if not pid:
        typer.echo("Sundial is not running.")
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not _alive(pid):
            typer.echo(f"Sundial stopped (pid {pid}).")
            return
        time.sleep(0.1)
    fail(f"Sundial (pid {pid}) did not stop within {timeout:.0f} s. It may still be finishing "
          f"work; check logs/Sundial.log, or force it with: kill -9 {pid}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@app.command()
def restart(home: HomeOption = None) -> None:
    """Stop the conductor if it runs, then start it in the background with the flags of the last start.

    The new configuration's HTTPS certificate is checked first: a bad pair leaves the running
    conductor untouched instead of stopping it and failing to start.
    """
    from sundial.launch import StartFlags, read_state
    from sundial.tls import TlsError, preflight_tls

    state = read_state(load_home(home))
    flags = state.flags if state is not None else StartFlags()
    try:
        preflight_tls(load_home(home, cli_overrides(flags.port, flags.debug_level, flags.settings)))
    except TlsError as exc:
        fail(f"Not restarting (the running conductor was left as it is): {exc}")
    stop(home=home, timeout=30)
    if flags.argv():
        typer.echo(f"Starting with the flags of the last start: {' '.join(flags.argv())}")
    start(home=home, foreground=False, echo=False, port=flags.port, debug_level=flags.debug_level,
          setting=flags.settings)


@app.command()
def status(home: HomeOption = None) -> None:
    """Say whether the conductor runs, with its pid and URL (exit code 1 when stopped)."""
    from sundial.launch import live_state, local_url

    config = load_home(home)
    pid = read_live_pid(config.path("pid_file"))
    if not pid:
        typer.echo("Sundial is not running.")
        raise typer.Exit(1)
    state = live_state(config, pid)
    if state is None:
        typer.echo(f"Sundial is running (pid {pid}), probably at {local_url(config)} (it did not record "
                   f"its start flags; it may still be starting)")
        return
    typer.echo(f"Sundial is running (pid {pid}) at {state.url}")


@app.command()
def version() -> None:
    """Print the Sundial version."""
    typer.echo(f"Sundial {__version__}")
