"""The action runner: what happens when a job starts or completes (events-and-jobs.md §10).

Registered in `JobManager.condition_hooks`. For each fired condition it selects the enabled
actions of that condition, drops duplicates (same type and target) and those that already
ran (they carry a `code`, e.g. carried over to a retry), runs the rest in parallel, and
records each result on its action (`date`, `elapsed_ms`, `code`, `description`, `details`).
Results are written to the newest copy of the job under a per-job lock, so start actions
that finish after the job itself cannot overwrite the final record.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from sundial.actions import channels
from sundial.actions.email import SUBJECTS, EmailError, custom_message, job_message, job_template, recipients
from sundial.actions.plugin import run_action_plugin
from sundial.actions.suspend import Suspender
from sundial.activity import ClientInfo
from sundial.events.validation import EventError
from sundial.jobs.build import LaunchError
from sundial.objects import ObjectError
from sundial.templates import expand

if TYPE_CHECKING:
    from sundial.actions.service import ActionService

RecordPatch = Callable[[dict[str, Any]], None]
# Types whose subsystem Sundial does not have yet: they fail at once, naming what is missing
# (docs/compatibility.md). Events that use them still save, as in xyOps.
NOT_AVAILABLE = {
    "snapshot": ("snapshot", "server snapshots (monitoring) are not available in this version of Sundial"),
    "ticket": ("ticket", "tickets are not available in this version of Sundial"),
    "store": ("bucket", "storage buckets are not available in this version of Sundial"),
    "fetch": ("bucket", "storage buckets are not available in this version of Sundial"),
}
FAILURE_CODES = {"email": "email", "web_hook": "webhook", "run_event": "event", "channel": "channel",
                 "disable": "event", "delete": "event", "tag": "tag", "label": "label", "plugin": "plugin",
                 "suspend": "suspend"}
ACTION_CLIENT = ClientInfo(useragent="Sundial Job Action")
FINAL_WAIT_SECONDS = 300.0
_TAGS = re.compile(r"<[^>]*>")


@dataclass
class Outcome:
    """One action's result, plus an optional change to the job record (tags, label, children ...)."""

    code: int | str
    description: str
    details: str = ""
    loc: str = ""
    patch: RecordPatch | None = None
    parts: list[RecordPatch] = field(default_factory=list)

    def patches(self) -> list[RecordPatch]:
        return [*([self.patch] if self.patch else []), *self.parts]


def dedupe_key(action: dict[str, Any]) -> str:
    """`type-target` as xyOps keys it; types without a target key on their own settings."""
    kind = str(action.get("type"))
    if kind == "email":
        users: list[Any] = action["users"] if isinstance(action.get("users"), list) else []
        return f"email-{action.get('email') or ''}{','.join(map(str, users))}"
    targets = {"web_hook": "web_hook", "run_event": "event_id", "channel": "channel_id", "plugin": "plugin_id",
               "store": "bucket_id", "fetch": "bucket_id"}
    if kind in targets:
        return f"{kind}-{action.get(targets[kind])}"
    if kind in ("disable", "snapshot", "delete"):
        return kind
    own = {k: v for k, v in action.items() if k not in ("condition", "enabled", "source", "date", "elapsed_ms")}
    return f"{kind}-{orjson.dumps(own, option=orjson.OPT_SORT_KEYS, default=str).decode()}"


def select_actions(job: dict[str, Any], conditions: list[str]) -> list[tuple[int, dict[str, Any]]]:
    """(index, action) pairs to run now, in list order, deduplicated within each condition."""
    if job.get("test") and job.get("test_actions") is False:
        return []
    only = job.get("test_conditions") if job.get("test") and isinstance(job.get("test_conditions"), list) else None
    actions = job.get("actions") or []
    chosen: list[tuple[int, dict[str, Any]]] = []
    for condition in conditions:
        if only is not None and condition not in only:
            continue
        seen: set[str] = set()
        for index, action in enumerate(actions):
            if not isinstance(action, dict) or not action.get("enabled") or action.get("condition") != condition:
                continue
            if "code" in action or action.get("active"):
                continue  # already ran or running (recovery, a suspension, or carried over to a retry)
            key = dedupe_key(action)
            if key not in seen:
                seen.add(key)
                chosen.append((index, action))
    return chosen


def _changes_event(job: dict[str, Any]) -> bool:
    """Only jobs with a disable/delete action need the final-record check (keeps the hot path free)."""
    return any(isinstance(a, dict) and a.get("type") in ("disable", "delete") and a.get("enabled")
               for a in job.get("actions") or [])


