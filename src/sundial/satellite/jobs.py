"""One job on the agent: files in, environment, command line, wire-protocol updates, abort, files out.

A plugin command is an executable line (plus the plugin's script), or ``[name]`` for a built-in
plugin, which runs as ``<python> -m sundial.satellite.plugins <name>`` (see that package), except
``[shell-plugin]``: the agent runs that one itself (:mod:`sundial.satellite.shelljob`). Input
files are downloaded into the job directory before launch and output files uploaded after it,
through :class:`~sundial.satellite.files.ConductorLink`. Results are delivered through ``jobs``
frames (the finish path the conductor must accept per satellite-protocol.md §7.7); the HTTP
``finish_job`` call is not used yet.

A job lives independently of the connection: output, progress and the final result are handed to
``emit`` (the agent's outbox), which keeps what matters while the conductor is unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import os
import pwd
import re
import secrets
import shlex
import shutil
import string
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson

from sundial.protocol import LaunchJob
from sundial.satellite.files import ConductorLink, TransferError, UploadUnsupported, expand_specs
from sundial.satellite.plugins import builtin_argv
from sundial.satellite.plugins.wire import PluginError
from sundial.satellite.process import ChildProcess, KillMode, ProcessSpec, SpawnError, TreeSample
from sundial.satellite.shelljob import SHELL_PLUGIN, InAgentShell

__all__ = ["Job", "build_env", "parse_command"]

#: ``emit(cmd, data, important)``: important frames survive a disconnection, others may be dropped.
Emit = Callable[[str, dict[str, Any], bool], None]

_PRIVATE_ENV = ("XYOPS_", "XYSAT_", "SATELLITE_", "SUNDIAL_")
_STD_PATH = ["/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"]
_REDRAW_KEYS = frozenset({"table", "html", "markdown", "text", "perf", "push", "status"})
_ACCUMULATED = ("data", "serverData", "workflowData")
_WORD = re.compile(r"^\w+$")


class JobSetupError(Exception):
    """The job cannot start; the message becomes its description (code 1)."""


def _env_str(value: Any) -> str:
    """How a JavaScript agent would stringify a value into the environment."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode("utf-8")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _env_key(key: str) -> str:
    return re.sub(r"\W", "_", str(key))


def _merged_path(current: str) -> str:
    home = os.environ.get("HOME", "")
    parts = ([f"{home}/.local/bin"] if home else []) + current.split(":") + _STD_PATH
    seen: list[str] = []
    for part in parts:
        if part and part not in seen:
            seen.append(part)
    return ":".join(seen)


def _prefixed(env: dict[str, str], prefix: str, values: Any) -> None:
    if isinstance(values, dict):
        for key, value in values.items():
            env[prefix + _env_key(key)] = _env_str(value)


def build_env(job: Mapping[str, Any], details: Mapping[str, Any], sec: Mapping[str, str], *,
              job_env: Mapping[str, Any], fixed: Mapping[str, str], base: Mapping[str, str] | None = None,
              user_env: Mapping[str, str] | None = None, legacy: str | None = None) -> dict[str, str]:
    """The child's environment, layered in the order of plugins-and-wire-protocol.md §4.1 (later
    layers win; so a param named like a secret overrides the secret). ``legacy`` (the agent version
    in Cronicle mode) adds ``CRONICLE`` and ``JOB_<KEY>`` and expands ``$VAR`` inside params."""
    source = os.environ if base is None else base
    env = {k: v for k, v in source.items() if not k.startswith(_PRIVATE_ENV)}
    env["PATH"] = _merged_path(env.get("PATH", ""))
    for layer in (job_env, job.get("env") or {}, sec):
        if isinstance(layer, dict):
            env.update({str(k): _env_str(v) for k, v in layer.items()})
    env.update(fixed)
    if legacy is not None:
        env["CRONICLE"] = legacy
        env.update({f"JOB_{k.upper()}": _legacy_str(v) for k, v in job.items() if _is_scalar(v)})
    env.update(user_env or {})
    _prefixed(env, "", _expanded(job.get("params"), env) if legacy is not None else job.get("params"))
    workflow = job.get("workflow")
    _prefixed(env, "workflow_", workflow.get("params") if isinstance(workflow, dict) else None)
    _prefixed(env, "workflow_data_", details.get("workflowData"))
    _prefixed(env, "server_data_", details.get("serverData"))
    input_ = details.get("input")
    _prefixed(env, "data_", input_.get("data") if isinstance(input_, dict) else None)
    return env


