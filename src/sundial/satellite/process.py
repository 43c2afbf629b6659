"""Running one job child process: stdin hand-off, bounded line reading, log batching, sampling, abort.

A job child is untrusted output-wise: it may print garbage, one enormous line, a flood of lines,
never exit, fork grandchildren or die by a signal. Everything here is bounded: a line is held in
memory up to ``max_line_bytes`` and then streamed to the log in pieces, log text leaves in batches
(``log_flush_interval`` / ``log_chunk_chars``) so a flood of output becomes a few frames, and an
abort signals the child's whole process group (it runs in its own session) plus any descendant
that escaped into another group, escalating from SIGTERM to SIGKILL after ``kill_timeout``.

Callbacks may be plain functions or coroutines; awaiting them inside the reader gives natural
back-pressure: a slow consumer stops the reader, the pipe fills, and the child blocks on write
instead of the agent buffering without limit.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import enum
import errno
import inspect
import os
import signal
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
import psutil

from sundial.satellite.spawn import Spawned, spawn

__all__ = [
    "ChildProcess",
    "KillMode",
    "LineKind",
    "LineRules",
    "ProcessResult",
    "ProcessSpec",
    "SpawnError",
    "StatAccumulator",
    "TreeSample",
    "classify_line",
    "run_process",
]

MAX_LINE_BYTES = 32 * 1024 * 1024
READ_CHUNK = 64 * 1024
STDERR_HEAD_BYTES = 32 * 1024
_TXTBSY_RETRIES = (0.01, 0.05, 0.2)

Callback = Callable[[Any], Awaitable[None] | None]


class LineRules(Protocol):
    """A plugin's own stdout rules applied inside the agent (the shell plugin's ``N%`` and
    ``annotate``), before the wire-protocol rules see a line."""

    def line(self, body: bytes) -> float | bytes:
        """A whole line without its newline: a float is progress (0..1), bytes the line to use."""
        ...

    def head(self, piece: bytes) -> bytes:
        """The first piece of a line longer than the reader holds."""
        ...


class SpawnError(OSError):
    """The child could not be started (missing executable, permission, bad cwd)."""


class KillMode(enum.Enum):
    """Whom the first SIGTERM of an abort reaches; SIGKILL always reaches the whole tree."""

    TREE = "all"
    PARENT = "parent"


@dataclass(slots=True)
class ProcessSpec:
    """What to run and how; the limits default to the wire protocol's values."""

    argv: Sequence[str]
    #: One JSON line for the child's stdin; a callable gets the child's pid first (jobs carry it).
    stdin_doc: Mapping[str, Any] | Callable[[int], Mapping[str, Any]] | None = None
    env: Mapping[str, str] | None = None
    cwd: str | None = None
    uid: int | None = None
    gid: int | None = None
    extra_groups: Sequence[int] | None = None
    kill_timeout: float = 10.0
    max_line_bytes: int = MAX_LINE_BYTES
    log_chunk_chars: int = 256 * 1024
    log_flush_interval: float = 0.05
    sample_interval: float | None = 1.0
    #: The first sample waits this long (capped at ``sample_interval``): reading the process table
    #: costs milliseconds, which a job that is over in a few must not pay on its way to the result.
    first_sample_after: float = 0.5
    drain_timeout: float = 1.0


class StatAccumulator:
    """Running ``{min, max, total, count, current}`` as the conductor expects for job cpu/mem."""

    __slots__ = ("min", "max", "total", "count", "current")

    def __init__(self) -> None:
        self.min = 0.0
        self.max = 0.0
        self.total = 0.0
        self.count = 0
        self.current = 0.0

    def add(self, value: float) -> None:
        self.min = value if self.count == 0 else min(self.min, value)
        self.max = value if self.count == 0 else max(self.max, value)
        self.total += value
        self.count += 1
        self.current = value

    def as_dict(self) -> dict[str, float | int]:
        return {"min": self.min, "max": self.max, "total": self.total, "count": self.count,
                "current": self.current}


@dataclass(slots=True)
class TreeSample:
    """One look at the child's process tree: totals plus a row per process (for ``job.procs``)."""

    date: float
    cpu: float  # percent of one core, summed over the tree
    mem: int  # RSS bytes, summed over the tree
    procs: dict[int, dict[str, Any]]


