"""The process runner against real children (sh, python -c): output, limits, abort, trees, samples."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from sundial.satellite.process import (
    ChildProcess,
    KillMode,
    LineKind,
    ProcessSpec,
    TreeSample,
    _LineSplitter,
    classify_line,
    run_process,
)

PY = sys.executable


class Sink:
    """Collects what the runner hands to its callbacks."""

    def __init__(self) -> None:
        self.logs: list[str] = []
        self.messages: list[dict[str, Any]] = []
        self.notices: list[str] = []
        self.samples: list[TreeSample] = []

    @property
    def log(self) -> str:
        return "".join(self.logs)

    def kwargs(self) -> dict[str, Any]:
        return {"on_log": self.logs.append, "on_message": self.messages.append,
                "on_notice": self.notices.append, "on_sample": self.samples.append}


def py(code: str, **kw: Any) -> ProcessSpec:
    return ProcessSpec([PY, "-c", textwrap.dedent(code)], **kw)


def alive(pid: int) -> bool:
    """Running and not a zombie (a re-parented zombie may linger un-reaped in containers)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def until(predicate: Callable[[], bool], what: str, limit: float = 20.0) -> None:
    """Poll a condition (no timing is asserted: the limit only turns a hang into a failure)."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def read_pids(path: Path) -> list[int]:
    text = path.read_text() if path.exists() else ""
    return [int(x) for x in text.split()]


@pytest.mark.parametrize(("line", "kind"), [
    ("hello\n", LineKind.TEXT), ('{"xy":1,"progress":0.5}\n', LineKind.MESSAGE),
    ('  {"xy": true, "code": 0}  \n', LineKind.MESSAGE), ('{"foo":1}\n', LineKind.PASSTHROUGH),
    ('{"xy":1,"state":"x"}\n', LineKind.DROPPED), ('{"type":"event"}\n', LineKind.DROPPED),
    ("{not json}\n", LineKind.INVALID), ("{}\n", LineKind.TEXT), ('["a"]\n', LineKind.TEXT),
    ('{"xy":0,"a":1}\n', LineKind.PASSTHROUGH),
])
def test_line_classification(line: str, kind: LineKind) -> None:
    assert classify_line(line)[0] is kind


async def test_success_with_stdin_document_and_protocol_lines() -> None:
    sink = Sink()
    spec = py("""
        import json, sys
        job = json.loads(sys.stdin.readline())
        print("working on", job["id"])
        print(json.dumps({"xy": 1, "progress": 0.5}))
        print(json.dumps({"not": "protocol"}))
        print(json.dumps({"xy": 1, "state": "echoed job"}))
        print(json.dumps({"xy": 1, "code": 0, "data": {"n": job["n"] * 2}}))
    """, stdin_doc={"id": "j1", "n": 21})
    result = await run_process(spec, **sink.kwargs())
    assert result.ok and result.exit_code == 0 and result.signal is None
    assert sink.messages == [{"xy": 1, "progress": 0.5}, {"xy": 1, "code": 0, "data": {"n": 42}}]
    assert "working on j1\n" in sink.log and '{"not":"protocol"}\n' in sink.log
    assert "echoed job" not in sink.log


async def test_stdin_document_can_carry_the_pid() -> None:
    sink = Sink()
    spec = py("import json,os,sys; d=json.loads(sys.stdin.readline()); print(d['pid'] == os.getpid())",
              stdin_doc=lambda pid: {"pid": pid})
    await run_process(spec, **sink.kwargs())
    assert sink.log == "True\n"


async def test_failure_exit_code_and_stderr_captured() -> None:
    sink = Sink()
    result = await run_process(ProcessSpec(["sh", "-c", "echo oops >&2; exit 7"]), **sink.kwargs())
    assert result.exit_code == 7 and not result.ok
    assert "oops" in sink.log and result.stderr_head == "oops\n"


async def test_exit_by_signal_is_reported_by_name() -> None:
    result = await run_process(ProcessSpec(["sh", "-c", "kill -KILL $$"]))
    assert result.exit_code is None and result.signal == 9 and result.signal_name == "SIGKILL"


async def test_garbage_output_is_logged_and_invalid_json_noted() -> None:
    sink = Sink()
    spec = py(r"""
        import os, sys
        sys.stdout.buffer.write(os.urandom(4096) + b"\n{broken json\n{\"xy\":1,,}\n\xff\xfe\n")
        sys.stdout.buffer.write(b"no newline at the end")
    """)
    result = await run_process(spec, **sink.kwargs())
    assert result.exit_code == 0
    assert sink.messages == []
    assert any("Failed to parse JSON" in n for n in sink.notices)
    assert sink.log.endswith("no newline at the end") and "{broken json" in sink.log


async def test_two_megabyte_line_within_limit_arrives_whole() -> None:
    sink = Sink()
    spec = py("import sys; sys.stdout.write('x' * (2 * 1024 * 1024) + '\\nafter\\n')")
    await run_process(spec, **sink.kwargs())
    assert sink.log == "x" * (2 * 1024 * 1024) + "\nafter\n"
    assert max(len(chunk) for chunk in sink.logs) <= spec.log_chunk_chars
    assert not sink.notices


async def test_two_megabyte_line_over_limit_is_split_and_said_so() -> None:
    sink = Sink()
    payload = '{"xy":1,"data":"' + "y" * (2 * 1024 * 1024) + '"}'
    spec = py("""
        import sys
        sys.stdout.write('{"xy":1,"data":"' + "y" * (2 * 1024 * 1024) + '"}\\n')
        sys.stdout.write('{"xy":1,"progress":1}\\n')
    """, max_line_bytes=64 * 1024)
    result = await run_process(spec, **sink.kwargs())
    assert result.exit_code == 0, result
    assert sink.log == payload + "\n", "the overlong line reaches the log intact, in pieces"
    assert sink.messages == [{"xy": 1, "progress": 1}], "it is not parsed; the next line is"
    assert len([n for n in sink.notices if "longer than" in n]) == 1


async def test_flood_of_lines_becomes_few_log_chunks() -> None:
    sink = Sink()
    await run_process(py("import sys\nfor i in range(100000): sys.stdout.write(f'line {i}\\n')"),
                      **sink.kwargs())
    lines = sink.log.splitlines()
    assert len(lines) == 100000 and lines[-1] == "line 99999"
    assert len(sink.logs) < 1000


async def test_never_exiting_child_is_aborted_with_sigterm() -> None:
    child = ChildProcess(ProcessSpec(["sleep", "1000"], kill_timeout=30))
    pid = await child.start()
    await child.abort("stop it")
    result = await child.wait()
    assert result.aborted and result.abort_reason == "stop it"
    assert result.signal_name == "SIGTERM"
    assert not alive(pid)


async def test_child_ignoring_sigterm_is_killed() -> None:
    sink = Sink()
    spec = py("""
        import signal, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ready", flush=True)
        time.sleep(1000)
    """, kill_timeout=0.5)
    child = ChildProcess(spec, **sink.kwargs())
    await child.start()
    await until(lambda: "ready" in sink.log, "the child to ignore SIGTERM")
    await child.abort("stubborn")
    result = await child.wait()
    assert result.signal_name == "SIGKILL"
    assert any("SIGKILL" in n for n in sink.notices)


async def test_abort_kills_forked_grandchildren_including_escaped_and_stubborn(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    spec = py(f"""
        import os, signal, subprocess, sys, time
        same_group = subprocess.Popen(["sleep", "1000"])
        stubborn = subprocess.Popen([sys.executable, "-c",
            "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(1000)"])
        escaped = subprocess.Popen(["sleep", "1000"], start_new_session=True)
        open({str(pids)!r}, "w").write(f"{{same_group.pid}} {{stubborn.pid}} {{escaped.pid}}")
        time.sleep(1000)
    """, kill_timeout=1.0, sample_interval=0.05)
    child = ChildProcess(spec)
    pid = await child.start()
    await until(lambda: len(read_pids(pids)) == 3, "the grandchildren to start")
    grandkids = read_pids(pids)

    def all_seen() -> bool:
        sample = child.sample_now()
        return sample is not None and set(grandkids) <= set(sample.procs)

    await until(all_seen, "the sampler to see every grandchild")
    await child.abort("tree")
    result = await child.wait()
    assert result.aborted
    assert not alive(pid)
    for gpid in grandkids:
        assert not alive(gpid), f"grandchild {gpid} survived the abort"


async def test_parent_mode_signals_only_the_child_first() -> None:
    sink = Sink()
    spec = ProcessSpec(["sh", "-c", "trap 'echo got TERM; exit 3' TERM; sleep 1000 & wait"], kill_timeout=5)
    child = ChildProcess(spec, **sink.kwargs())
    await child.start()
    await asyncio.sleep(0.2)
    await child.abort("parent only", KillMode.PARENT)
    result = await child.wait()
    assert result.exit_code == 3 and "got TERM" in sink.log
    tree = child.sample_now()
    assert tree is None or all(not alive(pid) for pid in tree.procs), "escalation cleans up what is left"


async def test_cpu_and_memory_of_the_tree_are_sampled() -> None:
    sink = Sink()
    spec = py("""
        import subprocess, sys, time
        kid = subprocess.Popen([sys.executable, "-c", "x = bytearray(40 * 1024 * 1024); import time; time.sleep(3)"])
        end = time.time() + 2.5
        while time.time() < end:
            pass
        kid.wait()
    """, sample_interval=0.2)
    result = await run_process(spec, **sink.kwargs())
    assert result.exit_code == 0
    assert sink.samples, "no samples were taken"
    assert max(s.cpu for s in sink.samples) > 0
    assert max(s.mem for s in sink.samples) > 40 * 1024 * 1024
    assert max(len(s.procs) for s in sink.samples) >= 2
    assert result.cpu["count"] == len(sink.samples) and result.mem["max"] >= 40 * 1024 * 1024
    row = next(iter(sink.samples[-1].procs.values()))
    assert {"pid", "parentPid", "command", "cpu", "memRss", "state"} <= row.keys()


async def test_spawn_failure_is_a_result_not_an_exception(tmp_path: Path) -> None:
    result = await run_process(ProcessSpec([str(tmp_path / "no-such-program")]))
    assert result.pid is None and result.spawn_error


async def test_child_runs_in_its_own_session() -> None:
    sink = Sink()
    await run_process(py("import os; print(os.getsid(0) == os.getpid(), os.getpgid(0) == os.getpid())"),
                      **sink.kwargs())
    assert sink.log == "True True\n"


async def test_background_process_holding_pipes_does_not_hang_wait() -> None:
    sink = Sink()
    spec = ProcessSpec(["sh", "-c", "sleep 30 & echo started"], drain_timeout=0.3)
    child = ChildProcess(spec, **sink.kwargs())
    await child.start()
    result = await child.wait()
    assert result.exit_code == 0 and "started" in sink.log
    assert any("pipes stayed open" in n for n in sink.notices)
    await child.abort("cleanup")  # no-op after completion; kill the leftover ourselves
    for proc in psutil.process_iter(["cmdline"]):
        if proc.info["cmdline"] == ["sleep", "30"] and proc.ppid() in (1, os.getpid()):
            proc.kill()


def test_lines_after_a_cut_leave_with_the_same_chunk() -> None:
    """A protocol line right behind an overlong one must still be a line of its own at end of output."""
    splitter = _LineSplitter(1024)
    pieces = splitter.feed(b"b" * 3000 + b'\n{"xy":1,"code":0}\n') + splitter.finish()
    assert [(len(piece), overlong) for piece, overlong in pieces] == [(1024, True), (1024, True), (953, True),
                                                                     (18, False)]
    assert pieces[-1][0] == b'{"xy":1,"code":0}\n'