def _is_scalar(value: Any) -> bool:
    return value is not None and not isinstance(value, dict | list)


def _legacy_str(value: Any) -> str:
    return ("1" if value else "0") if isinstance(value, bool) else _env_str(value)


def _expanded(params: Any, env: Mapping[str, str]) -> Any:
    """Cronicle mode: ``$VAR`` in string params is replaced from the environment built so far."""
    if not isinstance(params, dict):
        return params
    return {k: _EnvTemplate(v).safe_substitute(env) if isinstance(v, str) else v for k, v in params.items()}


class _EnvTemplate(string.Template):
    idpattern = r"[A-Za-z_][A-Za-z0-9_]*"


def parse_command(command: str, env: Mapping[str, str]) -> list[str]:
    """Executable plus shell-style arguments with ``$VAR`` expansion from the child env (no shell)."""
    command = command.strip()
    if not command:
        raise JobSetupError("Plugin Error: No command specified.")
    exe, _, rest = command.partition(" ")
    try:
        args = [_EnvTemplate(a).safe_substitute(env) for a in shlex.split(rest)] if rest.strip() else []
    except ValueError as exc:
        raise JobSetupError(f"Plugin Error: Cannot parse command line: {exc}") from None
    return [exe, *args]


def _resolve_user(uid: Any, gid: Any) -> tuple[int | None, int | None, dict[str, str]]:
    """Run-as account: uid/gid by name or number; unknown names fail the job with a clear reason."""
    if uid in (None, "", 0, "0") and gid in (None, "", 0, "0"):
        return None, None, {}
    env: dict[str, str] = {}
    user_id = group_id = None
    if uid not in (None, ""):
        try:
            entry = pwd.getpwuid(int(uid)) if str(uid).isdigit() else pwd.getpwnam(str(uid))
        except (KeyError, ValueError):
            raise JobSetupError(f"Plugin Error: User does not exist: {uid}") from None
        user_id, group_id = entry.pw_uid, entry.pw_gid
        env = {"USER": entry.pw_name, "USERNAME": entry.pw_name, "HOME": entry.pw_dir, "SHELL": entry.pw_shell}
    if gid not in (None, ""):
        try:
            group_id = grp.getgrgid(int(gid)).gr_gid if str(gid).isdigit() else grp.getgrnam(str(gid)).gr_gid
        except (KeyError, ValueError):
            raise JobSetupError(f"Plugin Error: Group does not exist: {gid}") from None
    return user_id, group_id, env


def _sanitize(msg: dict[str, Any]) -> dict[str, Any]:
    """Give the typed keys the types the conductor validates, so one sloppy plugin line cannot get
    a whole ``jobs`` frame refused (plugins are judged by truthiness in xyOps)."""
    if "complete" in msg:
        msg["complete"] = bool(msg["complete"])
    progress = msg.get("progress")
    if "progress" in msg and (isinstance(progress, bool) or not isinstance(progress, int | float)):
        del msg["progress"]
    if "description" in msg and not isinstance(msg["description"], str):
        msg["description"] = "" if msg["description"] is None else str(msg["description"])
    code = msg.get("code")
    if "code" in msg and (code is None or isinstance(code, bool) or not isinstance(code, int | float | str)):
        msg["code"] = 1 if code is True else 0 if code in (False, None) else str(code)
    return msg


def _merge_accumulated(target: dict[str, Any], update: Mapping[str, Any]) -> None:
    """Shallow merge in which two arrays under the same key are concatenated."""
    for key, value in update.items():
        old = target.get(key)
        target[key] = old + value if isinstance(old, list) and isinstance(value, list) else value


