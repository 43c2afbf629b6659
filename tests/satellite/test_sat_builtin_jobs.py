"""The agent's Job class end to end with built-in plugins and files, and plugins that misbehave.

Real children throughout: the job runs ``[shell-plugin]`` or ``[test-plugin]`` (or a python
one-liner standing in for a third-party plugin), input files come from a real HTTP server thread
and output files are posted back to it as the conductor's ``upload_job_file``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import sys
from pathlib import Path
from typing import Any

from http_peer import PeerServer
from sat_peer import until

from sundial import protocol as p
from sundial.protocol import LaunchJob
from sundial.satellite.files import ConductorLink, expand_specs, upload_name
from sundial.satellite.jobs import Job, build_env

SECRET_KEY = "UNIT_TEST"
TOKEN = p.server_auth_token("satunit1", SECRET_KEY)


class Emitted:
    """The agent's outbox, as a list."""

    def __init__(self) -> None:
        self.frames: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, cmd: str, data: dict[str, Any], important: bool) -> None:
        self.frames.append((cmd, data))

    def final(self, job_id: str) -> dict[str, Any]:
        finals = [d[job_id] for c, d in self.frames if c == "jobs" and d.get(job_id, {}).get("state") == "complete"]
        assert len(finals) == 1, self.text("job_meta")
        return finals[0]

    def text(self, cmd: str) -> str:
        return "".join(d["text"] for c, d in self.frames if c == cmd)


def make_job(tmp_path: Path, emit: Emitted, server: PeerServer | None, job: dict[str, Any],
             details: dict[str, Any] | None = None) -> Job:
    launch = LaunchJob.model_validate({"job": {"id": "jb1", "server": "satunit1", **job},
                                       "details": details or {}, "sec": {"DB_PASSWORD": "pw-from-vault"}})
    link = None
    if server is not None:
        link = ConductorLink(base_url=server.url, server_id="satunit1", auth_token=TOKEN, retries=1, health_wait=5)
    return Job(launch, emit=emit, temp_dir=tmp_path / "temp", log_dir=tmp_path / "logs",
               base_url=server.url if server else "http://c:5522", kill_timeout=2, job_env={}, version="9.9.9",
               extra_doc={"temp_dir": str(tmp_path / "temp")}, link=link)


async def run_ticking(job: Job) -> list[dict[str, Any]]:
    """Run the job while collecting its periodic updates, as the agent's one-second tick does."""
    updates: list[dict[str, Any]] = []
    task = asyncio.create_task(job.run())
    while not task.done():
        update = job.take_update(telemetry=False)
        if update:
            updates.append(update)
        await asyncio.sleep(0.01)
    await task
    return updates


SHELL_SCRIPT = """#!/bin/sh
set -e
echo "input says: $(cat data.csv)"
echo "param greeting=$greeting secret=$DB_PASSWORD job=$JOB_ID"
echo 50%
sleep 0.2
echo result > out.txt
echo extra > other.log
echo '{"xy":1,"files":["out.txt",{"path":"other.log","filename":"renamed log.txt","delete":true}]}'
"""


async def test_shell_job_end_to_end_with_input_and_output_files(tmp_path: Path, http_peer: PeerServer) -> None:
    http_peer.recorder.files["files/jobs/jprev/k1/data.csv"] = b"1,2,3"
    emit = Emitted()
    details = {"input": {"files": [{"id": "f1", "filename": "data.csv", "path": "files/jobs/jprev/k1/data.csv"}]}}
    job = make_job(tmp_path, emit, http_peer, {"command": "[shell-plugin]", "kill": "all",
                                               "params": {"script": SHELL_SCRIPT, "greeting": "hello"}}, details)
    updates = await run_ticking(job)
    final = emit.final("jb1")
    log = emit.text("job_log")
    assert final["code"] == 0 and final["description"] == "Script exited with code: 0", log
    assert "input says: 1,2,3" in log, "the input file was downloaded into the job directory"
    assert "param greeting=hello secret=pw-from-vault job=jb1" in log
    assert 0.5 in [u.get("progress") for u in updates] and "50%" not in log
    assert "path" not in details["input"]["files"][0], "the download location is not handed on"
    uploads = http_peer.recorder.uploads
    assert [u["file1"]["filename"] for u in uploads] == ["out.txt", "renamed log.txt"]
    assert uploads[0]["file1"]["data"] == b"result\n"
    assert uploads[0]["auth"] == p.job_token("jb1", TOKEN) and uploads[0]["server"] == "satunit1"
    assert http_peer.recorder.health_checks >= 1, "uploads wait for the primary's health check"
    assert [f["filename"] for f in final["files"]] == ["out.txt", "renamed log.txt"]
    assert final["files"][0]["path"].startswith("files/jobs/jb1/") and final["files"][0]["size"] == 7
    assert {"id", "date", "server", "job"} <= final["files"][0].keys()
    assert not (tmp_path / "temp" / "jobs" / "jb1").exists()