def _finished(job: dict[str, Any]) -> bool:
    return bool(job.get("complete") or job.get("state") == "complete")


class KeyedLocks:
    """One lock per job id, dropped when nobody holds or awaits it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class ActionRunner:
    def __init__(self, service: ActionService) -> None:
        self.svc = service
        self.services = service.services
        self.log = service.services.logger("Action")
        self._locks = KeyedLocks()
        self.handlers: dict[str, Callable[[dict[str, Any], dict[str, Any]], Awaitable[Outcome]]] = {
            "email": self.email, "web_hook": self.web_hook, "run_event": self.run_event,
            "channel": self.channel, "disable": self.disable, "delete": self.delete, "tag": self.tag,
            "label": self.label, "plugin": self.plugin, "suspend": self.suspend,
        }
        self.suspender = Suspender(self)

    # -- entry point ------------------------------------------------------------------------
    async def on_condition(self, job: dict[str, Any], conditions: list[str]) -> None:
        """The JobManager hook: never raises (a failed action must not disturb the job manager)."""
        try:
            await self._run_conditions(job, conditions)
        except Exception as exc:
            self.log.error("action", f"Actions of job {job.get('id')} failed: {exc!r}")

    async def _run_conditions(self, job: dict[str, Any], conditions: list[str]) -> None:
        job_id = str(job.get("id"))
        selected = select_actions(job, conditions)
        if selected:
            full = self._full_job(job)
            ran = await asyncio.gather(*(self.run_action(full, action) for _, action in selected))
            results = {index: fields for (index, _), (fields, _) in zip(selected, ran, strict=True)}
            patches = [p for _, outcome in ran for p in outcome.patches()]
            await self.record(job_id, results, patches)
        if _changes_event(job):
            async with self._locks.hold(job_id):
                await self._apply_pending_event_changes(job_id)

    def _full_job(self, job: dict[str, Any]) -> dict[str, Any]:
        """Job ∪ details: the start hook gets the light job only."""
        live = self.services.jobs.get_active(str(job.get("id")))
        return copy.deepcopy(live) if live is not None and not job.get("final") else job

    async def run_action(self, job: dict[str, Any], action: dict[str, Any]) -> tuple[dict[str, Any], Outcome]:
        """Run one action; returns the fields to store on it and the outcome."""
        kind = str(action.get("type"))
        started = time.time()
        clock = time.perf_counter()
        try:
            outcome = await self.dispatch(job, action)
        except Exception as exc:
            self.log.error("action", f"Action {kind} of job {job.get('id')} crashed: {exc!r}")
            outcome = Outcome(FAILURE_CODES.get(kind, kind), f"Error: {exc}")
        elapsed_ms = round((time.perf_counter() - clock) * 1000, 3)
        fields: dict[str, Any] = {"date": round(started, 3), "elapsed_ms": elapsed_ms, "code": outcome.code,
                                  "description": outcome.description, "details": outcome.details}
        if outcome.loc:
            fields["loc"] = outcome.loc
        self.log.debug(6 if outcome.code == 0 else 3, f"Action {kind} ({action.get('condition')}) of job "
                                                      f"{job.get('id')}: {outcome.description}")
        return fields, outcome

    async def dispatch(self, job: dict[str, Any], action: dict[str, Any]) -> Outcome:
        kind = str(action.get("type"))
        handler = self.handlers.get(kind)
        if handler is not None:
            return await handler(job, action)
        if kind in NOT_AVAILABLE:
            code, why = NOT_AVAILABLE[kind]
            return Outcome(code, f"Error: {kind} action failed: {why}")
        return Outcome("action", f"Unknown action type: {kind}")

    # -- recording --------------------------------------------------------------------------
    async def record(self, job_id: str, results: dict[int, dict[str, Any]],
                     patches: list[RecordPatch] | None = None) -> None:
        """Store action results (by index) and record patches on the newest copy of the job."""
        def apply(record: dict[str, Any]) -> None:
            actions = record.get("actions") or []
            for index, fields in results.items():
                if index < len(actions) and isinstance(actions[index], dict):
                    actions[index].pop("active", None)
                    actions[index].update({k: v for k, v in fields.items() if k != "active" or v})
            for patch in patches or []:
                patch(record)

        await self._update_job(job_id, apply)

    async def _update_job(self, job_id: str, apply: RecordPatch) -> None:
        """Change the newest copy of a job: the live one while it runs, else the stored final record."""
        jobs = self.services.jobs
        async with self._locks.hold(job_id):
            live = jobs.active.get(job_id)
            if live is not None and (live.get("suspended") or not _finished(live)):
                apply(live)
                record = jobs.get_active(job_id)
                if record is not None:
                    await jobs.store.save(record)
                return
            record = await jobs.wait(job_id, FINAL_WAIT_SECONDS) if job_id in jobs.active \
                else await jobs.store.get(job_id)
            if record is not None:
                record = copy.deepcopy(record)
                apply(record)
                await jobs.store.save(record)

    # -- hook data ----------------------------------------------------------------------------
    def hook_data(self, job: dict[str, Any], action: dict[str, Any]) -> dict[str, Any]:
        return self.svc.hook_data(job, action)

    # -- types ----------------------------------------------------------------------------------
    async def email(self, job: dict[str, Any], action: dict[str, Any]) -> Outcome:
        users = [u for u in action.get("users") or [] if isinstance(u, str)] \
            if isinstance(action.get("users"), list) else []
        emails = [str((self.services.users.get(u) or {}).get("email") or "") for u in users]
        to = recipients(str(action.get("email") or ""), emails)
        if not to:
            return Outcome(0, "No recipients for email (skipping)")
        data = self.hook_data(job, action)
        product = self.svc.site.product
        body = action.get("body")
        if isinstance(body, str) and body.strip():
            message = custom_message(body, data, to, product)
        else:
            template = str(action.get("template") or "")
            template = template if template in SUBJECTS else job_template(str(action.get("condition")), job)
            message = job_message(data, template, to, product)
        try:
            await self.svc.send_email(message)
        except EmailError as exc:
            return Outcome("email", f"Error: Failed to send email: {exc}")
        return Outcome(0, f"Email sent successfully to: {', '.join(to)}",
                       details=f"- **Subject:** {message.subject}\n- **Recipients:** {', '.join(to)}")

    async def web_hook(self, job: dict[str, Any], action: dict[str, Any]) -> Outcome:
        data = self.hook_data(job, action)
        text = str(action.get("text") or "").strip()
        if text:
            data["text"] = f"{data['text']} {expand(text, data, 'n/a')}"
        result = await self.svc.web_hooks.fire(str(action.get("web_hook") or ""), data)
        return Outcome(result.code, result.description, result.details if result.code == 0 else "")

    async def run_event(self, job: dict[str, Any], action: dict[str, Any]) -> Outcome:
        services = self.services
        event_id = str(action.get("event_id") or "")
        event = services.events.get(event_id)
        if event is None:
            return Outcome("event", f"Event not found: {event_id}")
        field_ids = {str(f.get("id")) for f in event.get("fields") or [] if isinstance(f, dict)}
        params: dict[str, Any] = action["params"] if isinstance(action.get("params"), dict) else {}
        overrides: dict[str, Any] = {
            "params": {k: v for k, v in params.items() if k in field_ids},
            "input": {"data": copy.deepcopy(job.get("data") or {}), "files": copy.deepcopy(job.get("files") or [])},
            "parent": {"job": job.get("id"), "event": job.get("event"), "code": job.get("code", 0),
                       "description": job.get("description", "")},
        }
        if job.get("tickets"):
            overrides["tickets"] = list(job["tickets"])
        try:
            child = services.launcher.build(event, overrides, source="action", manual=True,
                                            username=str(job.get("username") or ""))
            delay = float(action.get("start_delay") or 0)
            if delay > 0:
                child.update(state="start_delay", until=round(time.time() + delay, 3))
            await services.jobs.accept(child)
        except LaunchError as exc:
            return Outcome(exc.code, f"Error: {exc.description}")
        child_id = child["id"]

        def link(record: dict[str, Any]) -> None:
            record.setdefault("jobs", []).append({"id": child_id, "reason": "action"})

        return Outcome(0, f"Launched job {child_id} for event: {event.get('title', event_id)}",
                       loc=f"#Job?id={child_id}", patch=link)

    async def channel(self, job: dict[str, Any], action: dict[str, Any]) -> Outcome:
        return await channels.notify(self, job, action)

    async def disable(self, job: dict[str, Any], action: dict[str, Any]) -> Outcome:
        def mark(record: dict[str, Any]) -> None:
            record["update_event"] = {**(record.get("update_event") or {}), "enabled": False}

        if not job.get("final"):
            return Outcome(0, f"Event will be disabled when the job completes: {job.get('event')}", patch=mark)
        return await self._disable_event(str(job.get("event")), job, mark)

    async def _disable_event(self, event_id: str, job: dict[str, Any], mark: RecordPatch | None = None) -> Outcome:
        event = self.services.events.get(event_id)
        if event is None:
            return Outcome("event", f"Error: Event not found: {event_id}")
        if event.get("enabled"):
            try:
                await self.services.events.update(event_id, {"enabled": False}, is_admin=True,
                                                  actor=self._actor(job), client=ACTION_CLIENT)
            except (EventError, ObjectError) as exc:
                return Outcome("event", f"Error: Failed to disable event: {exc}")
        return Outcome(0, f"Event disabled: {event.get('title', event_id)}", patch=mark)

    async def delete(self, job: dict[str, Any], action: dict[str, Any]) -> Outcome:
        def mark(record: dict[str, Any]) -> None:
            record["delete_event"] = True

        if not job.get("final"):
            return Outcome(0, f"Event will be deleted when the job completes: {job.get('event')}", patch=mark)
        return await self._delete_event(str(job.get("event")), job, mark)

    async def _delete_event(self, event_id: str, job: dict[str, Any], mark: RecordPatch | None = None) -> Outcome:
        event = self.services.events.get(event_id)
        if event is None:
            return Outcome(0, f"Event already deleted: {event_id}", patch=mark)
        try:
            await self.services.events.delete(event_id, actor=self._actor(job), client=ACTION_CLIENT)
        except (EventError, ObjectError) as exc:
            return Outcome("event", f"Error: {exc}")
        return Outcome(0, f"Event deleted: {event.get('title', event_id)}", patch=mark)

    @staticmethod
    def _actor(job: dict[str, Any]) -> str:
        return str(job.get("username") or job.get("api_key") or "system")

    async def tag(self, job: dict[str, Any], action: dict[str, Any]) -> Outcome:
        tags = [t for t in action.get("tags") or [] if isinstance(t, str) and t]
        if not tags:
            return Outcome("tag", "Error: No tags to add")

        def add(record: dict[str, Any]) -> None:
            record["tags"] = list(dict.fromkeys([*(record.get("tags") or []), *tags]))

        return Outcome(0, f"Added tags: {', '.join(tags)}", patch=add)

    async def plugin(self, job: dict[str, Any], action: dict[str, Any]) -> Outcome:
        """Run an action plugin on the conductor; its last output line may set the result."""
        plugin_id = str(action.get("plugin_id") or "")
        plugin = self.services.lists["plugins"].get(plugin_id)
        if plugin is None:
            return Outcome("plugin", f"Error: Action Plugin not found: {plugin_id}")
        if plugin.get("type") != "action":
            return Outcome("plugin", f"Error: Plugin is not an Action Plugin: {plugin_id}")
        if not plugin.get("enabled", True):
            return Outcome("plugin", f"Error: Action Plugin is disabled: {plugin_id}")
        vault = self.services.vault
        secrets = await vault.secrets_for("plugins", plugin_id) if vault is not None else {}
        code, description, details = await run_action_plugin(plugin, self.hook_data(job, action), action,
                                                             secrets=secrets, config=self.services.config)
        return Outcome(code, description, details)

    async def suspend(self, job: dict[str, Any], action: dict[str, Any]) -> Outcome:
        """Reached only when no gate held the job: suspension happens at a job's start or finish."""
        return Outcome("suspend", "Error: A suspend action can only hold a job at its start or completion "
                                  f"(not on condition '{action.get('condition')}')")

    async def label(self, job: dict[str, Any], action: dict[str, Any]) -> Outcome:
        text = _TAGS.sub("", expand(str(action.get("label") or ""), self.hook_data(job, action), "")).strip()

        def put(record: dict[str, Any]) -> None:
            record["label"] = text

        return Outcome(0, f"Job label set: {text}", patch=put)

    # -- deferred event changes ------------------------------------------------------------------
    async def _apply_pending_event_changes(self, job_id: str) -> None:
        """Disable/delete actions fired while the job ran take effect once it is final.

        Called after every run: start actions may finish after the job did, and then their
        own run is the one that finds the final record.
        """
        record = await self.services.jobs.store.get(job_id)
        if not record or not record.get("final"):
            return
        ran = {a.get("type") for a in record.get("actions") or []
               if isinstance(a, dict) and a.get("code") == 0 and a.get("type") in ("disable", "delete")}
        event_id = str(record.get("event") or "")
        if not event_id or event_id not in self.services.lists["events"]:
            return
        if "delete" in ran and record.get("delete_event"):
            outcome = await self._delete_event(event_id, record)
        elif "disable" in ran and (record.get("update_event") or {}).get("enabled") is False:
            outcome = await self._disable_event(event_id, record)
        else:
            return
        if outcome.code != 0:
            self.log.error("action", f"Job {job_id}: {outcome.description}")