class Job:
    """A launched job: owns its child, its accumulated output details and its reporting state."""

    def __init__(self, launch: LaunchJob, *, emit: Emit, temp_dir: Path, log_dir: Path, base_url: str,
                 kill_timeout: float, job_env: Mapping[str, Any], version: str,
                 extra_doc: Mapping[str, Any] | None = None, link: ConductorLink | None = None,
                 legacy: bool = False) -> None:
        self.job: dict[str, Any] = launch.job.model_dump()
        self.job.pop("activity", None)
        self.id: str = launch.job.id
        self.details = dict(launch.details)
        self.sec = dict(launch.sec)
        self.emit = emit
        self.temp_dir, self.log_dir, self.base_url = temp_dir, log_dir, base_url
        self.kill_timeout, self.job_env, self.version = kill_timeout, job_env, version
        self.extra_doc = dict(extra_doc or {})
        self.link, self.legacy = link, legacy
        self.file_specs: list[Any] = []
        self.uploaded: list[dict[str, Any]] = []
        self.accumulated: dict[str, dict[str, Any]] = {k: {} for k in _ACCUMULATED}
        self.push: dict[str, list[Any]] = {}
        self.pending: dict[str, Any] = {}
        self.child: ChildProcess | None = None
        self.shell: InAgentShell | None = None
        self._cleaning: asyncio.Future[None] | None = None
        self.completed = False
        self.aborting = False
        self.finished = False
        self.state = "active"

    # -- lifecycle -------------------------------------------------------------------------

    async def run(self) -> None:
        """Prepare, spawn, wait, finish. Never raises: every failure becomes the job's result."""
        try:
            await self._run()
        finally:
            if self._cleaning is None and self.shell is not None:
                self.shell.cleanup()  # finished without cleaning up (a bug): leave no script behind
            if self._cleaning is not None:
                await self._cleaning

    async def _run(self) -> None:
        spec = await self._setup()
        if spec is None:
            return
        child = await self._start_child(spec)
        if child is None:
            return
        result = await child.wait()
        if self.shell is not None:
            self._on_message(self.shell.final_message(result))
        await self._on_exit(result.exit_code, result.signal_name, result.pid or 0)

    async def _setup(self) -> ProcessSpec | None:
        """The child's spec, its files and inputs; None once a setup failure has finished the job."""
        try:
            spec = self._prepare()
            await asyncio.to_thread(self._make_files, Path(spec.cwd or "."))
            await self._fetch_inputs()
        except JobSetupError as exc:
            self._finish(1, str(exc))
            return None
        except OSError as exc:
            self._finish(1, f"Setup Error: {exc}")
            return None
        if self.aborting:  # aborted while being prepared: nothing to kill
            self._finish(self.job.get("code", "abort"), str(self.job.get("description") or ""))
            return None
        return spec

    async def _start_child(self, spec: ProcessSpec) -> ChildProcess | None:
        """Spawn; None once a spawn failure has finished the job."""
        self.child = child = ChildProcess(spec, on_log=self._on_log, on_message=self._on_message,
                                          on_notice=self.meta, on_sample=self._on_sample,
                                          line_rules=self.shell.lines if self.shell else None)
        if self.shell is not None and (passed := self.shell.pass_message()) is not None:
            self._on_message(passed)
        try:
            pid = await child.start()
        except SpawnError as exc:
            self._finish(1, f"{'Script' if self.shell else 'Child'} spawn error: {exc}")
            return None
        self.job["pid"] = pid
        self.pending["pid"] = pid
        self.meta(f"Spawned child process: PID {pid}")
        if self.aborting:  # the abort came while the child was being started
            await self._stop_child(str(self.job.get("description") or ""))
        return child

    def _prepare(self) -> ProcessSpec:
        """Everything about the child but the files it needs (see :meth:`_make_files`)."""
        cwd = self.temp_dir / "jobs" / self.id
        log_file = self.log_dir / "jobs" / f"job-{self.id}.log"
        self.job.update({"cwd": str(cwd), "log_file": str(log_file)})
        uid, gid, user_env = _resolve_user(self.job.get("uid"), self.job.get("gid"))
        fixed = {"XYOPS": self.version, "JOB_ID": self.id, "JOB_LOG": str(log_file),
                 "JOB_NOW": _env_str(self.job.get("now", time.time())), "JOB_BASE_URL": self.base_url,
                 "PWD": str(cwd)}
        env = build_env(self.job, self.details, self.sec, job_env=self.job_env, fixed=fixed, user_env=user_env,
                        legacy=self.version if self.legacy else None)
        argv = self._argv(env)
        kill_timeout = self.kill_timeout if self.shell is None else self.shell.kill_timeout(self.kill_timeout)
        return ProcessSpec(argv=argv, stdin_doc=self._stdin_doc, env=env, cwd=str(cwd), uid=uid, gid=gid,
                           kill_timeout=kill_timeout)

    def _make_files(self, cwd: Path) -> None:
        """The job directory (mode 0777) and the shell script. Run in a worker thread: creating
        files and directories can take a millisecond or more of journal waits on a busy disk, which
        would otherwise stall every other job's output and results on the event loop."""
        cwd.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            cwd.chmod(0o777)
        if self.shell is not None:
            try:
                self.shell.write()
            except PluginError as exc:
                raise JobSetupError(exc.description) from None

    def _argv(self, env: Mapping[str, str]) -> list[str]:
        command = str(self.job.get("command") or "")
        builtin = re.fullmatch(r"\s*\[([\w\-]+)\]\s*", command)
        if builtin and builtin.group(1) == SHELL_PLUGIN:
            return self._shell_argv()
        if builtin:
            try:
                return builtin_argv(builtin.group(1))
            except KeyError:
                raise JobSetupError(f"Plugin Error: Built-in plugin [{builtin.group(1)}] is not available on "
                                    "this satellite.") from None
        argv = parse_command(command, env)
        if self.job.get("script"):
            script = self.temp_dir / "plugins" / str(self.job.get("plugin") or "")
            if not script.is_file():
                raise JobSetupError(f"Plugin not found: {self.job.get('plugin')}")
            argv.append(str(script.resolve()))
        return argv

    def _shell_argv(self) -> list[str]:
        """``[shell-plugin]`` in the agent: the script runs directly (no plugin process)."""
        doc = {**self.job, **self.details}  # what the plugin would read: `pass` hands on input.data
        try:
            self.shell = InAgentShell(doc, self.extra_doc.get("temp_dir") or self.temp_dir.resolve())
        except PluginError as exc:
            raise JobSetupError(exc.description) from None
        return self.shell.argv

    async def _fetch_inputs(self) -> None:
        """Download ``input.files`` into the job directory; the ``path`` key goes once fetched."""
        input_ = self.details.get("input")
        files = input_.get("files") if isinstance(input_, dict) else None
        if not isinstance(files, list) or not files or self.job.get("runner"):
            return
        if self.link is None:
            raise JobSetupError("Setup Error: this satellite has no conductor link to download input files.")
        async with self.link.client() as client:
            for file in files:
                if not isinstance(file, dict):
                    continue
                self.meta(f"Downloading file: {file.get('filename') or file.get('path')}")
                try:
                    await self.link.download(client, file, Path(self.job["cwd"]))
                except TransferError as exc:
                    raise JobSetupError(f"Setup Error: {exc}") from None
                file.pop("path", None)

    def _stdin_doc(self, pid: int) -> dict[str, Any]:
        job = {k: v for k, v in self.job.items() if k != "type"}
        job["pid"] = pid
        return {"xy": 1, "type": "event", **job, **self.details, "secrets": self.sec, **self.extra_doc,
                "activity": None}

    async def abort(self, reason: str) -> None:
        """Mark aborted and take the child down per the job's ``kill`` policy."""
        if self.completed or self.finished:
            return
        self.meta("Aborting job on server")
        self.aborting = True
        self._complete_with("abort", reason)
        await self._stop_child(reason)

    async def _stop_child(self, reason: str) -> None:
        """The ``kill`` policy, once there is a running child (see :meth:`_run` for one that was
        still being started when the abort came)."""
        kill = str(self.job.get("kill") or "parent")
        if self.child is None or not self.child.running:
            return
        if kill == "none":
            self.child.detach()
            return self._finish(self.job["code"], self.job["description"])
        await self.child.abort(reason, KillMode.TREE if kill == "all" else KillMode.PARENT)

    # -- child output ----------------------------------------------------------------------

    def _on_log(self, text: str) -> None:
        self.emit("job_log", {"id": self.id, "text": text}, True)

    def meta(self, text: str) -> None:
        self.emit("job_meta", {"id": self.id, "text": text}, True)

    def _on_sample(self, sample: TreeSample) -> None:
        self.job["procs"] = {str(pid): row for pid, row in sample.procs.items()}
        for key, value in (("cpu", sample.cpu), ("mem", sample.mem)):
            stat = self.job.get(key) or {"min": value, "max": value, "total": 0, "count": 0, "current": value}
            stat.update(min=min(stat["min"], value), max=max(stat["max"], value), total=stat["total"] + value,
                        count=stat["count"] + 1, current=value)
            self.job[key] = stat

    def _on_message(self, msg: dict[str, Any]) -> None:
        """Apply one ``xy`` line (wire protocol §5); ignored after completion or during an abort."""
        if self.completed or self.aborting:
            return
        msg = _sanitize({k: v for k, v in msg.items() if k != "xy"})
        if msg.get("complete") and not msg.get("code"):
            msg["code"] = 0
        if "code" in msg and "complete" not in msg:
            msg["complete"] = True
        for key in _ACCUMULATED:
            if key in msg:
                self._accumulate(key, msg.pop(key))
        if "files" in msg:
            self._set_files(msg.pop("files"))
        if "push" in msg:
            self._push(msg.pop("push"))
        if _REDRAW_KEYS & msg.keys():
            msg["redraw"] = secrets.token_hex(8)
        self.job.update(msg)
        self.pending.update(msg)
        if msg.get("complete"):
            self.completed = True

    def _accumulate(self, key: str, value: Any) -> None:
        if not isinstance(value, dict):
            self.meta(f"Ignoring malformed '{key}' update from job: must be an object.")
            return
        _merge_accumulated(self.accumulated[key], value)

    def _set_files(self, files: Any) -> None:
        """Output file specs: the last ``files`` message wins; they stay here until the upload."""
        if not isinstance(files, list):
            self.meta("Ignoring malformed 'files' update from job: must be an array.")
            return
        self.file_specs = list(files)

    def _push(self, push: Any) -> None:
        ok = isinstance(push, dict) and all(_WORD.match(str(k)) and isinstance(v, list) for k, v in push.items())
        if not ok:
            self.meta("Ignoring malformed 'push' update from job: must be an object of arrays.")
            return
        for key, values in push.items():
            self.push.setdefault(key, []).extend(values)
        self.pending["redraw"] = self.job["redraw"] = secrets.token_hex(8)

    # -- reporting -------------------------------------------------------------------------

    def take_update(self, *, telemetry: bool) -> dict[str, Any] | None:
        """The partial job for the next ``jobs`` frame (changes since last time, plus telemetry)."""
        if self.finished or self.state != "active":
            return None
        update = dict(self.pending)
        self.pending.clear()
        push = {k: v for k, v in self.push.items() if k != "files"}
        if push:
            update["push"] = push
            self.push = {k: v for k, v in self.push.items() if k == "files"}
        if telemetry:
            update.update({k: self.job[k] for k in ("procs", "cpu", "mem") if k in self.job})
        if not update:
            return None
        update.update(id=self.id, state=self.state, progress=self.job.get("progress", 0))
        return update

    def snapshot(self) -> dict[str, Any]:
        """The whole job as the agent sees it (sent after a reconnect)."""
        return {**self.job, "id": self.id, "state": self.state}

    def _complete_with(self, code: Any, description: str) -> None:
        self.completed = True
        self.job.update(code=code, description=description, complete=True)

    async def _on_exit(self, exit_code: int | None, signal_name: str | None, pid: int) -> None:
        self.meta(f"Child exited with code: {exit_code if exit_code is not None else signal_name}")
        if self.completed:
            return await self._finish_async(self.job.get("code", 0), str(self.job.get("description") or ""))
        if exit_code == 0:
            self.job["unknown"] = 1
            return await self._finish_async("warning", "Process exited without reporting job completion.")
        code = exit_code if exit_code is not None else signal_name
        await self._finish_async(code, f"Child {pid} crashed with code: {code}")

    def _finish(self, code: Any, description: str) -> None:
        """Finish without touching output files (setup failures, refusals, detached children)."""
        if self._begin_finish(code, description, announce=False):
            self._end_finish()

    async def _finish_async(self, code: Any, description: str) -> None:
        """Finish after the child: report ``finishing`` at once, upload output files, then ``complete``.
        With nothing to upload the ``complete`` report follows at once and carries everything, so
        the ``finishing`` one is skipped (one frame less per job for both ends)."""
        specs = self._output_specs() if self.job.get("cwd") and not self.job.get("runner") else []
        if self._begin_finish(code, description, announce=bool(specs)):
            await self._upload_outputs(specs)
            self._end_finish()

    def _begin_finish(self, code: Any, description: str, announce: bool) -> bool:
        if self.finished or self.state != "active":
            return False
        if code not in (0, None, "") and not description:
            description = "Unknown Error (no description provided)"
        self.completed = True
        self.job.update(code=code, description=description, complete=True, progress=1.0)
        self.state = "finishing"
        if announce:
            self.emit("jobs", {self.id: {**self.pending, "id": self.id, "state": "finishing", "code": code,
                                         "description": description, "complete": True, "progress": 1.0}}, True)
            self.pending.clear()
        return True

    def _end_finish(self) -> None:
        """The final ``complete`` report (with accumulated details); important, so it survives a drop."""
        final = {k: v for k, v in self.snapshot().items() if k not in ("procs", "conns")}
        final.update({k: v for k, v in self.accumulated.items() if v})
        final.update(state="complete", files=self.uploaded)
        if self.push:
            final["push"] = {k: v for k, v in self.push.items() if k != "files"}
        self.state = "complete"
        self.finished = True
        self.emit("jobs", {self.id: final}, True)
        self._cleanup()

    # -- output files ----------------------------------------------------------------------

    def _output_specs(self) -> list[Any]:
        specs = [*self.file_specs, *self.push.get("files", [])]
        log_file = self.job.get("log_file")
        if log_file and Path(log_file).is_file():
            specs.append({"path": str(log_file), "delete": True})
        return specs

    async def _upload_outputs(self, specs: list[Any]) -> None:
        """Upload what the job left behind; a failure turns a success into ``code: upload``."""
        if not specs:
            return
        files, problems = expand_specs(specs, Path(self.job["cwd"]))
        for problem in problems:
            self.meta(problem)
        if not files:
            return
        if self.link is None:
            return self._upload_failed("this satellite has no conductor link to upload files.")
        try:
            async with self.link.client() as client:
                await self.link.wait_primary(client, self.meta)
                for out in files:
                    self.meta(f"Uploading file: {out.filename}")
                    self.uploaded.append(await self.link.upload(client, self.id, out))
        except UploadUnsupported:
            self._upload_failed("the conductor does not offer upload_job_file, so output files cannot be "
                                "stored.")
        except TransferError as exc:
            self._upload_failed(str(exc))

    def _upload_failed(self, reason: str) -> None:
        """A successful job becomes ``upload``; a failed one keeps its own code and says both."""
        self.uploaded = []
        self.meta(f"Upload Error: {reason}")
        if self.job.get("code") in (0, None, ""):
            self.job.update(code="upload", description=f"Upload Error: {reason}")
        else:
            self.job["description"] = f"{self.job.get('description')} (also: Upload Error: {reason})"

    def _cleanup(self) -> None:
        """Remove the job directory (and the shell script) in a worker thread that :meth:`run`
        waits for: the result has already left, and the event loop must not wait on the disk."""
        cwd = self.job.get("cwd")
        if cwd or self.shell is not None:
            self._cleaning = asyncio.ensure_future(asyncio.to_thread(self._remove_files, cwd))

    def _remove_files(self, cwd: str | None) -> None:
        if self.shell is not None:
            self.shell.cleanup()
        if not cwd:
            return
        try:
            os.rmdir(cwd)  # the usual case: nothing was left behind
        except FileNotFoundError:
            pass
        except OSError:
            shutil.rmtree(cwd, ignore_errors=True)