async def test_test_plugin_pushed_file_is_uploaded(tmp_path: Path, http_peer: PeerServer) -> None:
    emit = Emitted()
    job = make_job(tmp_path, emit, http_peer, {"command": "[test-plugin]",
                                               "params": {"duration": 0, "action": "Success", "upload": True}})
    await job.run()
    final = emit.final("jb1")
    assert final["code"] == 0 and final["description"] == "Success!"
    assert [f["filename"] for f in final["files"]] == ["test-output-jb1.txt"]
    assert final["data"]["text"] and "push" not in final or "files" not in final.get("push", {})


async def test_conductor_without_upload_verb_ends_as_upload_error(tmp_path: Path, http_peer: PeerServer) -> None:
    http_peer.recorder.upload_supported = False
    emit = Emitted()
    script = "#!/bin/sh\necho hi > out.txt\necho '{\"xy\":1,\"files\":[\"*.txt\"]}'\n"
    await make_job(tmp_path, emit, http_peer, {"command": "[shell-plugin]", "params": {"script": script}}).run()
    final = emit.final("jb1")
    assert final["code"] == "upload" and final["files"] == []
    assert "does not offer upload_job_file" in final["description"]


async def test_failed_input_download_is_a_setup_error(tmp_path: Path, http_peer: PeerServer) -> None:
    emit = Emitted()
    details = {"input": {"files": [{"filename": "gone.csv", "path": "files/missing/gone.csv"}]}}
    await make_job(tmp_path, emit, http_peer, {"command": "true"}, details).run()
    final = emit.final("jb1")
    assert final["code"] == 1 and final["description"].startswith("Setup Error: Failed to download gone.csv")
    assert "404" in final["description"]


