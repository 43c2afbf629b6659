"""`sundial admin`: users and API keys, straight on the database.

They work with the conductor stopped, so they help when the web UI is unreachable or every admin
password is lost; a running conductor is told to reload (SIGHUP).
"""

from __future__ import annotations

import asyncio
import os
import signal
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
from sundial.pidfile import read_live_pid

admin_app = make_typer(help="Manage users and API keys from the shell (works with the server "
                           "stopped or running).", no_args_is_help=True)
app.add_typer(admin_app, name="admin")


def _admin_run(home: Path | None, action: Any) -> Any:
    from sundial.admin_tools import run_offline

    config = load_home(home)
    try:
        result = asyncio.run(run_offline(config, action))
    except ValueError as exc:
        fail(str(exc))
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