@dataclass(slots=True)
class ProcessResult:
    """How the child ended. ``exit_code`` is None when a signal ended it or it never started."""

    pid: int | None
    exit_code: int | None = None
    signal: int | None = None
    signal_name: str | None = None
    aborted: bool = False
    abort_reason: str = ""
    spawn_error: str | None = None
    started: float = 0.0
    ended: float = 0.0
    stderr_head: str = ""
    cpu: dict[str, float | int] = field(default_factory=dict)
    mem: dict[str, float | int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.aborted


# --------------------------------------------------------------------------------------------
# Wire-protocol line classification (plugins-and-wire-protocol.md §5)
# --------------------------------------------------------------------------------------------


class LineKind(enum.Enum):
    TEXT = "text"  # goes to the job log verbatim
    MESSAGE = "message"  # an ``xy`` protocol update
    PASSTHROUGH = "passthrough"  # JSON without ``xy``: logged, re-serialised compactly
    DROPPED = "dropped"  # JSON with a ``type``/``state`` key: the plugin echoing its job document
    INVALID = "invalid"  # looked like JSON, did not parse: logged raw, with a warning


def classify_line(line: str) -> tuple[LineKind, Any]:
    """Decide what one stdout line is; the payload is the text to log or the parsed message."""
    stripped = line.strip()
    if len(stripped) < 3 or stripped[0] != "{" or stripped[-1] != "}":
        return LineKind.TEXT, line
    try:
        doc = orjson.loads(stripped)
    except orjson.JSONDecodeError as exc:
        return LineKind.INVALID, str(exc)
    if not isinstance(doc, dict):
        return LineKind.TEXT, line
    if "type" in doc or "state" in doc:
        return LineKind.DROPPED, doc
    if not doc.get("xy"):
        return LineKind.PASSTHROUGH, orjson.dumps(doc).decode("utf-8") + "\n"
    return LineKind.MESSAGE, doc


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


async def _call(cb: Callback | None, arg: Any) -> None:
    if cb is None:
        return
    result = cb(arg)
    if inspect.isawaitable(result):
        await result


class _LineSplitter:
    """Splits a byte stream into lines without ever holding more than ``max_line`` bytes of one."""

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self.buf = bytearray()
        self.overlong = False  # inside a line already cut into pieces

    def feed(self, chunk: bytes) -> list[tuple[bytes, bool]]:
        """Return ``(piece, overlong)`` pairs; whole lines keep their newline.

        Lines and cuts alternate until neither applies, so whole lines that follow a cut are
        returned at once rather than left behind (and merged into one piece at end of output).
        """
        out: list[tuple[bytes, bool]] = []
        self.buf += chunk
        while True:
            nl = self.buf.find(b"\n", 0, self.max_line)
            if nl >= 0:
                out.append((bytes(self.buf[: nl + 1]), self.overlong))
                del self.buf[: nl + 1]
                self.overlong = False
            elif len(self.buf) >= self.max_line:
                out.append((bytes(self.buf[: self.max_line]), True))
                del self.buf[: self.max_line]
                self.overlong = True
            else:
                return out

    def finish(self) -> list[tuple[bytes, bool]]:
        rest, self.buf = bytes(self.buf), bytearray()
        return [(rest, self.overlong)] if rest else []


class _LogBatcher:
    """Collects log text and hands it on in chunks, at most every ``interval`` seconds."""

    def __init__(self, sink: Callback | None, chunk_chars: int, interval: float) -> None:
        self.sink = sink
        self.chunk_chars = max(1024, chunk_chars)
        self.interval = interval
        self.parts: list[str] = []
        self.size = 0
        self.lock = asyncio.Lock()
        self.pending = asyncio.Event()
        self.closed = False
        self._nap: asyncio.Future[None] | None = None

    async def add(self, text: str) -> None:
        if not text:
            return
        self.parts.append(text)
        self.size += len(text)
        self.pending.set()
        if self.size >= self.chunk_chars:
            await self.flush()

    async def flush(self) -> None:
        async with self.lock:
            if not self.parts:
                return
            text, self.parts, self.size = "".join(self.parts), [], 0
            self.pending.clear()
            for start in range(0, len(text), self.chunk_chars):
                await _call(self.sink, text[start : start + self.chunk_chars])

    async def pump(self) -> None:
        """Timer side: flush a little after text arrives, so idle jobs cost no wake-ups."""
        while True:
            await self.pending.wait()
            if self.closed:
                return
            await self._batching_pause()
            await self.flush()  # clears ``pending``, so re-check ``closed`` before waiting again
            if self.closed:
                return

    async def _batching_pause(self) -> None:
        """Sleep ``interval``, unless :meth:`close` cuts it short (a future, not a task: cheap)."""
        loop = asyncio.get_running_loop()
        self._nap = nap = loop.create_future()
        handle = loop.call_later(self.interval, _wake, nap)
        try:
            await nap
        finally:
            handle.cancel()
            self._nap = None

    async def close(self, pump: asyncio.Task[None]) -> None:
        """Stop the timer without cutting a flush in half, then send what is left at once: the
        job's result follows its last output, so the exit must not wait out a batching pause."""
        self.closed = True
        self.pending.set()
        if self._nap is not None:
            _wake(self._nap)
        await asyncio.gather(pump, return_exceptions=True)
        await self.flush()


def _wake(nap: asyncio.Future[None]) -> None:
    if not nap.done():
        nap.set_result(None)


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"SIG{signum}"


# --------------------------------------------------------------------------------------------
# The child process
# --------------------------------------------------------------------------------------------


class ChildProcess:
    """One child in its own session, with its output, samples and abort handled to the end.

    ``on_log(text)`` receives batched log text (stdout lines that are not protocol messages, and
    stderr). ``on_message(dict)`` receives each ``xy`` protocol line. ``on_notice(text)`` receives
    agent-side remarks for the job's meta log (invalid JSON, overlong lines). ``on_sample`` receives
    a :class:`TreeSample` every ``sample_interval`` seconds. ``line_rules`` rewrite stdout lines
    first, for a built-in plugin whose rules the agent applies itself (see :class:`LineRules`).
    """

    def __init__(
        self,
        spec: ProcessSpec,
        *,
        on_log: Callback | None = None,
        on_message: Callback | None = None,
        on_notice: Callback | None = None,
        on_sample: Callback | None = None,
        line_rules: LineRules | None = None,
    ) -> None:
        self.spec = spec
        self.line_rules = line_rules
        self._inside_long = False  # the stdout reader is in the middle of an overlong line
        self.on_message = on_message
        self.on_notice = on_notice
        self.on_sample = on_sample
        self._log = _LogBatcher(on_log, spec.log_chunk_chars, spec.log_flush_interval)
        self._proc: Spawned | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._kill_task: asyncio.Task[None] | None = None
        self._exited = asyncio.Event()
        self._known: dict[int, psutil.Process] = {}
        self._known_lock = threading.Lock()  # sampling and killing both walk the tree from threads
        self._cpu = StatAccumulator()
        self._mem = StatAccumulator()
        self._stderr_head = bytearray()
        self._result: ProcessResult | None = None
        self._aborted = False
        self._abort_reason = ""
        self._started = 0.0

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and not self._exited.is_set()

    async def start(self) -> int:
        """Spawn the child; raises :class:`SpawnError` with the OS reason when that fails.

        "Text file busy" is retried a few times: a script written just before its exec can still be
        open for writing in a process forked meanwhile by another thread (until that one execs).
        """
        for delay in _TXTBSY_RETRIES:
            try:
                return await self._start_once()
            except SpawnError as exc:
                if not isinstance(exc.__cause__, OSError) or exc.__cause__.errno != errno.ETXTBSY:
                    raise
                await asyncio.sleep(delay)
        return await self._start_once()

    async def _start_once(self) -> int:
        spec = self.spec
        try:
            self._proc = await spawn(spec.argv, env=spec.env, cwd=spec.cwd, uid=spec.uid, gid=spec.gid,
                                     extra_groups=spec.extra_groups)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            raise SpawnError(str(exc)) from exc
        self._started = time.time()
        self._spawn_tasks()  # the tree is looked up lazily: our child's pid cannot be reused before we reap it
        return self._proc.pid

    def _spawn_tasks(self) -> None:
        make = asyncio.get_running_loop().create_task
        self._tasks = [make(self._feed_stdin()), make(self._read_stdout()), make(self._read_stderr()),
                       make(self._log.pump())]
        if self.spec.sample_interval:
            self._tasks.append(make(self._sampler(self.spec.sample_interval)))

    async def wait(self) -> ProcessResult:
        """Wait for exit and for output to drain; after an abort, also for the tree to be gone."""
        if self._result is not None:
            return self._result
        assert self._proc is not None, "start() first"
        returncode = await self._wait_exit(self._proc)
        self._exited.set()
        if self._kill_task is not None:
            await self._kill_task  # the tree dies first, so its output reaches the log before EOF
        await self._drain()
        self._result = self._make_result(returncode)
        return self._result

    @staticmethod
    async def _wait_exit(proc: Spawned) -> int:
        """The exit status, even while a background grandchild keeps the output pipes open.

        asyncio's ``wait()`` also waits for the pipes to close; the return code is known earlier,
        so a slow poll of it is the fallback for that case (the usual exit still wakes at once).
        """
        waiter = asyncio.ensure_future(proc.wait())
        while proc.returncode is None:
            done, _ = await asyncio.wait({waiter}, timeout=0.25)
            if done:
                break
        if not waiter.done():
            waiter.cancel()
        returncode = proc.returncode
        assert returncode is not None
        return returncode

    async def abort(self, reason: str = "", mode: KillMode = KillMode.TREE) -> None:
        """SIGTERM (tree or parent), then SIGKILL the whole tree after ``kill_timeout`` seconds."""
        if self._proc is None or self._aborted or self._result is not None:
            return
        self._aborted, self._abort_reason = True, reason
        if mode is KillMode.TREE:
            self._signal_tree(signal.SIGTERM)
        else:
            self._signal_pid(self._proc.pid, signal.SIGTERM)
        self._kill_task = asyncio.get_running_loop().create_task(self._escalate())

    def detach(self) -> None:
        """Stop watching the child without signalling it (``kill: none``)."""
        for task in self._tasks:
            task.cancel()

    # -- output ----------------------------------------------------------------------------

    async def _feed_stdin(self) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        stdin = self._proc.stdin
        try:
            doc = self.spec.stdin_doc
            if callable(doc):
                doc = doc(self._proc.pid)
            if doc is not None:
                stdin.write(orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS) + b"\n")
                await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the child does not read its stdin: that is its right
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                stdin.close()

    async def _read_stdout(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        splitter = _LineSplitter(self.spec.max_line_bytes)
        warned = False
        while chunk := await self._proc.stdout.read(READ_CHUNK):
            for piece, overlong in splitter.feed(chunk):
                warned = await self._handle_piece(piece, overlong, warned)
        for piece, overlong in splitter.finish():
            warned = await self._handle_piece(piece, overlong, warned)

    async def _handle_piece(self, piece: bytes, overlong: bool, warned: bool) -> bool:
        if self.line_rules is not None:
            ruled = await self._apply_rules(piece, overlong)
            if ruled is None:
                return warned
            piece = ruled
        text = piece.decode("utf-8", errors="replace")
        if overlong:
            if not warned:
                await _call(self.on_notice, f"Output line longer than {self.spec.max_line_bytes} bytes: "
                            "split into pieces in the log and not parsed as JSON.")
            await self._log.add(text)
            return True
        await self._handle_line(text)
        return warned

    async def _apply_rules(self, piece: bytes, overlong: bool) -> bytes | None:
        """The plugin's line rules; None when the line became a progress update (never logged)."""
        assert self.line_rules is not None
        if overlong:
            first, self._inside_long = not self._inside_long, not piece.endswith(b"\n")
            return self.line_rules.head(piece) if first else piece
        verdict = self.line_rules.line(piece.rstrip(b"\r\n"))
        if isinstance(verdict, float):
            await _call(self.on_message, {"xy": 1, "progress": verdict})
            return None
        return verdict + b"\n"

    async def _handle_line(self, line: str) -> None:
        kind, payload = classify_line(line)
        if kind is LineKind.MESSAGE:
            await _call(self.on_message, payload)
        elif kind is LineKind.INVALID:
            await _call(self.on_notice, f"Failed to parse JSON output line: {payload}")
            await self._log.add(line)
        elif kind in (LineKind.PASSTHROUGH, LineKind.TEXT):
            await self._log.add(payload)

    async def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        decoder = _utf8_decoder()
        while chunk := await self._proc.stderr.read(READ_CHUNK):
            room = STDERR_HEAD_BYTES - len(self._stderr_head)
            if room > 0:
                self._stderr_head += chunk[:room]
            await self._log.add(decoder.decode(chunk))
        await self._log.add(decoder.decode(b"", final=True))

    async def _drain(self) -> None:
        """Let readers hit EOF; a grandchild holding the pipes open must not hold the job forever."""
        stdin_task, readers, pump, others = self._tasks[0], self._tasks[1:3], self._tasks[3], self._tasks[4:]
        _done, pending = await asyncio.wait(readers, timeout=self.spec.drain_timeout)
        if pending:
            await _call(self.on_notice, "Child exited but its output pipes stayed open (a background "
                        "process still holds them); stopped reading.")
        for task in [stdin_task, *readers, *others]:
            task.cancel()
        await asyncio.gather(stdin_task, *readers, *others, return_exceptions=True)
        await self._log.close(pump)

    # -- sampling --------------------------------------------------------------------------

    async def _sampler(self, interval: float) -> None:
        """Sample in a thread every ``interval`` s, starting after ``first_sample_after``."""
        pause = min(interval, self.spec.first_sample_after)
        while not await self._exited_within(pause):
            sample = await asyncio.to_thread(self._sample_tree)
            if sample is not None:
                self._cpu.add(sample.cpu)
                self._mem.add(sample.mem)
                await _call(self.on_sample, sample)
            pause = interval

    async def _exited_within(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._exited.wait(), timeout=seconds)
        return self._exited.is_set()

    def sample_now(self) -> TreeSample | None:
        """Take one sample synchronously (used by tests and the final job update)."""
        return self._sample_tree()

    def _remember(self, pid: int) -> psutil.Process | None:
        proc = self._known.get(pid)
        if proc is not None and proc.is_running():
            return proc
        try:
            proc = psutil.Process(pid)
        except psutil.Error:
            self._known.pop(pid, None)
            return None
        self._known[pid] = proc
        return proc

    def _tree(self) -> list[psutil.Process]:
        """The child and every descendant, plus earlier-seen descendants that were re-parented."""
        with self._known_lock:
            return self._tree_locked()

    def _tree_locked(self) -> list[psutil.Process]:
        root = self._remember(self._proc.pid) if self._proc else None
        found: dict[int, psutil.Process] = {}
        if root is not None:
            found[root.pid] = root
            with contextlib.suppress(psutil.Error):
                for kid in root.children(recursive=True):
                    found[kid.pid] = self._remember(kid.pid) or kid
        for pid, proc in list(self._known.items()):
            if pid in found:
                continue
            if _alive(proc):
                found[pid] = proc
            else:
                del self._known[pid]  # keep the memory of a long job's short-lived kids bounded
        return list(found.values())

    def _sample_tree(self) -> TreeSample | None:
        if self._proc is None:
            return None
        ncpu = psutil.cpu_count() or 1
        procs: dict[int, dict[str, Any]] = {}
        cpu_total, mem_total = 0.0, 0
        for proc in self._tree():
            row = _proc_row(proc, ncpu)
            if row is None:
                continue
            procs[proc.pid] = row
            cpu_total += row["cpu"] * ncpu
            mem_total += row["memRss"]
        if not procs:
            return None
        return TreeSample(date=time.time(), cpu=cpu_total, mem=mem_total, procs=procs)

    # -- signals ---------------------------------------------------------------------------

    def _signal_pid(self, pid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)

    def _signal_tree(self, sig: signal.Signals) -> None:
        """Signal the process group, then any known descendant that left the group (setsid)."""
        assert self._proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, sig)
        for proc in self._tree():
            with contextlib.suppress(psutil.Error):
                proc.send_signal(sig)

    def _tree_alive(self) -> bool:
        assert self._proc is not None
        if not self._exited.is_set() and self._proc.returncode is None:
            return True
        with self._known_lock:
            known = list(self._known.values())
        if any(_alive(p) for p in known):
            return True
        return _group_has_live_member(self._proc.pid)

    async def _escalate(self) -> None:
        deadline = time.monotonic() + self.spec.kill_timeout
        while time.monotonic() < deadline:
            if not await asyncio.to_thread(self._tree_alive):
                return
            await asyncio.sleep(0.05)
        await _call(self.on_notice, f"Child did not exit within {self.spec.kill_timeout:g} s of SIGTERM: "
                    "sending SIGKILL to its process tree.")
        await asyncio.to_thread(self._signal_tree, signal.SIGKILL)
        for _ in range(100):  # SIGKILL cannot be refused, but dying takes the kernel a moment
            if not await asyncio.to_thread(self._tree_alive):
                return
            await asyncio.sleep(0.05)

    # -- result ----------------------------------------------------------------------------

    def _make_result(self, returncode: int) -> ProcessResult:
        assert self._proc is not None
        result = ProcessResult(pid=self._proc.pid, aborted=self._aborted, abort_reason=self._abort_reason,
                               started=self._started, ended=time.time(),
                               stderr_head=self._stderr_head.decode("utf-8", errors="replace"),
                               cpu=self._cpu.as_dict(), mem=self._mem.as_dict())
        if returncode < 0:
            result.signal, result.signal_name = -returncode, _signal_name(-returncode)
        else:
            result.exit_code = returncode
        return result


