"""A job on the agent with real children: environment, wire-protocol updates, exits, abort."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
from sat_peer import until

from sundial.protocol import LaunchJob
from sundial.satellite.jobs import Job, build_env, parse_command


class Emitted:
    def __init__(self) -> None:
        self.frames: list[tuple[str, dict[str, Any], bool]] = []

    def __call__(self, cmd: str, data: dict[str, Any], important: bool) -> None:
        self.frames.append((cmd, data, important))

    def final(self, job_id: str) -> dict[str, Any]:
        finals = [d[job_id] for c, d, _ in self.frames if c == "jobs" and d.get(job_id, {}).get("state") == "complete"]
        assert len(finals) == 1
        return finals[0]

    def text(self, cmd: str) -> str:
        return "".join(d["text"] for c, d, _ in self.frames if c == cmd)


def make_job(tmp_path: Path, emit: Emitted, **job: Any) -> Job:
    launch = LaunchJob.model_validate({"job": {"id": "jt1", **job}, "details": {"input": {"data": {"k": "v"}}},
                                       "sec": {"API_KEY": "s3cret"}})
    return Job(launch, emit=emit, temp_dir=tmp_path / "temp", log_dir=tmp_path / "logs",
               base_url="http://c:5522", kill_timeout=2, job_env={"FROM_CONFIG": "1"}, version="9.9.9",
               extra_doc={"base_url": "http://c:5522"})


def script(code: str) -> str:
    return f"{sys.executable} -c {shlex.quote(code)}"


async def test_success_accumulates_data_and_reports_complete(tmp_path: Path) -> None:
    emit = Emitted()
    code = ("import json,os,sys; job=json.loads(sys.stdin.readline()); "
            "print(json.dumps({'xy':1,'progress':0.5,'data':{'arr':[0,1,2]}})); "
            "print(json.dumps({'xy':1,'data':{'arr':[3,4,5]},'push':{'tags':['t1']}})); "
            "e = os.environ; print('env', e['JOB_ID'], e['API_KEY'], e['data_k'], job['secrets']['API_KEY']); "
            "print(json.dumps({'xy':1,'complete':True}))")
    job = make_job(tmp_path, emit, command=script(code))
    await job.run()
    final = emit.final("jt1")
    assert final["code"] == 0 and final["complete"] is True and final["progress"] == 1.0
    assert final["data"] == {"arr": [0, 1, 2, 3, 4, 5]}, "arrays concatenate across updates"
    assert final["push"] == {"tags": ["t1"]}
    assert "env jt1 s3cret v s3cret" in emit.text("job_log")
    assert "Spawned child process" in emit.text("job_meta")
    assert not (tmp_path / "temp" / "jobs" / "jt1").exists(), "the job's working dir is removed"
    assert all(important for c, _d, important in emit.frames if c in ("jobs", "job_log"))


async def test_exit_without_completion_is_a_warning(tmp_path: Path) -> None:
    emit = Emitted()
    await make_job(tmp_path, emit, command="true").run()
    final = emit.final("jt1")
    assert final["code"] == "warning" and final["unknown"] == 1
    assert final["description"] == "Process exited without reporting job completion."


async def test_crash_reports_exit_code(tmp_path: Path) -> None:
    emit = Emitted()
    await make_job(tmp_path, emit, command="sh -c 'exit 5'").run()
    final = emit.final("jt1")
    assert final["code"] == 5 and "crashed with code: 5" in final["description"]


async def test_failure_code_without_description_gets_the_default(tmp_path: Path) -> None:
    emit = Emitted()
    await make_job(tmp_path, emit, command=script("print('{\"xy\":1,\"code\":999}')")).run()
    final = emit.final("jt1")
    assert final["code"] == 999 and final["description"] == "Unknown Error (no description provided)"


async def test_lines_after_completion_are_ignored(tmp_path: Path) -> None:
    emit = Emitted()
    code = "print('{\"xy\":1,\"code\":0}'); print('{\"xy\":1,\"code\":7,\"progress\":0.1}')"
    await make_job(tmp_path, emit, command=script(code)).run()
    assert emit.final("jt1")["code"] == 0


async def test_abort_sets_code_and_kills(tmp_path: Path) -> None:
    import asyncio

    emit = Emitted()
    job = make_job(tmp_path, emit, command="sleep 1000", kill="all")
    task = asyncio.create_task(job.run())
    await until(lambda: job.child is not None and job.child.pid is not None, "the child to start")
    await job.abort("Job aborted by user")
    await task
    final = emit.final("jt1")
    assert final["code"] == "abort" and final["description"] == "Job aborted by user"


@pytest.mark.parametrize(("job", "message"), [
    ({"command": "[docker-plugin]"}, "Built-in plugin [docker-plugin] is not available"),
    ({"command": "true", "uid": "no_such_user_xyz"}, "User does not exist: no_such_user_xyz"),
    ({"command": "true", "gid": "no_such_group_xyz"}, "Group does not exist: no_such_group_xyz"),
    ({"command": "true", "script": True, "plugin": "missingplug"}, "Plugin not found"),
    ({"command": "/no/such/program"}, "Child spawn error"),
])
async def test_setup_failures_are_job_results(tmp_path: Path, job: dict[str, Any], message: str) -> None:
    emit = Emitted()
    await make_job(tmp_path, emit, **job).run()
    final = emit.final("jt1")
    assert final["code"] == 1 and message in final["description"]


async def test_plugin_script_path_is_appended(tmp_path: Path) -> None:
    emit = Emitted()
    plugins = tmp_path / "temp" / "plugins"
    plugins.mkdir(parents=True)
    (plugins / "myplug").write_text("print('{\"xy\":1,\"code\":0,\"description\":\"from script\"}')\n")
    await make_job(tmp_path, emit, command=sys.executable, script=True, plugin="myplug").run()
    assert emit.final("jt1")["description"] == "from script"


def test_env_layers_and_private_vars() -> None:
    base = {"PATH": "/opt/x", "XYSAT_secret": "no", "SUNDIAL_secret_key": "no", "KEEP": "yes", "A": "base"}
    job = {"env": {"A": "job"}, "params": {"my-param": True, "obj": {"x": 1}, "n": 3.0},
           "workflow": {"params": {"w": "1"}}}
    details = {"workflowData": {"wd": 2}, "serverData": {"sd": 3}, "input": {"data": {"dd": 4}}}
    env = build_env(job, details, {"A": "secret"}, job_env={"A": "config"}, fixed={"JOB_ID": "j1"}, base=base)
    assert "XYSAT_secret" not in env and "SUNDIAL_secret_key" not in env and env["KEEP"] == "yes"
    assert env["A"] == "secret", "secrets win over job and config env"
    assert env["my_param"] == "true" and env["obj"] == '{"x":1}' and env["n"] == "3"
    assert env["workflow_w"] == "1" and env["workflow_data_wd"] == "2" and env["server_data_sd"] == "3"
    assert env["data_dd"] == "4" and env["JOB_ID"] == "j1"
    assert env["PATH"].startswith("/opt/x") or "/opt/x" in env["PATH"].split(":")


def test_command_parsing_expands_variables_without_a_shell() -> None:
    argv = parse_command("/usr/bin/env python3 -c 'print(1)' $HOME \"a b\" ; rm", {"HOME": "/h"})
    assert argv == ["/usr/bin/env", "python3", "-c", "print(1)", "/h", "a b", ";", "rm"]


async def test_sloppy_typed_keys_are_normalised_for_the_conductor(tmp_path: Path) -> None:
    from sundial import protocol

    emit = Emitted()
    code = "print('{\"xy\":1,\"progress\":\"half\",\"description\":5,\"complete\":1,\"code\":[2]}')"
    await make_job(tmp_path, emit, command=script(code)).run()
    for cmd, data, _imp in emit.frames:
        if cmd == "jobs":
            protocol.JobsUpdate.from_data(data)  # the conductor's validation accepts every frame
    final = emit.final("jt1")
    assert final["code"] == "[2]" and final["description"] == "5"
