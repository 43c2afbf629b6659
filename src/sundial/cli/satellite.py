"""`sundial satellite`: the worker agent on this machine (start, stop, status)."""

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

satellite_app = make_typer(help="The satellite (worker agent) on this machine: start, stop, status.",
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
        fail(f"The satellite did not stop within {timeout:.0f} s.")
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
