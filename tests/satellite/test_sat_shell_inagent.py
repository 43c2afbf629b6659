"""``[shell-plugin]`` jobs run inside the agent: the stand-alone plugin's behaviours, job by job.

The agent writes the script and spawns it directly (no ``python -m sundial.satellite.plugins``
process), applying the plugin's line rules itself. Each test here mirrors one of the stand-alone
plugin's tests in test_sat_plugins.py through the agent's :class:`Job`, and one test runs the same
scripts both ways and compares what the conductor would see.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from sat_peer import until

from sundial.protocol import LaunchJob
from sundial.satellite import process
from sundial.satellite.jobs import Job
from sundial.satellite.plugins import builtin_argv
from sundial.satellite.plugins.shellrules import ShellLines
from sundial.satellite.process import ChildProcess, ProcessSpec, run_process

_STAMP = re.compile(r"^\[\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\] ")


class ShellJob(Job):
    """A job that also records every wire-protocol message it applies (progress included)."""

    def __init__(self, tmp_path: Path, params: dict[str, Any], *, job_id: str = "jsh1", kill: str = "all",
                 kill_timeout: float = 2, details: dict[str, Any] | None = None) -> None:
        launch = LaunchJob.model_validate({"job": {"id": job_id, "server": "satunit1", "command": "[shell-plugin]",
                                                   "kill": kill, "params": params}, "details": details or {},
                                           "sec": {}})
        self.frames: list[tuple[str, dict[str, Any]]] = []
        self.messages: list[dict[str, Any]] = []
        super().__init__(launch, emit=self._record, temp_dir=tmp_path / "temp", log_dir=tmp_path / "logs",
                         base_url="http://c:5522", kill_timeout=kill_timeout, job_env={"greeting": "hello"},
                         version="9.9.9", extra_doc={"temp_dir": str(tmp_path / "temp")})

    def _record(self, cmd: str, data: dict[str, Any], important: bool) -> None:
        self.frames.append((cmd, data))

    def _on_message(self, msg: dict[str, Any]) -> None:
        self.messages.append(dict(msg))
        super()._on_message(msg)

    @property
    def log(self) -> str:
        return "".join(d["text"] for c, d in self.frames if c == "job_log")

    @property
    def meta_log(self) -> str:
        return "".join(d["text"] + "\n" for c, d in self.frames if c == "job_meta")

    @property
    def final(self) -> dict[str, Any]:
        finals = [d[self.id] for c, d in self.frames if c == "jobs" and d.get(self.id, {}).get("state") == "complete"]
        assert len(finals) == 1, self.meta_log
        return finals[0]

    @property
    def progress(self) -> list[float]:
        return [m["progress"] for m in self.messages if "progress" in m]


async def run_job(tmp_path: Path, params: dict[str, Any], **kwargs: Any) -> ShellJob:
    job = ShellJob(tmp_path, params, **kwargs)
    await job.run()
    return job


async def test_progress_annotation_passthrough_and_stdin(tmp_path: Path) -> None:
    script = ("#!/bin/sh\r\n"
              "read -r doc\n"
              "case \"$doc\" in *jsh1*) echo 'got the job document';; esac\n"
              "echo ' 42% '\n"
              "echo 250%\n"
              "echo '{\"xy\":1,\"status\":\"halfway\"}'\n"
              "echo \"param=$greeting\"\n")
    job = await run_job(tmp_path, {"script": script, "annotate": True})
    assert job.progress == [0.42, 1.0], "N% is clamped to 100"
    assert {"xy": 1, "status": "halfway"} in job.messages, "JSON lines reach the wire-protocol parser"
    lines = job.log.splitlines()
    assert any(_STAMP.match(line) and line.endswith("] got the job document") for line in lines)
    assert any(line.endswith("] param=hello") for line in lines)
    assert "%" not in job.log, "progress lines are not logged"
    final = job.final
    assert final["code"] == 0 and final["description"] == "Script exited with code: 0"
    assert final["status"] == "halfway"
    assert not list((tmp_path / "temp").glob("xyops-script-temp-*")), "temp script removed"
    assert job.child is not None and job.child.spec.argv == [str((tmp_path / "temp").resolve() /
                                                                 "xyops-script-temp-jsh1")], "no plugin process"


async def test_failure_keeps_stderr_and_explains_itself(tmp_path: Path) -> None:
    script = "#!/bin/sh\necho working\necho 'disk full' >&2\necho 'second line' >&2\nexit 3\n"
    job = await run_job(tmp_path, {"script": script})
    final = job.final
    assert final["code"] == 3 and final["description"] == "Script exited with code: 3: disk full"
    assert final["html"] == {"title": "Error Output", "content": "<pre>disk full\nsecond line</pre>"}
    assert "working\n" in job.log and "disk full" in job.log, "stdout and stderr both reach the log"


async def test_own_html_keeps_the_error_output_block_out(tmp_path: Path) -> None:
    script = ("#!/bin/sh\necho '{\"xy\":1,\"html\":{\"title\":\"Mine\",\"content\":\"ok\"}}'\n"
              "echo 'complaint' >&2\nexit 1\n")
    final = (await run_job(tmp_path, {"script": script})).final
    assert final["code"] == 1 and final["description"] == "Script exited with code: 1: complaint"
    assert final["html"] == {"title": "Mine", "content": "ok"}


async def test_shebang_decides_and_plain_scripts_use_sh(tmp_path: Path) -> None:
    python = f"#!{sys.executable}\nimport sys\nprint('from python', sys.version_info[0])\n"
    py, sh = await asyncio.gather(run_job(tmp_path / "py", {"script": python}, job_id="jpy"),
                                  run_job(tmp_path / "sh", {"script": "echo no shebang here\n"}, job_id="jsh"))
    assert "from python 3" in py.log and py.final["code"] == 0
    assert "no shebang here" in sh.log and sh.final["code"] == 0
    assert sh.child is not None and sh.child.spec.argv[0] == "/bin/sh"


async def test_script_killed_by_a_signal_reports_the_signal(tmp_path: Path) -> None:
    final = (await run_job(tmp_path, {"script": "#!/bin/sh\nkill -9 $$\n"})).final
    assert final["code"] == "SIGKILL" and final["description"] == "Script exited with code: SIGKILL"


async def test_abort_signals_the_script_then_kills_it(tmp_path: Path) -> None:
    polite = ShellJob(tmp_path / "polite", {"script": "#!/bin/sh\ntrap 'echo got TERM; exit 7' TERM\necho ready\n"
                                            "while :; do sleep 0.05; done\n"}, kill="parent", kill_timeout=30)
    stubborn = ShellJob(tmp_path / "stubborn", {"script": "#!/bin/sh\ntrap '' TERM\necho ready\n"
                                                "while :; do sleep 0.05; done\n"}, job_id="jsh2", kill_timeout=0.5)
    tasks = [asyncio.create_task(polite.run()), asyncio.create_task(stubborn.run())]
    await until(lambda: "ready" in polite.log and "ready" in stubborn.log, "the scripts to start")
    await asyncio.gather(polite.abort("stop please"), stubborn.abort("stop now"))
    await asyncio.wait_for(asyncio.gather(*tasks), 20)
    assert "got TERM" in polite.log, "SIGTERM reaches the script itself"
    for job, reason in ((polite, "stop please"), (stubborn, "stop now")):
        assert job.final["code"] == "abort" and job.final["description"] == reason
    assert "did not exit" in stubborn.meta_log, "a script ignoring SIGTERM is killed"


async def test_abort_while_the_script_is_being_started_still_stops_it(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    gate = asyncio.Event()
    real_spawn = process.spawn

    async def held_spawn(*args: Any, **kwargs: Any) -> Any:
        await gate.wait()
        return await real_spawn(*args, **kwargs)

    monkeypatch.setattr(process, "spawn", held_spawn)
    job = ShellJob(tmp_path, {"script": "#!/bin/sh\nsleep 30\n"})
    task = asyncio.create_task(job.run())
    await until(lambda: job.child is not None, "the child to be set up")
    await job.abort("too early")  # the spawn is still held
    gate.set()
    await asyncio.wait_for(task, 15)
    assert job.final["code"] == "abort" and job.final["description"] == "too early"
    assert job.child is not None and job.child.pid is not None and "Spawned child process" in job.meta_log


def test_grace_before_sigkill_is_the_plugins_at_most() -> None:
    from sundial.satellite.shelljob import InAgentShell

    assert InAgentShell.kill_timeout(10) == 9 and InAgentShell.kill_timeout(2) == 2


async def test_huge_lines_and_binary_garbage_intact(tmp_path: Path) -> None:
    script = ("#!/bin/sh\n"
              "head -c 3000000 /dev/zero | tr '\\0' 'a'; echo\n"
              "printf '\\377\\376 garbage \\001\\n'\n"
              "echo '{\"xy\":1,\"status\":\"after\"}'\n")
    job = await run_job(tmp_path, {"script": script, "annotate": True})
    assert "] " + "a" * 3000000 + "\n" in job.log, "a long line is logged whole, stamped"
    assert "garbage" in job.log and {"xy": 1, "status": "after"} in job.messages
    assert job.final["code"] == 0


async def test_line_beyond_the_reader_limit_is_stamped_once(tmp_path: Path) -> None:
    logs: list[str] = []
    spec = ProcessSpec(["sh", "-c", "head -c 5000 /dev/zero | tr '\\0' 'b'; echo; echo short"],
                       max_line_bytes=1024, sample_interval=None)
    child = ChildProcess(spec, on_log=logs.append, line_rules=ShellLines(annotate=True))
    await child.start()
    await child.wait()
    lines = "".join(logs).splitlines()
    assert len(lines) == 2 and _STAMP.match(lines[0]) and lines[0].endswith("b" * 5000)
    assert _STAMP.match(lines[1]) and lines[1].endswith("] short")


async def test_without_script_is_a_clear_error(tmp_path: Path) -> None:
    final = (await run_job(tmp_path, {"script": "  "})).final
    assert final["code"] == 1 and final["description"] == "Shell Plugin Error: No script was provided."


async def test_pass_hands_input_data_on(tmp_path: Path) -> None:
    details = {"input": {"data": {"rows": [1, 2]}}}
    job = await run_job(tmp_path, {"script": "#!/bin/sh\necho '{\"xy\":1,\"data\":{\"more\":true}}'\n", "pass": True},
                        details=details)
    assert job.final["data"] == {"rows": [1, 2], "more": True}


SAME_BOTH_WAYS = {
    "success": "#!/bin/sh\necho hello\necho 30%\necho '{\"xy\":1,\"status\":\"s\"}'\necho 'x {not json}'\n",
    "failure": "#!/bin/sh\necho '<bad> & worse' >&2\nexit 5\n",
    "own_code": "#!/bin/sh\necho '{\"xy\":1,\"code\":\"E 42\",\"description\":\"mine\"}'\nexit 2\n",
    "signal": "#!/bin/sh\nkill -TERM $$\n",
    "plain": "echo from sh\n",
}


@pytest.mark.parametrize("name", sorted(SAME_BOTH_WAYS))
async def test_in_agent_and_stand_alone_plugin_agree(tmp_path: Path, name: str) -> None:
    """What the conductor learns is the same whichever way the script ran."""
    params = {"script": SAME_BOTH_WAYS[name]}
    job = await run_job(tmp_path / "agent", params)
    logs: list[str] = []
    messages: list[dict[str, Any]] = []
    doc = {"xy": 1, "type": "event", "id": "jsh1", "params": params, "temp_dir": str(tmp_path)}
    spec = ProcessSpec(builtin_argv("shell-plugin"), stdin_doc=doc, cwd=str(tmp_path), sample_interval=None,
                       env={k: v for k, v in os.environ.items() if not k.startswith("SUNDIAL_")})
    await run_process(spec, on_log=logs.append, on_message=messages.append)
    plugin_final = next(m for m in messages if "code" in m)
    agent_final = job.final
    for key in ("code", "description", "html"):
        assert agent_final.get(key) == plugin_final.get(key), key
    assert sorted("".join(logs).splitlines()) == sorted(job.log.splitlines())
    assert [m["progress"] for m in messages if "progress" in m] == job.progress
