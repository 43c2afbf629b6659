"""Built-in event plugins of the satellite (plugins-and-wire-protocol.md §8).

A job whose plugin command is ``[http-plugin]``, ``[test-plugin]`` or ``[hook-plugin]`` runs
``<python> -m sundial.satellite.plugins <name>`` as its child. The plugin is then an ordinary job
process: it reads the job document from stdin and speaks the wire protocol on stdout, so the agent
treats it exactly like a third-party plugin (same limits, abort, log rules). Running them out of
process keeps a hung HTTP server away from the agent. ``[shell-plugin]`` jobs are the exception:
the agent spawns their script itself (:mod:`sundial.satellite.shelljob`), sparing a Python start-up
per job, with the same rules (:mod:`.shellrules`); ``shell-plugin`` still runs stand-alone here.

This module stays import-light: the agent imports it for :func:`builtin_argv` only.
"""

from __future__ import annotations

import os
import sys

__all__ = ["BUILTINS", "builtin_argv"]

#: Built-in plugin name → module under this package that implements it.
BUILTINS: dict[str, str] = {
    "shell-plugin": "shell",
    "http-plugin": "httpreq",
    "test-plugin": "selftest",
    "hook-plugin": "hook",
}


def builtin_argv(name: str) -> list[str]:
    """The command line of a built-in plugin, or a KeyError for a name we do not implement.

    ``-P`` keeps the job's working directory (where input files land) off ``sys.path``, so a
    downloaded ``httpx.py`` cannot shadow a library. ``-E -s`` also ignore ``PYTHONPATH`` and the
    user site, unless the agent itself depends on ``PYTHONPATH`` to find Sundial.
    """
    if name not in BUILTINS:
        raise KeyError(name)
    flags = ["-P"] if os.environ.get("PYTHONPATH") else ["-P", "-E", "-s"]
    return [sys.executable, *flags, "-m", __name__, name]
