"""The `sundial` command: run the conductor and administer it from a shell.

Admin commands work on the database directly, so they help even when the web UI is
unreachable or every admin password is lost; a running conductor is told to reload.
"""

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
from sundial.config import (
    Config,
    ConfigError,
    load_config,
    resolve_home,
    write_sample_config,
)
from sundial.pidfile import PidFileError, claim_pid_file, read_live_pid, release_pid_file


def _typer(**kwargs: Any) -> typer.Typer:
    """Plain click help: paragraphs re-wrapped to the terminal, flags shown without a type.

    (Typer's rich help keeps the docstrings' own line breaks and labels every flag `<bool>`.)
    """
    return typer.Typer(rich_markup_mode=None, **kwargs)


app = _typer(help="Sundial: job scheduler, workflow engine, fleet monitor and secrets vault.",
             no_args_is_help=True, add_completion=False)
admin_app = _typer(help="Manage users and API keys from the shell (works with the server "
                        "stopped or running).", no_args_is_help=True)
app.add_typer(admin_app, name="admin")
key_app = _typer(help="The secret key: verify it, rotate it (server stopped), recover satellites "
                      "offline. Online rotation: admin_rotate_secret_key or POST "
                      "/api/maintenance/rotate-key.", no_args_is_help=True)
app.add_typer(key_app, name="key")

HomeOption = Annotated[Path | None, typer.Option(
    "--home", envvar="SUNDIAL_HOME",
    help="Home folder holding conf/, data/, logs/ and temp/ (default ~/.sundial).")]


def _fail(message: str, code: int = 1) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _cli_overrides(port: int | None, debug_level: int | None, settings: list[str]) -> dict[str, Any]:
    from sundial.config import parse_env_value

    overrides: dict[str, Any] = {}
    if port is not None:
        overrides["WebServer.port"] = port
    if debug_level is not None:
        overrides["debug_level"] = debug_level
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key:
            _fail(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key] = parse_env_value(value)
    return overrides


def _load(home: Path | None, cli: dict[str, Any] | None = None) -> Config:
    resolved = resolve_home(home)
    for sub in ("conf", "data", "logs", "temp"):
        (resolved / sub).mkdir(parents=True, exist_ok=True)
    write_sample_config(resolved)
    try:
        return load_config(resolved, cli)
    except ConfigError as exc:
        _fail(f"Cannot start: {exc}")
        raise  # unreachable; keeps type checkers calm


SetOption = Annotated[list[str] | None, typer.Option(
    "--set", metavar="KEY=VALUE", help="Any config key, e.g. --set User.use_csrf=false (repeatable).")]
PortOption = Annotated[int | None, typer.Option(help="HTTP port (WebServer.port).")]
DebugLevelOption = Annotated[int | None, typer.Option(help="Log verbosity, 1 to 10.")]


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
    config = _load(home, _cli_overrides(port, debug_level, flags.settings))
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
        _fail(str(exc))
    try:
        asyncio.run(serve(config, echo=echo, on_ready=lambda conductor: _announce(config, flags, conductor)))
    except ConfigError as exc:
        _fail(f"Cannot start: {exc}")
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
        _fail(f"Sundial is already running (pid {running}).")
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
        _fail(f"Sundial did not start (exit code {code}). Console output:\n{output}")
    _fail(f"Sundial (pid {proc.pid}) did not come up within 30 s; it may still be starting (see "
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
    config = _load(home)
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
    _fail(f"Sundial (pid {pid}) did not stop within {timeout:.0f} s. It may still be finishing "
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

    state = read_state(_load(home))
    flags = state.flags if state is not None else StartFlags()
    try:
        preflight_tls(_load(home, _cli_overrides(flags.port, flags.debug_level, flags.settings)))
    except TlsError as exc:
        _fail(f"Not restarting (the running conductor was left as it is): {exc}")
    stop(home=home, timeout=30)
    if flags.argv():
        typer.echo(f"Starting with the flags of the last start: {' '.join(flags.argv())}")
    start(home=home, foreground=False, echo=False, port=flags.port, debug_level=flags.debug_level,
          setting=flags.settings)


@app.command()
def status(home: HomeOption = None) -> None:
    """Say whether the conductor runs, with its pid and URL (exit code 1 when stopped)."""
    from sundial.launch import live_state, local_url

    config = _load(home)
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


# -- admin commands ------------------------------------------------------------------------

def _admin_run(home: Path | None, action: Any) -> Any:
    from sundial.admin_tools import run_offline

    config = _load(home)
    try:
        result = asyncio.run(run_offline(config, action))
    except ValueError as exc:
        _fail(str(exc))
    pid = read_live_pid(config.path("pid_file"))
    if pid:
        os.kill(pid, signal.SIGHUP)
    return result


@admin_app.command("create-user")
def create_user(
    username: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                                          help="Password (prompted when omitted).")],
    email: Annotated[str, typer.Option(help="E-mail address.")] = "",
    full_name: Annotated[str, typer.Option(help="Display name.")] = "",
    admin: Annotated[bool, typer.Option("--admin", help="Grant the Administrator privilege.")] = False,
    home: HomeOption = None,
) -> None:
    """Create a user account (use --admin for an administrator)."""
    from sundial import admin_tools

    _admin_run(home, lambda s: admin_tools.create_user(s, username, password, email, full_name, admin))
    typer.echo(f"Created user {username}.")