def test_output_specs_expand_globs_tuples_and_objects(tmp_path: Path) -> None:
    for name in ("a.csv", "b.csv", "c.log", "sub/d.csv"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(name)
    specs = ["*.csv", "**/*.csv", ["c.log", "weird/name?.log", True], {"path": "a.csv", "filename": "x.csv"},
             "missing.txt", 42]
    files, problems = expand_specs(specs, tmp_path)
    assert [(f.path.relative_to(tmp_path).as_posix(), f.filename, f.delete) for f in files] == [
        ("a.csv", "a.csv", False), ("b.csv", "b.csv", False), ("sub/d.csv", "d.csv", False),
        ("c.log", "weird_name?.log", True)], "one upload per file; the first spec naming it wins"
    assert problems == ["Output file not found: missing.txt", "Ignoring malformed output file spec: 42"]
    assert upload_name("ré sumé<1>|x.pdf") == "ré sumé_1__x.pdf"


def test_environment_layers_follow_the_spec_order() -> None:
    job = {"id": "j1", "params": {"USER": "from-param", "TOKEN": "param-wins", "path": "$HOME/x"}, "retries": 2,
           "debug": True}
    base = {"PATH": "/bin", "HOME": "/home/agent"}
    env = build_env(job, {}, {"TOKEN": "secret", "DB": "pw"}, job_env={}, fixed={"JOB_ID": "j1"}, base=base,
                    user_env={"USER": "runner", "HOME": "/home/runner"})
    assert env["TOKEN"] == "param-wins" and env["DB"] == "pw", "a param named like a secret overrides it"
    assert env["USER"] == "from-param" and env["HOME"] == "/home/runner", "params come after the run-as account"
    assert env["path"] == "$HOME/x" and "CRONICLE" not in env and "JOB_RETRIES" not in env
    legacy = build_env(job, {}, {}, job_env={}, fixed={}, base=base, legacy="1.2.3")
    assert legacy["CRONICLE"] == "1.2.3" and legacy["JOB_RETRIES"] == "2" and legacy["JOB_DEBUG"] == "1"
    assert legacy["path"] == "/home/agent/x", "Cronicle mode expands $VAR in params"


# -- plugins that misbehave -------------------------------------------------------------------------


def py(code: str) -> str:
    return f"{sys.executable} -c {shlex.quote(code)}"


MISBEHAVING = {
    "garbage": (py("import sys; sys.stdout.buffer.write(b'\\xff\\xfe\\x00 noise\\n{\"xy\":1, oops}\\n{\"xy\":1}x\\n')"),
                "warning", "Process exited without reporting job completion."),
    "huge_line": (py("import sys; sys.stdout.write('z' * (33 << 20) + '\\nafter\\n'); sys.exit(4)"),
                  4, "crashed with code: 4"),
    "by_signal": (py("import os, signal; print('going down', flush=True); os.kill(os.getpid(), signal.SIGKILL)"),
                  "SIGKILL", "crashed with code: SIGKILL"),
    "flood": (py("import sys\nfor i in range(200000): sys.stdout.write(f'line {i}\\n')\n"
                 "print('{\"xy\":1,\"code\":0}')"), 0, ""),
    "forks": (py("import subprocess; kid = subprocess.Popen(['sleep', '30']); print('grandchild', kid.pid); "
                 "print('{\"xy\":1,\"code\":0}')"), 0, ""),
    "bad_json_result": (py("print('{\"xy\":1,\"code\":\"E 42!\",\"description\":[1]}')"), "E 42!", "[1]"),
}


async def test_misbehaving_plugins_end_as_clear_results_with_logs_intact(tmp_path: Path) -> None:
    emits = {name: Emitted() for name in MISBEHAVING}
    jobs = [make_job(tmp_path / name, emits[name], None, {"command": command, "id": f"jm{i}", "kill": "all"})
            for i, (name, (command, _c, _d)) in enumerate(MISBEHAVING.items())]
    await asyncio.gather(*(job.run() for job in jobs))
    for job, (name, (_cmd, code, description)) in zip(jobs, MISBEHAVING.items(), strict=True):
        final = emits[name].final(job.id)
        assert final["code"] == code and description in final["description"], (name, final)
    log = {name: emit.text("job_log") for name, emit in emits.items()}
    assert "noise" in log["garbage"] and '{"xy":1, oops}' in log["garbage"]
    assert "Failed to parse JSON" in emits["garbage"].text("job_meta")
    assert log["huge_line"].count("z") == 33 << 20 and "after" in log["huge_line"]
    assert "longer than" in emits["huge_line"].text("job_meta")
    assert "going down" in log["by_signal"]
    assert log["flood"].count("\n") == 200000 and "line 199999\n" in log["flood"]
    assert sum(1 for c, _d in emits["flood"].frames if c == "job_log") < 1000, "a flood is batched"
    assert "output pipes stayed open" in emits["forks"].text("job_meta"), "a lingering child cannot hold the job"
    grandchild = int(log["forks"].split("grandchild ")[1].split()[0])
    with contextlib.suppress(ProcessLookupError):  # it may already be gone
        os.kill(grandchild, signal.SIGKILL)  # a finished job leaves its background children alone; we clean up
    await asyncio.sleep(0.2)


async def test_plugin_that_never_exits_is_aborted_with_its_log_and_children(tmp_path: Path) -> None:
    emit = Emitted()
    script = "#!/bin/sh\necho started\nsleep 300 &\nwhile :; do sleep 0.1; done\n"
    job = make_job(tmp_path, emit, None, {"command": "[shell-plugin]", "kill": "all", "params": {"script": script}})
    task = asyncio.create_task(job.run())
    await until(lambda: "started" in emit.text("job_log"), "the script to start")
    await job.abort("Job exceeded its maximum run time")
    await task
    final = emit.final("jb1")
    assert final["code"] == "abort" and final["description"] == "Job exceeded its maximum run time"
    assert "started" in emit.text("job_log")
    assert job.child is not None and not job.child.running
