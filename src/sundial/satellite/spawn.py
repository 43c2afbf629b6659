"""Starting a job child without stalling the agent's event loop.

asyncio starts a child with ``fork``/``exec`` on the event loop thread, and the loop stays blocked
until the child has exec'd: on a loaded host that is milliseconds per job, during which no output,
result or launch of any other job moves (measured here: 120–250 spawns/s with 12–24 ms of loop lag,
against 490–570 spawns/s and under 1 ms of lag when the spawn happens elsewhere). So where the
kernel offers pidfds, the child is started from a worker thread (CPython drops the GIL while it
waits for the exec) and then handed to the loop: its pipes become asyncio streams and its exit is
a pidfd becoming readable, so no thread waits for it either. Elsewhere, plain asyncio is used.

:func:`spawn` returns an object with the parts of :class:`asyncio.subprocess.Process` the process
runner uses: ``pid``, ``returncode``, ``stdin`` (``write``/``drain``/``close``), ``stdout``,
``stderr`` and ``wait()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

__all__ = ["Spawned", "pidfd_supported", "spawn"]

_PIPE = subprocess.PIPE


class StdinLike(Protocol):
    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    def close(self) -> None: ...


class Spawned(Protocol):
    """A started child, as the process runner sees it."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    @property
    def stdin(self) -> StdinLike | None: ...

    @property
    def stdout(self) -> asyncio.StreamReader | None: ...

    @property
    def stderr(self) -> asyncio.StreamReader | None: ...

    async def wait(self) -> int: ...


@functools.cache
def pidfd_supported() -> bool:
    """Linux 5.3 or later (and a Python that exposes ``pidfd_open``)."""
    if not hasattr(os, "pidfd_open"):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return False
    return True


async def spawn(argv: Sequence[str], *, env: Mapping[str, str] | None, cwd: str | None, uid: int | None,
                gid: int | None, extra_groups: Sequence[int] | None) -> Spawned:
    """Start ``argv`` in a session of its own with three pipes; OS errors propagate as raised."""
    kwargs: dict[str, Any] = {"env": dict(env) if env is not None else None, "cwd": cwd, "start_new_session": True,
                              "user": uid, "group": gid,
                              "extra_groups": list(extra_groups) if extra_groups is not None else None}
    if not pidfd_supported():
        return await asyncio.create_subprocess_exec(*argv, stdin=_PIPE, stdout=_PIPE, stderr=_PIPE, **kwargs)
    loop = asyncio.get_running_loop()
    started = loop.run_in_executor(None, _popen, list(argv), kwargs)
    try:
        popen = await asyncio.shield(started)
    except asyncio.CancelledError:
        started.add_done_callback(_kill_unwanted)  # the thread still starts it: do not leave it behind
        raise
    return await _ThreadSpawned.attach(popen, loop)


def _popen(argv: list[str], kwargs: dict[str, Any]) -> subprocess.Popen[bytes]:
    """Runs in a worker thread: the event loop goes on while the child is forked and exec'd."""
    return subprocess.Popen(argv, stdin=_PIPE, stdout=_PIPE, stderr=_PIPE, **kwargs)


def _kill_unwanted(started: asyncio.Future[subprocess.Popen[bytes]]) -> None:
    if started.cancelled() or started.exception() is not None:
        return
    popen = started.result()
    with contextlib.suppress(OSError):
        os.killpg(popen.pid, signal.SIGKILL)
    popen.wait()


class _PipeStdin:
    """The child's stdin as a write-pipe transport: ``close`` flushes what is buffered first, and
    a child that never reads costs nothing but the buffer (errors end up closing the transport)."""

    def __init__(self, transport: asyncio.WriteTransport) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        if not self._transport.is_closing():
            self._transport.write(data)

    async def drain(self) -> None:
        """Nothing to wait for: the one job document is buffered and flushed by ``close``."""

    def close(self) -> None:
        self._transport.close()


class _ThreadSpawned:
    """A child started by ``subprocess.Popen`` in a worker thread, watched from the event loop."""

    def __init__(self, popen: subprocess.Popen[bytes], loop: asyncio.AbstractEventLoop) -> None:
        self._popen = popen
        self._loop = loop
        self._exit: asyncio.Future[int] = loop.create_future()
        self.stdin: _PipeStdin | None = None
        self.stdout: asyncio.StreamReader | None = None
        self.stderr: asyncio.StreamReader | None = None

    @classmethod
    async def attach(cls, popen: subprocess.Popen[bytes], loop: asyncio.AbstractEventLoop) -> _ThreadSpawned:
        child = cls(popen, loop)
        child._watch_exit()
        assert popen.stdin is not None and popen.stdout is not None and popen.stderr is not None
        child.stdout = await _reader(loop, popen.stdout)
        child.stderr = await _reader(loop, popen.stderr)
        transport, _protocol = await loop.connect_write_pipe(asyncio.Protocol, popen.stdin)
        child.stdin = _PipeStdin(transport)
        return child

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        return self._popen.returncode

    async def wait(self) -> int:
        return await asyncio.shield(self._exit)

    def _watch_exit(self) -> None:
        """A pidfd turns readable once the child has ended (even if that happened already)."""
        pidfd = os.pidfd_open(self._popen.pid)
        self._loop.add_reader(pidfd, self._reap, pidfd)

    def _reap(self, pidfd: int) -> None:
        self._loop.remove_reader(pidfd)
        os.close(pidfd)
        returncode = self._popen.wait()  # a zombie by now: returns at once
        if not self._exit.done():
            self._exit.set_result(returncode)


async def _reader(loop: asyncio.AbstractEventLoop, pipe: Any) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(loop=loop)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader, loop=loop), pipe)
    return reader
