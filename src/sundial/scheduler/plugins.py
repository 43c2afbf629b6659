"""Scheduler (trigger) plugins: a child process decides which deferred launches of a tick go ahead.

Spec: triggers-and-scheduler §4. The tick defers every launch of an event with a ``plugin``
trigger; after the minute's other launches are stored, the deferred ones are grouped by plugin,
each plugin runs once (different plugins in parallel) with all its items on STDIN, and the last
line of its STDOUT says, index by index, which to launch and how (``data``, ``files``,
``delay``, ``invisible``).

Why it is shaped like this:

* A plugin is a foreign program: any failure (missing or disabled plugin, spawn error, timeout,
  non-zero exit, unparseable or incomplete answer) launches nothing for that plugin, logs an
  error and leaves an activity ``warning`` with the raw output; it never raises into the tick.
* Deciding is separate from storing: :meth:`TriggerPlugins.decide` only answers which jobs to
  launch; the decider (``deciding``) stores them with their slots in one transaction.
* Output shown anywhere (log, activity, test verb) has the plugin's secret values redacted: a
  plugin may echo its environment or STDIN.
"""

from __future__ import annotations

import copy
import math
import re
import secrets
import shutil
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from sundial.ids import generate_id
from sundial.plugins.process import PluginRun, ProcessResult, prepare_run, run_plugin
from sundial.scheduler.planner import Due
from sundial.scheduler.timing import date_parts
from sundial.scheduler.triggers import is_enabled
from sundial.vault.runtime import redact

DEFAULT_TIMEOUT = 30.0
RAW_KEEP = 4000  # characters of a bad answer kept in the log and the activity entry
Lookup = Callable[[str], Mapping[str, Any] | None]
SlotKey = tuple[str, int, int]
SecretSource = Callable[[str], Awaitable[dict[str, str]]]


class AnswerError(ValueError):
    """A plugin answer that cannot be used; the message says what was wrong."""


@dataclass(slots=True)
class Deferred:
    """A launch waiting for its plugin: its slot, its minute and its already built job.

    Plain data (no planner objects), because it is stored in ``schedule_pending`` and read
    back after a restart to ask the plugin again."""

    key: SlotKey  # (event id, nominal second, trigger number)
    minute: int
    job: dict[str, Any]
    plugin_id: str
    item: dict[str, Any]  # the STDIN item; its "job" is ``job``

    @property
    def event_id(self) -> str:
        return self.key[0]


@dataclass(slots=True)
class Verdict:
    """One item's answer: launch or not, and what the plugin adds to the job."""

    launch: bool
    data: Mapping[str, Any] | None = None
    files: list[Any] = field(default_factory=list)
    delay: float | None = None
    invisible: bool = False


@dataclass(slots=True)
class Decision:
    """The outcome of one tick's plugin phase."""

    approved: list[Deferred] = field(default_factory=list)
    refused: int = 0
    warnings: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (description, payload)


# --------------------------------------------------------------------------------------------
# Pure parts: the STDIN item, the answer, applying a verdict


