"""The `sundial` command: run the conductor and administer it from a shell.

One module per command group; importing them registers their commands on the root app.
"""

from __future__ import annotations

from sundial.cli.common import app

# Importing a group registers its commands; the order here is the order `sundial --help` lists them in.
# isort: off
from sundial.cli import conductor, admin, key, satellite, backup, service  # noqa: F401, E402
# isort: on

__all__ = ["app", "main"]


def main() -> None:
    app()