def _group_has_live_member(pgid: int) -> bool:
    """True when a non-zombie process is still in the group (an un-reaped zombie is harmless)."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(proc.pid) == pgid and _alive(proc):
                return True
    return False


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


_STATE_NAMES = {
    psutil.STATUS_RUNNING: "Running",
    psutil.STATUS_SLEEPING: "Sleeping",
    psutil.STATUS_DISK_SLEEP: "Sleeping",
    psutil.STATUS_IDLE: "Idle",
    psutil.STATUS_ZOMBIE: "Zombie",
    psutil.STATUS_STOPPED: "Stopped",
    psutil.STATUS_TRACING_STOP: "Stopped",
    psutil.STATUS_DEAD: "Dead",
}


def _proc_row(proc: psutil.Process, ncpu: int) -> dict[str, Any] | None:
    """One process in the shape of the monitoring ``processes`` rows (cpu as % of all cores)."""
    try:
        with proc.oneshot():
            mem = proc.memory_info()
            cpu = proc.cpu_percent(interval=None)
            row = {
                "pid": proc.pid,
                "parentPid": proc.ppid(),
                "command": " ".join(proc.cmdline()) or proc.name(),
                "cpu": round(cpu / ncpu, 2),
                "memRss": int(mem.rss),
                "memVsz": int(mem.vms),
                "state": _STATE_NAMES.get(proc.status(), "Unknown"),
                "threads": proc.num_threads(),
                "started": proc.create_time(),
            }
    except psutil.Error:
        return None
    row["age"] = max(0.0, time.time() - row["started"])
    return row


def _utf8_decoder() -> codecs.IncrementalDecoder:
    return codecs.getincrementaldecoder("utf-8")(errors="replace")


async def run_process(
    spec: ProcessSpec,
    *,
    on_log: Callback | None = None,
    on_message: Callback | None = None,
    on_notice: Callback | None = None,
    on_sample: Callback | None = None,
) -> ProcessResult:
    """Start a child and wait for it; a spawn failure comes back as a result, not an exception."""
    child = ChildProcess(spec, on_log=on_log, on_message=on_message, on_notice=on_notice, on_sample=on_sample)
    try:
        await child.start()
    except SpawnError as exc:
        now = time.time()
        return ProcessResult(pid=None, spawn_error=str(exc), started=now, ended=now)
    return await child.wait()
