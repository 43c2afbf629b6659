"""Shell Script plugin (``[shell-plugin]``) as a stand-alone process: run ``params.script`` and
relay what it prints.

The agent normally runs shell jobs itself (see :mod:`sundial.satellite.shelljob`); this module is
the same plugin as a tool of its own, ``python -m sundial.satellite.plugins shell-plugin``, for
other agents and for debugging. Both follow :mod:`~sundial.satellite.plugins.shellrules`: the script
is written to a file of its own and executed directly, so its shebang picks the interpreter (no
shebang: ``/bin/sh``). The job document goes to its stdin. Its stdout is relayed line by line: a
bare ``N%`` becomes a progress update, JSON lines pass through untouched for the agent to parse,
other lines go to the log (time-stamped with ``annotate``). Its stderr is relayed raw and its head
kept, so a failing script explains itself in the result. SIGTERM is passed on to the script, and
SIGKILL follows 9 s later if it does not listen.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
from typing import Any

import orjson

from sundial.satellite.plugins.shellrules import (
    KILL_GRACE,
    STDERR_KEEP,
    ShellLines,
    passed_data,
    script_argv,
    script_path,
    script_result,
    script_source,
    signal_name,
    write_script,
)
from sundial.satellite.plugins.wire import PluginError, finish, send, truthy

__all__ = ["TITLE", "LineSplitter", "run"]

TITLE = "Shell Plugin"
MAX_LINE = 1024 * 1024
READ_CHUNK = 64 * 1024
DRAIN_TIMEOUT = 1.0


class LineSplitter:
    """Bytes → ``(piece, kind)``: ``line`` (whole, newline kept), or for a line longer than
    ``limit`` a ``head`` piece followed by ``tail`` pieces (relayed as they come, never held)."""

    def __init__(self, limit: int = MAX_LINE) -> None:
        self.limit = limit
        self.buf = bytearray()
        self.inside_long = False

    def feed(self, chunk: bytes) -> list[tuple[bytes, str]]:
        out: list[tuple[bytes, str]] = []
        self.buf += chunk
        while self.buf:
            nl = self.buf.find(b"\n")
            if self.inside_long:
                out.append((self._take(nl + 1 if nl >= 0 else len(self.buf)), "tail"))
                self.inside_long = nl < 0
            elif 0 <= nl < self.limit:
                out.append((self._take(nl + 1), "line"))
            elif len(self.buf) >= self.limit:
                out.append((self._take(self.limit), "head"))
                self.inside_long = True
            else:
                break
        return out

    def _take(self, size: int) -> bytes:
        piece = bytes(self.buf[:size])
        del self.buf[:size]
        return piece

    def finish(self) -> list[tuple[bytes, str]]:
        """End of output: an unterminated last line gets its newline, so what we print next
        (the result) starts a line of its own."""
        rest, self.buf = bytes(self.buf), bytearray()
        if self.inside_long:
            self.inside_long = False
            return [(rest + b"\n", "tail")]
        return [(rest + b"\n", "line")] if rest else []


def _write_out(data: bytes) -> None:
    """Buffered: the relay flushes once per chunk read, so a flood costs few system calls."""
    sys.stdout.buffer.write(data)


class ShellRun:
    """One script run: spawn, relay, signal, report."""

    def __init__(self, job: dict[str, Any]) -> None:
        self.job = job
        params = job.get("params") if isinstance(job.get("params"), dict) else {}
        self.params: dict[str, Any] = params or {}
        self.lines = ShellLines(truthy(self.params.get("annotate")))
        self.proc: asyncio.subprocess.Process | None = None
        self.stderr_head = bytearray()
        temp = str(job.get("temp_dir") or tempfile.gettempdir())
        self.script = script_path(temp, str(job.get("id") or os.getpid()))

    # -- run ------------------------------------------------------------------------------------

    async def main(self) -> None:
        source = script_source(self.params)
        write_script(self.script, source)
        argv = script_argv(self.script, source)
        try:
            data = passed_data(self.job, self.params)
            if data is not None:
                send(data=data)
            self.proc = await self._spawn(argv)
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self._on_term)
            readers = [asyncio.create_task(self._relay_stdout()), asyncio.create_task(self._relay_stderr())]
            feeder = asyncio.create_task(self._feed_stdin())
            returncode = await _wait_exit(self.proc)
            await _drain(readers, feeder)
        finally:
            with contextlib.suppress(OSError):
                self.script.unlink()
        self._report(returncode)

    async def _spawn(self, argv: list[str]) -> asyncio.subprocess.Process:
        pipes: dict[str, Any] = {"stdin": asyncio.subprocess.PIPE, "stdout": asyncio.subprocess.PIPE,
                                 "stderr": asyncio.subprocess.PIPE}
        try:
            return await asyncio.create_subprocess_exec(*argv, **pipes)
        except OSError as exc:
            raise PluginError(f"Script spawn error: {exc}") from None

    def _on_term(self) -> None:
        """Pass SIGTERM on; a script that ignores it is killed after the grace period."""
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        asyncio.get_running_loop().call_later(KILL_GRACE, self._kill)

    def _kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()

    # -- streams --------------------------------------------------------------------------------

    async def _feed_stdin(self) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        stdin = self.proc.stdin
        try:
            stdin.write(orjson.dumps(self.job, default=str) + b"\n")
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # a script that does not read its stdin is fine
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                stdin.close()

    async def _relay_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        lines = LineSplitter()
        while chunk := await self.proc.stdout.read(READ_CHUNK):
            for piece, kind in lines.feed(chunk):
                self._relay_piece(piece, kind)
            sys.stdout.buffer.flush()
        for piece, kind in lines.finish():
            self._relay_piece(piece, kind)
        sys.stdout.buffer.flush()

    def _relay_piece(self, piece: bytes, kind: str) -> None:
        if kind == "tail":
            _write_out(piece)
        elif kind == "head":
            _write_out(self.lines.head(piece))
        else:
            verdict = self.lines.line(piece.rstrip(b"\r\n"))
            if isinstance(verdict, float):
                send(progress=verdict)
            else:
                _write_out(verdict + b"\n")

    async def _relay_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while chunk := await self.proc.stderr.read(READ_CHUNK):
            room = STDERR_KEEP - len(self.stderr_head)
            if room > 0:
                self.stderr_head += chunk[:room]
            sys.stderr.buffer.write(chunk)
            sys.stderr.buffer.flush()

    # -- result ---------------------------------------------------------------------------------

    def _report(self, returncode: int) -> None:
        code: int | str = signal_name(-returncode) if returncode < 0 else returncode
        finish(**script_result(code, bytes(self.stderr_head), self.lines.html_sent))


async def _wait_exit(proc: asyncio.subprocess.Process) -> int:
    """The exit status, even while a background grandchild keeps the output pipes open."""
    waiter = asyncio.ensure_future(proc.wait())
    while proc.returncode is None:
        done, _ = await asyncio.wait({waiter}, timeout=0.25)
        if done:
            break
    if not waiter.done():
        waiter.cancel()
    assert proc.returncode is not None
    return proc.returncode


async def _drain(readers: list[asyncio.Task[None]], feeder: asyncio.Task[None]) -> None:
    """Give the relays a moment to reach end of output, then stop: a grandchild holding the pipes
    open must not keep the job alive after the script itself ended."""
    _done, pending = await asyncio.wait(readers, timeout=DRAIN_TIMEOUT)
    for task in [*pending, feeder]:
        task.cancel()
    await asyncio.gather(*readers, feeder, return_exceptions=True)


def run(job: dict[str, Any]) -> None:
    """Entry point used by ``python -m sundial.satellite.plugins shell-plugin``."""
    asyncio.run(ShellRun(job).main())
