"""``sundial-satellite start|stop|status``: the agent's own small command line.

An installed agent has only the agent part of Sundial in its virtual environment (no conductor,
no typer), so it needs an entry point that imports nothing else; the conductor also starts its
local satellite through this module (``python -m sundial.satellite.main``) for the same reason.
``sundial satellite ...`` on a full install calls the same daemon functions.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sundial.satellite.daemon import agent_status, run_agent, stop_agent

__all__ = ["default_config_path", "main"]


def default_config_path(fallback: str | os.PathLike[str] | None = None) -> Path:
    """``SATELLITE_config_file`` / ``XYSAT_config_file`` env, else ``fallback``, else ./config.json."""
    for name in ("SATELLITE_config_file", "XYSAT_config_file"):
        if os.environ.get(name):
            return Path(os.environ[name])
    return Path(fallback) if fallback else Path("config.json")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sundial-satellite", description="Sundial satellite (worker agent).")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("start", "start the agent (in the background unless --foreground)"),
                       ("stop", "stop the running agent (its jobs are aborted first)"),
                       ("status", "say whether the agent runs (exit code 1 when it does not)")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--config", type=Path, default=None, help="agent config file (config.json)")
        if name == "start":
            cmd.add_argument("--foreground", "-f", action="store_true", help="stay in this terminal")
    return parser


def main(argv: list[str] | None = None, default_config: str | None = None) -> int:
    args = _parser().parse_args(argv)
    config = args.config or default_config_path(default_config)
    if args.command == "start":
        return run_agent(config, foreground=args.foreground)
    if args.command == "stop":
        stopped = stop_agent(config)
        print("satellite stopped" if stopped else "satellite did not stop in time", file=sys.stderr)
        return 0 if stopped else 1
    status = agent_status(config)
    print(f"satellite is running (pid {status.pid})" if status.running else "satellite is not running")
    return 0 if status.running else 1


if __name__ == "__main__":
    sys.exit(main())
