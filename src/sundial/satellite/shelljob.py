"""``[shell-plugin]`` jobs run by the agent itself, with no plugin process in between.

Starting the stand-alone plugin (``python -m sundial.satellite.plugins shell-plugin``) costs a
Python interpreter start-up per job, about 200 ms of CPU before the script even runs; for the most
common job there is, that cost dominated everything else. Here the agent writes the script file and
spawns it directly through its own process runner, and applies the plugin's rules to the script's
output in-process (:mod:`~sundial.satellite.plugins.shellrules`, shared with the stand-alone tool),
so a script sees and produces exactly what it would under the plugin: the job document on stdin,
the same environment and working directory, ``N%`` progress, ``annotate`` stamps, JSON lines for
the wire protocol, and a result built from its exit status and stderr.

Aborts need no relay: the script is the agent's direct child, so ``kill: parent`` signals it
directly, and SIGKILL follows after the plugin's grace period (or the agent's, if shorter).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sundial.satellite.plugins.shellrules import (
    KILL_GRACE,
    ShellLines,
    passed_data,
    script_argv,
    script_path,
    script_result,
    script_source,
    write_script,
)
from sundial.satellite.plugins.wire import truthy
from sundial.satellite.process import ProcessResult

__all__ = ["SHELL_PLUGIN", "InAgentShell"]

#: The built-in plugin name this module stands in for.
SHELL_PLUGIN = "shell-plugin"


class InAgentShell:
    """One shell job's script file, line rules and result."""

    def __init__(self, job: Mapping[str, Any], temp_dir: str | Path) -> None:
        """Raises ``PluginError`` for an empty script, as the plugin would."""
        params = job.get("params")
        self.job = job
        self.params: Mapping[str, Any] = params if isinstance(params, dict) else {}
        self.source = script_source(self.params)
        self.lines = ShellLines(truthy(self.params.get("annotate")))
        self.script = script_path(temp_dir, str(job.get("id")))

    @property
    def argv(self) -> list[str]:
        """The script itself (its shebang decides), or ``/bin/sh`` reading it."""
        return script_argv(self.script, self.source)

    def write(self) -> None:
        """Write the script file; raises ``PluginError``. Blocking (file metadata can take a
        millisecond on a busy disk): the agent calls it from a worker thread."""
        write_script(self.script, self.source)

    @staticmethod
    def kill_timeout(agent_timeout: float) -> float:
        """SIGTERM to SIGKILL: the plugin's 9 s grace, or the agent's own limit when that is shorter."""
        return min(agent_timeout, KILL_GRACE)

    def pass_message(self) -> dict[str, Any] | None:
        """The ``pass`` param's data message, sent before the script starts (as the plugin does)."""
        data = passed_data(self.job, self.params)
        return {"xy": 1, "data": data} if data is not None else None

    def final_message(self, result: ProcessResult) -> dict[str, Any]:
        """The plugin's last line: exit code or signal name, description, Error Output block."""
        code: int | str = result.exit_code if result.exit_code is not None else str(result.signal_name)
        return {"xy": 1, **script_result(code, result.stderr_head, self.lines.html_sent)}

    def cleanup(self) -> None:
        with contextlib.suppress(OSError):
            self.script.unlink()
