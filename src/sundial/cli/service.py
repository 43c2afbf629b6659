"""`sundial service`: systemd unit files for the conductor and a stand-alone satellite."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sundial.cli.common import (
    HomeOption,
    app,
    fail,
    make_typer,
)
from sundial.config import (
    resolve_home,
)

service_app = make_typer(help="systemd units for the conductor and the satellite on this machine.",
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
        fail(f"No unit files written: {exc}")
        raise
    except OSError as exc:
        fail(f"Cannot write the unit files: {exc} (run as root, or use --prefix)")
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
        fail(f"Cannot remove the unit files: {exc}")
        raise
    for path in removed:
        typer.echo(f"Removed {path}")
    if not removed:
        typer.echo("No Sundial unit files were installed.")
        return
    typer.echo("Now run: systemctl daemon-reload")