def plugin_trigger(event: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The event's first enabled ``plugin`` trigger (the one the planner obeys)."""
    return next((t for t in event.get("triggers") or [] if is_enabled(t) and t.get("type") == "plugin"), None)


def trigger_item(due: Due, job: Mapping[str, Any], default_zone: str) -> dict[str, Any]:
    """One STDIN item: the plugin trigger's fields plus timezone, ``dargs``, ``now`` and the job."""
    own = plugin_trigger(due.event) or {}
    zone = str(due.trigger.get("timezone") or own.get("timezone") or default_zone)
    return make_item(own, zone, due.launch.minute, job)


def make_item(trigger: Mapping[str, Any], zone: str, minute: int, job: Mapping[str, Any]) -> dict[str, Any]:
    """The STDIN item for a plugin trigger at ``minute`` (also the test verb's single item)."""
    return {**copy.deepcopy(dict(trigger)), "timezone": zone, "dargs": date_parts(minute, zone), "now": minute,
            "job": job}


def stdin_line(items: Sequence[Mapping[str, Any]], secrets_: Mapping[str, str], base_url: str,
               active_jobs: Sequence[Mapping[str, Any]]) -> str:
    payload = {"xy": 1, "type": "trigger", "items": list(items), "secrets": dict(secrets_), "base_url": base_url,
               "active_jobs": list(active_jobs)}
    return orjson.dumps(payload, default=str).decode()


def _verdict(raw: Any) -> Verdict:
    if isinstance(raw, bool):
        return Verdict(raw)
    if not isinstance(raw, Mapping):
        return Verdict(False)
    data = raw.get("data") if isinstance(raw.get("data"), Mapping) else None
    files = raw.get("files")
    delay = raw.get("delay")
    return Verdict(launch=bool(raw.get("launch")), data=data,
                   files=files if isinstance(files, list) else ([files] if files else []),
                   delay=float(delay) if isinstance(delay, int | float) and not isinstance(delay, bool)
                   and math.isfinite(delay) and delay > 0 else None,
                   invisible=bool(raw.get("invisible")))


def parse_answer(result: ProcessResult, count: int) -> list[Verdict]:
    """The verdicts for ``count`` items from the last STDOUT line; AnswerError when unusable."""
    if result.error:
        raise AnswerError(result.error)
    line = result.last_line
    if not line:
        raise AnswerError("Plugin printed nothing on STDOUT")
    try:
        answer = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise AnswerError(f"JSON Parse Error: {exc}") from None
    if not isinstance(answer, dict) or not answer.get("xy"):
        raise AnswerError("Plugin answer lacks the xy property")
    items = answer.get("items")
    if not isinstance(items, list) or not items:
        raise AnswerError("Plugin answer lacks a non-empty items array")
    return [_verdict(items[index]) if index < len(items) else Verdict(False) for index in range(count)]


def _file_spec(spec: Any) -> tuple[str, str | None, bool]:
    if isinstance(spec, str) and spec:
        return spec, None, False
    if isinstance(spec, Mapping) and isinstance(spec.get("path"), str) and spec["path"]:
        filename = spec.get("filename")
        return spec["path"], str(filename) if filename else None, bool(spec.get("delete"))
    raise AnswerError(f"Malformed file entry: {str(spec)[:200]}")


def safe_name(name: str) -> str:
    """Storage-key form of a file name: ``[\\w\\-.]`` only, lowercase, ``.bin`` without extension."""
    base = re.sub(r"[^\w\-.]", "_", name.replace("\\", "/").rsplit("/", 1)[-1]).lower().strip(".") or "file"
    return base if "." in base else base + ".bin"


def store_files(specs: Sequence[Any], *, plugin_id: str, cwd: str, data_root: Path,
                run_as_uid: int | None) -> list[dict[str, Any]]:
    """Copy (or move, with ``delete``) each file into ``files/plugins/<plugin>/<rand>/<name>``.

    Relative paths are read from the plugin's cwd. A plugin that runs as another user may only
    hand over files that user owns, so the conductor never copies its own files on its behalf.
    Any problem raises AnswerError: the job is then not launched.
    """
    stored: list[dict[str, Any]] = []
    for spec in specs:
        path_text, filename, delete = _file_spec(spec)
        source = (Path(cwd) / path_text).resolve()
        if not source.is_file():
            raise AnswerError(f"File not found: {path_text}")
        if run_as_uid is not None and source.stat().st_uid != run_as_uid:
            raise AnswerError(f"File is not owned by the plugin's user: {path_text}")
        name = filename or source.name
        key = f"files/plugins/{plugin_id}/{secrets.token_urlsafe(24)}/{safe_name(name)}"
        target = data_root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            (shutil.move if delete else shutil.copyfile)(source, target)
        except OSError as exc:
            raise AnswerError(f"File cannot be stored: {path_text}: {exc.strerror}") from None
        stored.append({"id": generate_id("f"), "date": round(time.time(), 3), "filename": name, "path": key,
                       "size": target.stat().st_size, "plugin": plugin_id})
    return stored


def apply_verdict(job: dict[str, Any], verdict: Verdict, to_real: Callable[[float], float],
                  files: list[dict[str, Any]]) -> dict[str, Any]:
    """A launched item's job: invisible only if the plugin says so, delay, data, files."""
    job.pop("invisible", None)
    if verdict.invisible:
        job["invisible"] = True
    if verdict.delay:
        job["state"] = "start_delay"
        job["until"] = round(to_real(float(job.get("now") or 0) + verdict.delay), 3)
    if verdict.data or files:
        if not isinstance(job.get("input"), dict):
            job["input"] = {}
        if verdict.data:
            data = job["input"].get("data")
            job["input"]["data"] = {**(data if isinstance(data, dict) else {}), **copy.deepcopy(dict(verdict.data))}
        if files:
            job["input"]["files"] = [*(job["input"].get("files") or []), *files]
    return job


# --------------------------------------------------------------------------------------------
# Running the plugins of one tick


@dataclass(slots=True)
class PluginSettings:
    """What the conductor tells every plugin run (from the config, read per tick)."""

    base_url: str
    script_folder: Path
    data_root: Path
    default_zone: str
    credentials: Mapping[str, Any] | None = None


@dataclass(slots=True)
class Asked:
    """One plugin run: how it was started, what it did, and the secret values it was given
    (scrubbed from anything shown: logs, activity entries, the test verb)."""

    run: PluginRun | None
    result: ProcessResult
    hide: list[str] = field(default_factory=list)

    def shown(self, keep: int = RAW_KEEP) -> dict[str, Any]:
        """The run's output as logged and shown: the last ``keep`` characters, secrets redacted."""
        return {"stdout": redact(self.result.stdout[-keep:], self.hide),
                "stderr": redact(self.result.stderr[-keep:], self.hide),
                "child_cmd": redact(" ".join(self.result.argv), self.hide)}


class TriggerPlugins:
    """Runs deferred items through their plugins and answers which jobs launch."""

    def __init__(self, *, plugins: Lookup, secrets_for: SecretSource,
                 active_jobs: Callable[[], list[dict[str, Any]]],
                 log_error: Callable[[str], None], to_real: Callable[[float], float]) -> None:
        self.plugins = plugins
        self.secrets_for = secrets_for
        self.active_jobs = active_jobs
        self.log_error = log_error
        self.to_real = to_real

    async def decide(self, plugin_id: str, entries: Sequence[Deferred], settings: PluginSettings) -> Decision:
        """Run one plugin with ``entries`` (all for that plugin); never raises, whatever the plugin does."""
        decision = Decision()
        try:
            await self._one_plugin(plugin_id, list(entries), settings, decision)
        except Exception as exc:  # a bug of ours: still never the caller's loop
            self._warn(decision, plugin_id, f"Scheduler plugin {plugin_id} failed: {exc!r}", None)
            decision.approved.clear()
            decision.refused = len(entries)
        return decision

    async def ask(self, plugin: Mapping[str, Any], items: list[dict[str, Any]], settings: PluginSettings) -> Asked:
        """Run ``plugin`` once with ``items`` (also the test verb's path); never raises for the plugin."""
        plugin_secrets = await self.secrets_for(str(plugin.get("id")))
        hide = [str(value) for value in plugin_secrets.values() if str(value)]
        try:
            run = prepare_run(plugin, script_folder=settings.script_folder, secrets=plugin_secrets,
                              base_url=settings.base_url, default_timeout=DEFAULT_TIMEOUT,
                              default_credentials=settings.credentials)
        except (OSError, ValueError) as exc:
            return Asked(None, ProcessResult(argv=[], error=str(exc)), hide)
        line = stdin_line(items, plugin_secrets, settings.base_url,
                          [j for j in self.active_jobs() if j.get("state") != "queued"])
        return Asked(run, await run_plugin(run, line), hide)

    async def _one_plugin(self, plugin_id: str, entries: list[Deferred], settings: PluginSettings,
                          decision: Decision) -> None:
        plugin = self.plugins(plugin_id)
        if plugin is None:
            self._warn(decision, plugin_id, f"Scheduler plugin not found: {plugin_id}", None, activity=False)
            decision.refused += len(entries)
            return
        if not plugin.get("enabled", True):
            decision.refused += len(entries)  # disabled: skipped quietly, as in xyOps
            return
        asked = await self.ask(plugin, [entry.item for entry in entries], settings)
        try:
            verdicts = parse_answer(asked.result, len(entries))
        except AnswerError as exc:
            self._warn(decision, plugin_id, f"Scheduler plugin {plugin_id} failed: {redact(str(exc), asked.hide)}",
                       asked)
            decision.refused += len(entries)
            return
        run = asked.run
        run_as = run.uid if run is not None else None
        for entry, verdict in zip(entries, verdicts, strict=True):
            self._apply(decision, plugin, entry, verdict, run.cwd if run else "", settings, run_as)

    def _apply(self, decision: Decision, plugin: Mapping[str, Any], entry: Deferred, verdict: Verdict, cwd: str,
               settings: PluginSettings, run_as: int | None) -> None:
        if not verdict.launch:
            decision.refused += 1
            return
        try:
            files = store_files(verdict.files, plugin_id=str(plugin["id"]), cwd=cwd, data_root=settings.data_root,
                                run_as_uid=run_as) if verdict.files else []
        except AnswerError as exc:
            self.log_error(f"Event {entry.event_id}: scheduler plugin {plugin['id']} launch at "
                           f"{entry.minute} not started: {exc}")
            decision.refused += 1
            return
        apply_verdict(entry.job, verdict, self.to_real, files)
        decision.approved.append(entry)

    def _warn(self, decision: Decision, plugin_id: str, message: str, asked: Asked | None,
              activity: bool = True) -> None:
        """Error log line and activity warning; the output kept (partial after a timeout) is redacted."""
        raw = asked.shown() if asked is not None else {}
        self.log_error(message + (f" (stdout: {raw['stdout'][-500:]!r}, stderr: {raw['stderr'][-500:]!r})"
                                  if raw else ""))
        if activity:
            decision.warnings.append((message, {"plugin": plugin_id, **raw}))


def test_answer(asked: Asked) -> dict[str, Any]:
    """``test_scheduler_plugin``'s reply: the parsed last line as ``data`` with the output, or
    ``err`` with a description (and whatever output there was, partial after a timeout).
    Secret values are redacted everywhere, the parsed answer included."""
    shown = asked.shown(keep=RAW_KEEP * 4)
    problem = asked.result.error
    if not problem:
        line = redact(asked.result.last_line, asked.hide)
        try:
            return {"data": orjson.loads(line), **shown} if line else {"err": True,
                    "description": "Plugin printed nothing on STDOUT", **shown}
        except orjson.JSONDecodeError as exc:
            problem = f"JSON Parse Error: {exc}"
    return {"err": True, "description": redact(problem, asked.hide), **shown}