@admin_app.command("reset-password")
def reset_password(
    username: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                                          help="New password (prompted when omitted).")],
    home: HomeOption = None,
) -> None:
    """Set a new password for a user; also lifts a lockout."""
    from sundial import admin_tools

    _admin_run(home, lambda s: admin_tools.reset_password(s, username, password))
    typer.echo(f"Password of {username} changed.")


@admin_app.command("unlock")
def unlock(username: str, home: HomeOption = None) -> None:
    """Lift a lockout caused by repeated wrong passwords."""
    from sundial import admin_tools

    _admin_run(home, lambda s: admin_tools.unlock(s, username))
    typer.echo(f"Unlocked {username}.")


@admin_app.command("grant")
def grant(username: str, privilege: str, home: HomeOption = None) -> None:
    """Give a user one privilege (e.g. admin, create_events)."""
    from sundial import admin_tools

    _admin_run(home, lambda s: admin_tools.set_privilege(s, username, privilege, True))
    typer.echo(f"Granted {privilege} to {username}.")


@admin_app.command("revoke")
def revoke(username: str, privilege: str, home: HomeOption = None) -> None:
    """Take one privilege away from a user."""
    from sundial import admin_tools

    _admin_run(home, lambda s: admin_tools.set_privilege(s, username, privilege, False))
    typer.echo(f"Revoked {privilege} from {username}.")


@admin_app.command("create-api-key")
def create_api_key(
    title: str,
    privilege: Annotated[list[str] | None, typer.Option(
        "--privilege", "-p", metavar="PRIVILEGE", help="Privilege to grant (repeatable), e.g. -p admin.")] = None,
    home: HomeOption = None,
) -> None:
    """Create an API key and print it once; only its hash is stored."""
    from sundial import admin_tools

    plain = _admin_run(home, lambda s: admin_tools.create_api_key(s, title, privilege or []))
    typer.echo("API key created. Copy it now; it cannot be shown again:")
    typer.echo(plain)


# -- key commands --------------------------------------------------------------------------

KeyFileOption = Annotated[Path | None, typer.Option(
    "--key-file", exists=True, dir_okay=False, readable=True,
    help="Read a key from this file (only a trailing line ending is stripped) instead of using the "
         "configured one.")]


def _read_key_file(path: Path) -> Any:
    from sundial.vault.crypto import SecretKey

    return SecretKey(path.read_text(encoding="utf-8").rstrip("\r\n"))


def _key_run(home: Path | None, action: Any) -> Any:
    from sundial.admin_tools import run_offline
    from sundial.vault.errors import VaultError

    config = _load(home)
    try:
        return asyncio.run(run_offline(config, action))
    except VaultError as exc:
        _fail(exc.description)
    except ConfigError as exc:
        _fail(str(exc))


