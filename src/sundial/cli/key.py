"""`sundial key`: verify the secret key, rotate it with the conductor stopped, recover satellites offline."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

from sundial.cli.common import (
    HomeOption,
    app,
    fail,
    load_home,
    make_typer,
)
from sundial.config import (
    Config,
    ConfigError,
)
from sundial.pidfile import read_live_pid

key_app = make_typer(help="The secret key: verify it, rotate it (server stopped), recover satellites "
                         "offline. Online rotation: admin_rotate_secret_key or POST "
                         "/api/maintenance/rotate-key.", no_args_is_help=True)
app.add_typer(key_app, name="key")

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

    config = load_home(home)
    try:
        return asyncio.run(run_offline(config, action))
    except VaultError as exc:
        fail(exc.description)
    except ConfigError as exc:
        fail(str(exc))


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

    config = load_home(home)
    if read_live_pid(config.path("pid_file")):
        fail("The conductor is running: stop it first (sundial stop), or rotate online with "
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

    config = load_home(home)
    try:
        key = configured_key(config)
    except ConfigError as exc:
        fail(str(exc))
        raise
    if not force:
        known = _known_server_ids(config, server_id)
        if server_id not in known:
            listed = ", ".join(known[:20]) + (" …" if len(known) > 20 else "") if known else "none yet"
            fail(f"No server with id {server_id!r} has joined this conductor (known: {listed}). Check the id "
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
        fail("No key rotation is pending.")
    typer.echo(key)
