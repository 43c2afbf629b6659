"""Event verbs. Category and target limits of the caller apply to every one of them."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from sundial.api.call import Call
from sundial.api.errors import ApiError
from sundial.api.listing import Rendered, list_reply
from sundial.api.params import Flag, Icon, IdParams, Notes, ObjectId, Params, SearchLimit, StrList, Title
from sundial.api.registry import USER, VerbRouter
from sundial.events.validation import EventError

router = VerbRouter()
FILTER_IGNORED = ("session_id", "api_key", "csrf_token", "cachebust", "pretty", "ttl")


class EventFields(Params):
    icon: Icon | None = None
    notes: Notes | None = None
    plugin: str | None = Field(default=None, max_length=64)
    targets: StrList | None = None
    algo: str | None = Field(default=None, max_length=128)
    expression: str | None = Field(default=None, max_length=4096)
    params: dict[str, Any] | None = None
    fields: list[Any] | None = None
    tags: StrList | None = None
    triggers: list[Any] | None = None
    limits: list[Any] | None = None
    actions: list[Any] | None = None
    type: str | None = Field(default=None, max_length=32)
    workflow: dict[str, Any] | None = None


class CreateEventParams(EventFields):
    id: ObjectId | None = None
    title: Title
    enabled: Flag
    category: str = Field(min_length=1, max_length=64)


class UpdateEventParams(EventFields):
    id: ObjectId
    title: Title | None = None
    enabled: Flag | None = None
    category: str | None = Field(default=None, min_length=1, max_length=64)


class DeleteEventParams(IdParams):
    delete_jobs: Flag | None = None


def _event_error(exc: EventError) -> ApiError:
    return ApiError(exc.code, exc.description)


def visible(call: Call, event: dict[str, Any]) -> bool:
    """Category limit, and group limit unless the event is a workflow."""
    user = call.user
    if not user.can_category(event.get("category")):
        return False
    return event.get("type") == "workflow" or user.can_targets(event.get("targets") or [])


def check_access(call: Call, event: dict[str, Any]) -> None:
    call.require_category(event.get("category"))
    if event.get("type") != "workflow":
        call.require_targets(list(event.get("targets") or []))


def existing_event(call: Call, event_id: str) -> dict[str, Any]:
    """The event a write names, after the caller's category and target checks."""
    current = call.services.events.get(event_id)
    if current is None:
        raise ApiError("event", f"Event not found: {event_id}")
    check_access(call, current)
    return current


@router.verb("get_events", auth=USER)
async def get_events(call: Call, p: Params) -> dict[str, Any] | Rendered:
    """Events visible to the caller; any top-level field given is an exact-match filter.

    Unfiltered, for a caller who sees every event (most callers), the reply is the list's
    cached body (`listing`): rendering 10,000 events was most of this verb's time."""
    filters = {k: v for k, v in p.fields_set().items() if k not in FILTER_IGNORED}
    restricted = call.user.limited and not call.user.is_admin
    if not filters and not restricted:
        return list_reply(call.services.events.events)
    rows = call.services.events.events.all()
    if restricted:
        rows = [e for e in rows if visible(call, e)]
    if filters:
        rows = [e for e in rows if all(_matches(e.get(k), v) for k, v in filters.items())]
    return {"code": 0, "rows": rows, "list": {"length": len(rows)}}


def _matches(actual: Any, wanted: Any) -> bool:
    if actual == wanted:
        return True
    return isinstance(wanted, str) and not isinstance(actual, dict | list) and str(actual).lower() == wanted.lower()


@router.verb("get_event", IdParams, auth=USER)
async def get_event(call: Call, p: IdParams) -> dict[str, Any]:
    """One event with its active jobs and queued count."""
    event = call.services.events.get(p.id)
    if event is None:
        raise ApiError("notfound", f"Failed to locate event: {p.id}")
    check_access(call, event)
    jobs = call.services.jobs.active_for_event(p.id)
    return {"code": 0, "event": event, "jobs": [j for j in jobs if j.get("state") != "queued"],
            "queued": sum(1 for j in jobs if j.get("state") == "queued")}


@router.verb("create_event", CreateEventParams, privilege="create_events")
async def create_event(call: Call, p: CreateEventParams) -> dict[str, Any]:
    """Create an event; plugin, category, tags, triggers, limits and actions are all checked."""
    fields = p.fields_set()
    check_access(call, fields)
    try:
        event = await call.services.events.create(fields, is_admin=call.user.is_admin,
                                                  username=call.user.username, actor=call.user.actor,
                                                  client=call.client)
    except EventError as exc:
        raise _event_error(exc) from None
    return {"code": 0, "event": event}


@router.verb("update_event", UpdateEventParams, privilege="edit_events")
async def update_event(call: Call, p: UpdateEventParams) -> dict[str, Any]:
    """Shallow-update an event; the merged record is validated as a whole."""
    current = existing_event(call, p.id)
    fields = p.fields_set()
    check_access(call, {**current, **fields})
    try:
        event = await call.services.events.update(p.id, fields, is_admin=call.user.is_admin,
                                                  actor=call.user.actor, client=call.client)
    except EventError as exc:
        raise _event_error(exc) from None
    return {"code": 0, "event": event}


@router.verb("delete_event", DeleteEventParams, privilege="delete_events")
async def delete_event(call: Call, p: DeleteEventParams) -> dict[str, Any]:
    """Delete an event (refused while it has active jobs)."""
    existing_event(call, p.id)
    try:
        await call.services.events.delete(p.id, actor=call.user.actor, client=call.client)
    except EventError as exc:
        raise _event_error(exc) from None
    return {"code": 0}


class HistoryParams(IdParams):
    offset: int = Field(default=0, ge=0)
    limit: SearchLimit = Field(default=1, ge=1, le=1000)


@router.verb("get_event_history", HistoryParams, auth=USER)
async def get_event_history(call: Call, p: HistoryParams) -> dict[str, Any]:
    """Activity rows (changes) of one event, newest first; an unknown (or deleted) event is code `event`,
    as in xyOps, so a mistyped id is not mistaken for an event nobody has changed."""
    event = call.services.events.get(p.id)
    if event is None:
        raise ApiError("event", f"Event not found: {p.id}")
    check_access(call, event)
    rows, total = await call.services.activity.search(f"keywords:{p.id}", offset=p.offset, limit=p.limit)
    for row in rows:
        for key in ("ip", "ips", "headers"):
            row.pop(key, None)
    return {"code": 0, "rows": rows, "list": {"length": total}}
