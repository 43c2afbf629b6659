"""Scheduler verbs: the "when will this run?" preview, the scheduler's status, and running a
scheduler plugin by hand (`test_scheduler_plugin`).

Pausing and resuming are `update_global_state {"scheduler.enabled": false|true}` (system.py),
as in xyOps; key rotation uses the same switch.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from sundial.api.call import Call
from sundial.api.errors import ApiError
from sundial.api.events import check_access
from sundial.api.params import ObjectId, Params
from sundial.api.registry import ADMIN, USER, VerbRouter
from sundial.scheduler.service import SchedulerService
from sundial.scheduler.timing import as_zone
from sundial.scheduler.triggers import TriggerError, ValidationContext, normalise_triggers, validate_triggers

router = VerbRouter()
MAX_PREVIEW = 1000


class TestPluginParams(Params):
    id: ObjectId
    params: dict[str, Any] = Field(default_factory=dict)
    timezone: str | None = Field(default=None, max_length=64)
    epoch: float | None = Field(default=None, ge=0, le=253402300799)


class ScheduleParams(Params):
    id: ObjectId | None = None
    triggers: list[Any] | None = None
    count: int = Field(default=10, ge=1, le=MAX_PREVIEW)
    after: float | None = Field(default=None, ge=0)


def _service(call: Call) -> SchedulerService:
    service = call.services.scheduler
    if service is None:
        raise ApiError("scheduler", "The scheduler is not running on this conductor.")
    return service


def _subject(call: Call, p: ScheduleParams) -> dict[str, Any]:
    """The stored event, or (for an editor preview) its triggers replaced by unsaved ones."""
    event: dict[str, Any] = {"id": p.id or "preview", "enabled": True}
    if p.id is not None:
        stored = call.services.events.get(p.id)
        if stored is None:
            raise ApiError("notfound", f"Failed to locate event: {p.id}")
        check_access(call, stored)
        event = stored
    if p.triggers is not None:
        plugins = call.services.lists["plugins"].all()
        context = ValidationContext(scheduler_plugins=[str(x["id"]) for x in plugins if x.get("type") == "scheduler"])
        try:
            validate_triggers(p.triggers, context)  # the editor's preview of a plugin trigger must not be refused
        except TriggerError as exc:
            raise ApiError(exc.code, exc.description) from None
        event = {**event, "triggers": normalise_triggers(p.triggers, str(event["id"]))}
    elif p.id is None:
        raise ApiError("api", "Missing parameter: id (or triggers)")
    return event


@router.verb("get_event_schedule", ScheduleParams, auth=USER)
async def get_event_schedule(call: Call, p: ScheduleParams) -> dict[str, Any]:
    """The next `count` scheduled launches of an event (or of unsaved `triggers`), oldest first.

    Each row: `epoch` (scheduled minute), `now` (nominal time incl. precision second),
    `start` (after any delay), `type`, `trigger` (index), `trigger_id`, `plugin`, `local`
    (ISO time in the trigger's zone). Also `timezone`, `catchup`, the stored `cursor`/`nth`,
    `runs` (event, category and plugin enabled) and `scheduler_enabled`.
    """
    preview = _service(call).upcoming(_subject(call, p), p.count, p.after)
    return {"code": 0, **preview}


@router.verb("get_scheduler_status", auth=ADMIN)
async def get_scheduler_status(call: Call, p: Params) -> dict[str, Any]:
    """Cursor, clock, per-event catch-up state and timings of the last ticks."""
    return {"code": 0, **_service(call).status()}


@router.verb("test_scheduler_plugin", TestPluginParams, privilege="edit_plugins")
async def test_scheduler_plugin(call: Call, p: TestPluginParams) -> dict[str, Any]:
    """Run a scheduler plugin once with one item (`params`, `timezone`, minute of `epoch`) and
    return its answer without launching anything: `{data, stdout, stderr, child_cmd}`, or
    `{err: true, description, …}` when the plugin fails (code 0 either way, as in xyOps).
    The plugin's secret values are redacted from everything returned."""
    plugin = call.services.list("plugins").get(p.id)
    if plugin is None or plugin.get("type") != "scheduler":
        raise ApiError("api", f"Scheduler Plugin not found: {p.id}")
    if p.timezone:
        try:
            as_zone(p.timezone)
        except Exception:
            raise ApiError("api", f"Unknown timezone: {p.timezone}") from None
    answer = await _service(call).test_plugin(plugin, p.params, p.timezone, p.epoch)
    return {"code": 0, **answer}
