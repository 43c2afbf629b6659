"""systemd unit files for the conductor and the satellite (`sundial service install|uninstall`).

The units run the foreground commands, so systemd owns the process: `Restart=on-failure`
brings a crashed conductor back, and `KillMode=mixed` sends SIGTERM to the conductor alone
(it stops its jobs and local satellite itself) and SIGKILLs leftovers only after the timeout.
This module only writes and removes files; it never calls systemctl, it prints the commands.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

CONDUCTOR_UNIT = "sundial.service"
SATELLITE_UNIT = "sundial-satellite.service"
SYSTEM_DIR = Path("/etc/systemd/system")


@dataclass(frozen=True)
class UnitOptions:
    home: Path
    user: str = ""
    python: str = sys.executable
    satellite_config: Path | None = None


def unit_dir(prefix: Path | None) -> Path:
    """`/etc/systemd/system`, or the same path under `prefix` (packaging, tests)."""
    return prefix / "etc" / "systemd" / "system" if prefix else SYSTEM_DIR


def _user_lines(user: str) -> str:
    return f"User={user}\nGroup={user}\n" if user else ""


def conductor_unit(opts: UnitOptions) -> str:
    command = shlex.join([opts.python, "-m", "sundial", "start", "--foreground", "--home", str(opts.home)])
    return f"""[Unit]
Description=Sundial conductor (scheduler, API, UI)
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
{_user_lines(opts.user)}Environment=SUNDIAL_HOME={opts.home}
WorkingDirectory={opts.home}
ExecStart={command}
Restart=on-failure
RestartSec=5
KillMode=mixed
TimeoutStopSec=90
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
"""


class UnitError(ValueError):
    """A unit that could never run as asked; the message says what to give instead."""


def local_satellite_config(home: Path) -> Path:
    """The config of the satellite the conductor itself runs (`local_satellite`)."""
    return home / "satellite" / "config.json"


def satellite_config_for_unit(opts: UnitOptions) -> Path:
    """The stand-alone agent's config.json; never the local satellite's.

    The conductor runs its local satellite from `<home>/satellite/config.json` and holds that
    agent's pid lock, so a second agent on the same config would exit at once, and with
    `Restart=always` systemd would restart it every few seconds forever.
    """
    if opts.satellite_config is None:
        raise UnitError("--satellite needs --satellite-config PATH: the config.json of a stand-alone agent "
                        "(e.g. DIR/config.json written by the satellite installer). The conductor already "
                        "runs a local satellite from its home; it needs no unit of its own.")
    config = opts.satellite_config.expanduser().resolve()
    if config == local_satellite_config(opts.home.expanduser().resolve()):
        raise UnitError(f"{config} is the conductor's local satellite, which sundial.service already runs: a "
                        f"second unit on it would fail forever. Give a stand-alone agent's config.json, or "
                        f"set local_satellite.enabled=false and copy that config to another folder first.")
    return config


def satellite_unit(opts: UnitOptions) -> str:
    config = satellite_config_for_unit(opts)
    command = shlex.join([opts.python, "-m", "sundial", "satellite", "start", "--foreground", "--config", str(config)])
    return f"""[Unit]
Description=Sundial satellite (worker agent)
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
{_user_lines(opts.user)}ExecStart={command}
Restart=always
RestartSec=5
KillMode=mixed
TimeoutStopSec=90
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
"""


def install(opts: UnitOptions, *, prefix: Path | None, conductor: bool, satellite: bool) -> list[Path]:
    """Write the chosen units (mode 0644); returns their paths. Raises UnitError before writing anything."""
    texts = [(name, render(opts)) for wanted, name, render in ((conductor, CONDUCTOR_UNIT, conductor_unit),
                                                              (satellite, SATELLITE_UNIT, satellite_unit)) if wanted]
    target = unit_dir(prefix)
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, text in texts:
        path = target / name
        path.write_text(text, encoding="utf-8")
        path.chmod(0o644)
        written.append(path)
    return written


def uninstall(*, prefix: Path | None) -> list[Path]:
    """Remove whichever Sundial units exist; returns the removed paths."""
    removed = []
    for name in (CONDUCTOR_UNIT, SATELLITE_UNIT):
        path = unit_dir(prefix) / name
        if path.exists():
            path.unlink()
            removed.append(path)
    return removed