@key_app.command("verify")
def key_verify(home: HomeOption = None, key_file: KeyFileOption = None) -> None:
    """Check that the configured key (or --key-file) opens this store's integrity canary.

    Works with the conductor stopped or running; exit code 1 when the key is wrong.
    """
    from sundial.vault.offline import verify_key

    candidate = _read_key_file(key_file) if key_file else None
    report = _key_run(home, lambda s: verify_key(s.vault, candidate))
    for line in report.lines():
        typer.echo(line)
    if not report.ok:
        raise typer.Exit(1)


@key_app.command("rotate")
def key_rotate(
    home: HomeOption = None,
    new_key_file: Annotated[Path | None, typer.Option(
        "--new-key-file", exists=True, dir_okay=False, readable=True,
        help="The new key (required when the key comes from the environment or a _FILE variable; "
             "otherwise a 64-hex key is generated and saved to overrides.json).")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Re-encrypt every secret under a new key, with the conductor stopped.

    All or nothing: an interruption at any point leaves every secret readable, and the next
    start (or this command again) finishes or discards the rotation. Back up the database first.
    """
    from sundial.vault.offline import rotate_offline

    config = _load(home)
    if read_live_pid(config.path("pid_file")):
        _fail("The conductor is running: stop it first (sundial stop), or rotate online with "
              "admin_rotate_secret_key or POST /api/maintenance/rotate-key.")
    if not yes:
        typer.confirm("Rotate the secret key now? (back up the database first)", abort=True)
    new = _read_key_file(new_key_file) if new_key_file else None
    outcome = _with_progress("Re-encrypting secrets", lambda tick: _key_run(
        home, lambda s: rotate_offline(s.vault, new, progress=tick)))
    typer.echo(f"Rotated {outcome.secrets} secret(s); the key in force has fingerprint {outcome.fingerprint} "
               f"(epoch {outcome.epoch}).")
    if outcome.persisted_to:
        typer.echo(f"The new key was saved to {outcome.persisted_to}.")
    else:
        typer.echo("Now point your key setting (SUNDIAL_secret_key / SUNDIAL_SECRET_KEY_FILE) at the new key; "
                   "the conductor refuses to start until you do.")
    for warning in outcome.warnings:
        typer.secho(warning, fg=typer.colors.YELLOW, err=True)


def _with_progress(title: str, run: Any) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task(title, total=None)
        return run(lambda done, total: bar.update(task, completed=done, total=total))


@key_app.command("satellite-token")
def key_satellite_token(
    server_id: str,
    home: HomeOption = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Print the token even for a server id this conductor has never seen (for a "
                        "satellite you set up by hand with that id).")] = False,
) -> None:
    """Print the auth token of a satellite that missed a rotation: SHA-256(SERVER_ID + secret_key).

    Put it as `auth_token` in that satellite's config.json; it reconnects by itself. Works with
    the conductor stopped. The id must be a server that has joined this conductor (see the
    Servers page or get_servers), since a token for a mistyped id silently fails to
    authenticate; --force skips that check.
    """
    from sundial.vault.offline import satellite_token
    from sundial.vault.startup import configured_key

    config = _load(home)
    try:
        key = configured_key(config)
    except ConfigError as exc:
        _fail(str(exc))
        raise
    if not force:
        known = _known_server_ids(config, server_id)
        if server_id not in known:
            listed = ", ".join(known[:20]) + (" …" if len(known) > 20 else "") if known else "none yet"
            _fail(f"No server with id {server_id!r} has joined this conductor (known: {listed}). Check the id "
                  f"(`server_id` in the satellite's config.json), or use --force to print a token anyway.")
    typer.echo(satellite_token(server_id, key))


def _known_server_ids(config: Config, wanted: str) -> list[str]:
    """`[wanted]` when that server has joined; otherwise every known id, to help spot a typo."""
    from sundial.admin_tools import run_offline
    from sundial.fleet.store import ServerStore

    async def ids(services: Any) -> list[str]:
        store = ServerStore(services.storage)
        if await store.get(wanted) is not None:
            return [wanted]
        return [str(server.get("id")) for server in await store.all()]

    result: list[str] = asyncio.run(run_offline(config, ids))
    return result


@key_app.command("derive-agent-token", hidden=True)
def key_derive_agent_token(server_id: str, home: HomeOption = None,
                           force: Annotated[bool, typer.Option("--force")] = False) -> None:
    """Same as satellite-token (the name used in the key-rotation spec)."""
    key_satellite_token(server_id, home, force)


@key_app.command("show-pending")
def key_show_pending(home: HomeOption = None) -> None:
    """Print the key a committed rotation moved to, when the configured key is the previous one.

    For the recovery case where an env/file-provided key was not updated after a rotation.
    """
    from sundial.vault.offline import pending_key

    key = _key_run(home, lambda s: pending_key(s.vault))
    if key is None:
        _fail("No key rotation is pending.")
    typer.echo(key)


# -- the satellite (worker agent) on this machine --------------------------------------------

satellite_app = _typer(help="The satellite (worker agent) on this machine: start, stop, status.",
                       no_args_is_help=True)
app.add_typer(satellite_app, name="satellite")

AgentConfigOption = Annotated[Path | None, typer.Option(
    "--config", help="Agent config file (default: SATELLITE_config_file, else <home>/satellite/config.json, "
                     "the conductor's local satellite).")]


def _agent_config(config: Path | None, home: Path | None) -> Path:
    from sundial.satellite.main import default_config_path

    return config or default_config_path(resolve_home(home) / "satellite" / "config.json")


@satellite_app.command("start")
def satellite_start(
    config: AgentConfigOption = None,
    home: HomeOption = None,
    foreground: Annotated[bool, typer.Option("--foreground", "-f",
                                             help="Run in this terminal instead of in the background.")] = False,
) -> None:
    """Start the agent; it refuses when another agent already uses the same pid file."""
    from sundial.satellite.daemon import run_agent

    raise typer.Exit(run_agent(_agent_config(config, home), foreground=foreground))


@satellite_app.command("stop")
def satellite_stop(config: AgentConfigOption = None, home: HomeOption = None,
                   timeout: Annotated[float, typer.Option(help="Seconds to wait for running jobs.")] = 60) -> None:
    """Stop the agent (it aborts its jobs and reports them first)."""
    from sundial.satellite.daemon import stop_agent

    if not stop_agent(_agent_config(config, home), timeout=timeout):
        _fail(f"The satellite did not stop within {timeout:.0f} s.")
    typer.echo("Satellite stopped.")


@satellite_app.command("status")
def satellite_status(config: AgentConfigOption = None, home: HomeOption = None) -> None:
    """Say whether the agent runs, with its pid (exit code 1 when stopped)."""
    from sundial.satellite.daemon import agent_status

    status = agent_status(_agent_config(config, home))
    if not status.running:
        typer.echo("Satellite is not running.")
        raise typer.Exit(1)
    typer.echo(f"Satellite is running (pid {status.pid}).")


# -- backups -------------------------------------------------------------------------------

SelectOption = Annotated[str, typer.Option(help="`all`, `none`, or comma-separated names.")]


def _names(value: str) -> str | list[str]:
    value = value.strip()
    if value in ("all", "none", ""):
        return "all" if value == "all" else []
    return [name.strip() for name in value.split(",") if name.strip()]


def _bar(title: str, run: Any) -> Any:
    """Run `run(progress)` under a rich progress bar driven by fractions 0..1 and a phase name."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task(title, total=1.0)
        return run(lambda done, phase: bar.update(task, completed=done, description=f"{title}: {phase}"))


@app.command("export")
def export_data(
    output: Annotated[Path | None, typer.Argument(
        help="Backup file to write (default: sundial-data-export-DATE.txt.gz here).")] = None,
    lists: SelectOption = "all", indexes: SelectOption = "all", extras: SelectOption = "all",
    home: HomeOption = None,
) -> None:
    """Write a backup (xyOps XYBK format, gzip) from the database; safe while the conductor runs.

    A full backup is this file plus the conf/ folder, whose secret_key decrypts the secrets.
    """
    from sundial.admin_tools import run_offline
    from sundial.backup.export import SelectionError
    from sundial.backup.offline import export_to_file

    target = output or Path(f"sundial-data-export-{time.strftime('%Y-%m-%d')}.txt.gz")
    selection = {"lists": _names(lists), "indexes": _names(indexes), "extras": _names(extras)}
    config = _load(home)
    try:
        count, size = _bar("Export", lambda tick: asyncio.run(run_offline(
            config, lambda s: export_to_file(s, target, selection, tick))))
    except (SelectionError, OSError) as exc:
        _fail(f"Export failed: {exc}")
        raise
    typer.echo(f"Wrote {target} ({count:,} lines, {size:,} bytes). Keep it with a copy of {config.home / 'conf'}.")


@app.command("import")
def import_data(
    backup: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                           help="An XYBK backup (.txt or .txt.gz) from Sundial or xyOps.")],
    home: HomeOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Restore a backup into the database, with the conductor stopped: all or nothing.

    Every line is checked first; any bad line refuses the whole file and nothing changes.
    Lists in the file replace the stored lists; records are added or replaced. Use the same
    secret_key as the system that made the backup, or its secrets cannot be decrypted.
    """
    from sundial.admin_tools import run_offline
    from sundial.backup.offline import import_file

    config = _load(home)
    if read_live_pid(config.path("pid_file")):
        _fail("The conductor is running: stop it first (sundial stop), or upload the file to the running "
              "conductor (admin_import_data, or the web UI).")
    if not yes:
        typer.confirm(f"Import {backup} into {config.home}? Lists in the file replace the stored ones", abort=True)
    report = _bar("Import", lambda tick: asyncio.run(run_offline(config, lambda s: import_file(s, backup, tick))))
    typer.echo(report.markdown())
    if not report.applied:
        raise typer.Exit(1)


# -- service files ---------------------------------------------------------------------------

service_app = _typer(help="systemd units for the conductor and the satellite on this machine.",
                     no_args_is_help=True)
app.add_typer(service_app, name="service")
PrefixOption = Annotated[Path | None, typer.Option(
    "--prefix", help="Write under PREFIX/etc/systemd/system instead of /etc/systemd/system.")]


@service_app.command("install")
def service_install(
    home: HomeOption = None,
    user: Annotated[str, typer.Option(help="Run as this user (default: root).")] = "",
    prefix: PrefixOption = None,
    conductor: Annotated[bool, typer.Option(help="Write the conductor unit (sundial.service).")] = True,
    satellite: Annotated[bool, typer.Option(
        help="Also write sundial-satellite.service for a stand-alone agent on this machine (needs "
             "--satellite-config; the conductor's own local satellite needs no unit).")] = False,
    satellite_config: Annotated[Path | None, typer.Option(
        help="The stand-alone agent's config.json (not <home>/satellite/config.json, which the conductor "
             "runs itself).")] = None,
) -> None:
    """Write systemd unit files; prints the systemctl commands to enable them (never runs them)."""
    from sundial import systemd

    options = systemd.UnitOptions(home=resolve_home(home), user=user, satellite_config=satellite_config)
    try:
        written = systemd.install(options, prefix=prefix, conductor=conductor, satellite=satellite)
    except systemd.UnitError as exc:
        _fail(f"No unit files written: {exc}")
        raise
    except OSError as exc:
        _fail(f"Cannot write the unit files: {exc} (run as root, or use --prefix)")
        raise
    for path in written:
        typer.echo(f"Wrote {path}")
    names = " ".join(path.name for path in written)
    typer.echo(f"Now run: systemctl daemon-reload && systemctl enable --now {names}")


@service_app.command("uninstall")
def service_uninstall(prefix: PrefixOption = None) -> None:
    """Remove the unit files; data and conf/ are kept.

    Disable the services first: systemctl disable --now sundial sundial-satellite
    """
    from sundial import systemd

    try:
        removed = systemd.uninstall(prefix=prefix)
    except OSError as exc:
        _fail(f"Cannot remove the unit files: {exc}")
        raise
    for path in removed:
        typer.echo(f"Removed {path}")
    if not removed:
        typer.echo("No Sundial unit files were installed.")
        return
    typer.echo("Now run: systemctl daemon-reload")


def main() -> None:
    app()
