"""The Shell Script plugin's rules (plugins-and-wire-protocol.md §8), shared by both ways of running it.

The agent runs ``[shell-plugin]`` jobs itself (it writes the script and spawns it directly, saving
a Python start-up per job); ``python -m sundial.satellite.plugins shell-plugin`` still runs it as a
stand-alone process. Both apply the rules below, so a script behaves the same either way: where the
script file goes, what a stdout line becomes (``N%`` progress, JSON untouched, text optionally
time-stamped), the ``pass`` data hand-on, and how the exit status and stderr become the result.

Import-light on purpose (no asyncio, no psutil): the agent imports it for every shell job.
"""

from __future__ import annotations

import html
import os
import re
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from sundial.satellite.plugins.wire import PluginError, truthy

__all__ = ["KILL_GRACE", "STDERR_KEEP", "ShellLines", "passed_data", "script_argv", "script_path",
           "script_result", "script_source", "signal_name", "write_script"]

#: SIGTERM is relayed to the script; SIGKILL follows this many seconds later if it is still there.
KILL_GRACE = 9.0
#: How much of the script's stderr is kept for the result (all of it goes to the log).
STDERR_KEEP = 32 * 1024
_PROGRESS = re.compile(rb"^\s*(\d+)%\s*$")
_JSON_LINE = re.compile(rb"^\s*\{.+\}\s*$")


def script_path(temp_dir: str | Path, job_id: str) -> Path:
    """``<temp_dir>/xyops-script-temp-<job id>``, the name xyOps uses (scripts may look for it)."""
    return Path(temp_dir) / f"xyops-script-temp-{job_id}"


def script_source(params: Mapping[str, Any]) -> str:
    """``params.script`` with CRLF made LF; an empty script is the job's error."""
    source = str(params.get("script") or "").replace("\r\n", "\n")
    if not source.strip():
        raise PluginError("Shell Plugin Error: No script was provided.")
    return source


def write_script(path: Path, source: str) -> None:
    """Write the script file, mode 0775 (creating its directory only when missing)."""
    try:
        try:
            _write_executable(path, source)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_executable(path, source)
    except OSError as exc:
        raise PluginError(f"Shell Plugin Error: Cannot write the script file: {exc}") from None


def _write_executable(path: Path, source: str) -> None:
    """Create, write and make executable through one descriptor (fchmod also undoes the umask)."""
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o775), "wb") as fh:
        os.fchmod(fh.fileno(), 0o775)
        fh.write(source.encode("utf-8"))


def script_argv(path: Path, source: str) -> list[str]:
    """The shebang picks the interpreter; without one ``/bin/sh`` reads the file, as ``execvp``
    arranges after ENOEXEC. Deciding up front spares a failed exec per job."""
    return [str(path)] if source.startswith("#!") else ["/bin/sh", str(path)]


def passed_data(job: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any] | None:
    """``pass``: the job's input data, handed on as output data before the script adds its own."""
    input_ = job.get("input")
    data = input_.get("data") if isinstance(input_, dict) else None
    return data if truthy(params.get("pass")) and isinstance(data, dict) and data else None


class ShellLines:
    """What each line of the script's stdout becomes.

    :meth:`line` takes a whole line without its newline and returns either a float (a bare ``N%``:
    progress N/100, clamped, not logged) or the bytes to pass on as the line: JSON-shaped lines
    untouched (for the agent's wire-protocol parser), other text with a ``[YYYY/MM/DD HH:MM:SS] ``
    stamp when ``annotate`` is on. It also notes whether the script sent its own ``html``, which
    keeps the Error Output block out of the result.
    """

    __slots__ = ("annotate", "html_sent", "_clock")

    def __init__(self, annotate: bool) -> None:
        self.annotate = annotate
        self.html_sent = False
        self._clock: tuple[int, bytes] = (-1, b"")

    def line(self, body: bytes) -> float | bytes:
        progress = _PROGRESS.match(body)
        if progress:
            return min(100, int(progress.group(1))) / 100
        if _JSON_LINE.match(body):
            self._note_html(body)
            return body
        return self.prefix() + body

    def head(self, piece: bytes) -> bytes:
        """The first piece of a line too long to judge: only a leading brace keeps it JSON-shaped."""
        return piece if piece.lstrip()[:1] == b"{" else self.prefix() + piece

    def prefix(self) -> bytes:
        """The annotate stamp (agent's local time), formatted once per second at most."""
        if not self.annotate:
            return b""
        now = int(time.time())
        if self._clock[0] != now:
            self._clock = (now, time.strftime("[%Y/%m/%d %H:%M:%S] ", time.localtime(now)).encode())
        return self._clock[1]

    def _note_html(self, body: bytes) -> None:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            return
        if isinstance(doc, dict) and doc.get("xy") and "html" in doc:
            self.html_sent = True


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"SIG{signum}"


def script_result(code: int | str, stderr_head: bytes | str, html_sent: bool) -> dict[str, Any]:
    """The final message: ``code`` (exit code or signal name), "Script exited with code: N" plus the
    first stderr line when short, and the stderr head as an Error Output block unless the script
    sent html of its own."""
    stderr = stderr_head.decode("utf-8", "replace") if isinstance(stderr_head, bytes) else stderr_head
    stderr = stderr.strip()
    description = f"Script exited with code: {code}"
    first = stderr.splitlines()[0].strip() if stderr else ""
    if first and len(first) < 256:
        description += f": {first}"
    result: dict[str, Any] = {"code": code, "description": description}
    if stderr and not html_sent:
        result["html"] = {"title": "Error Output", "content": f"<pre>{html.escape(stderr)}</pre>"}
    return result
