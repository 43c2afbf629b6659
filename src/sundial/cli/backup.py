"""`sundial export` / `sundial import`: backups in the xyOps format, with progress bars."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from sundial.cli.common import (
    HomeOption,
    app,
    fail,
    load_home,
)
from sundial.pidfile import read_live_pid

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
    config = load_home(home)
    try:
        count, size = _bar("Export", lambda tick: asyncio.run(run_offline(
            config, lambda s: export_to_file(s, target, selection, tick))))
    except (SelectionError, OSError) as exc:
        fail(f"Export failed: {exc}")
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

    config = load_home(home)
    if read_live_pid(config.path("pid_file")):
        fail("The conductor is running: stop it first (sundial stop), or upload the file to the running "
              "conductor (admin_import_data, or the web UI).")
    if not yes:
        typer.confirm(f"Import {backup} into {config.home}? Lists in the file replace the stored ones", abort=True)
    report = _bar("Import", lambda tick: asyncio.run(run_offline(config, lambda s: import_file(s, backup, tick))))
    typer.echo(report.markdown())
    if not report.applied:
        raise typer.Exit(1)
