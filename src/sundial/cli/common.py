"""What every `sundial` sub-command shares: the root app, the home option, loading a home, failing clearly."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from sundial.config import (
    Config,
    ConfigError,
    load_config,
    resolve_home,
    write_sample_config,
)


def make_typer(**kwargs: Any) -> typer.Typer:
    """Plain click help: paragraphs re-wrapped to the terminal, flags shown without a type.

    (Typer's rich help keeps the docstrings' own line breaks and labels every flag `<bool>`.)
    """
    return typer.Typer(rich_markup_mode=None, **kwargs)


app = make_typer(help="Sundial: job scheduler, workflow engine, fleet monitor and secrets vault.",
             no_args_is_help=True, add_completion=False)

HomeOption = Annotated[Path | None, typer.Option(
    "--home", envvar="SUNDIAL_HOME",
    help="Home folder holding conf/, data/, logs/ and temp/ (default ~/.sundial).")]


def fail(message: str, code: int = 1) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def cli_overrides(port: int | None, debug_level: int | None, settings: list[str]) -> dict[str, Any]:
    from sundial.config import parse_env_value

    overrides: dict[str, Any] = {}
    if port is not None:
        overrides["WebServer.port"] = port
    if debug_level is not None:
        overrides["debug_level"] = debug_level
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key] = parse_env_value(value)
    return overrides


def load_home(home: Path | None, cli: dict[str, Any] | None = None) -> Config:
    resolved = resolve_home(home)
    for sub in ("conf", "data", "logs", "temp"):
        (resolved / sub).mkdir(parents=True, exist_ok=True)
    write_sample_config(resolved)
    try:
        return load_config(resolved, cli)
    except ConfigError as exc:
        fail(f"Cannot start: {exc}")
        raise  # unreachable; keeps type checkers calm


SetOption = Annotated[list[str] | None, typer.Option(
    "--set", metavar="KEY=VALUE", help="Any config key, e.g. --set User.use_csrf=false (repeatable).")]
PortOption = Annotated[int | None, typer.Option(help="HTTP port (WebServer.port).")]
DebugLevelOption = Annotated[int | None, typer.Option(help="Log verbosity, 1 to 10.")]

