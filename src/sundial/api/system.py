"""Activity search and global state verbs."""

from __future__ import annotations

import contextlib
import re
import time
from typing import Any

from pydantic import Field

from sundial.api.call import Call
from sundial.api.errors import ApiError
from sundial.api.params import RESERVED_WORDS, CsvList, Flag, Params, SearchLimit
from sundial.api.registry import ADMIN, USER, VerbRouter
from sundial.api.stats import cpu_percent, rss_bytes
from sundial.auth.apikeys import redacted
from sundial.storage.schema import CONFIG_LISTS
from sundial.storage.search import MAX_QUERY_LENGTH, QueryError

router = VerbRouter()


class SearchParams(Params):
    query: str = Field(default="*", max_length=MAX_QUERY_LENGTH)
    offset: int = Field(default=0, ge=0)
    limit: SearchLimit = Field(default=1, ge=1, le=10000)
    sort_by: str = "_id"
    sort_dir: int = -1


def search_cache_header(call: Call) -> None:
    ttl = call.params.get("ttl", call.services.config.get("ttl", 300))
    call.response_headers["Cache-Control"] = f"public, max-age={int(ttl) if str(ttl).isdigit() else 300}"


@router.verb("search_activity", SearchParams, auth=ADMIN)
async def search_activity(call: Call, p: SearchParams) -> dict[str, Any]:
    """Search the activity log (`action:user_login`, `keywords:admin`, `date:>=2026-01-01`, PxQL)."""
    try:
        rows, total = await call.services.activity.search(p.query, offset=p.offset, limit=p.limit,
                                                          sort_dir=p.sort_dir)
    except QueryError as exc:
        raise ApiError("api", str(exc)) from None
    search_cache_header(call)
    return {"code": 0, "rows": rows, "list": {"length": total}}


# Revision-history types and the activity action prefix each one shows (`<singular>_...`).
REVISION_TYPES = {"alerts": "alert", "categories": "category", "channels": "channel", "events": "event",
                  "groups": "group", "monitors": "monitor", "plugins": "plugin", "tags": "tag",
                  "web_hooks": "web_hook", "buckets": "bucket", "secrets": "secret", "tickets": "ticket",
                  "roles": "role"}
_ACTION_CLAUSE = re.compile(r"\baction\s*:", re.IGNORECASE)


class RevisionParams(SearchParams):
    type: str = Field(default="", max_length=64)
    query: str = Field(default="", max_length=MAX_QUERY_LENGTH)


@router.verb("search_revision_history", RevisionParams, auth=USER)
async def search_revision_history(call: Call, p: RevisionParams) -> dict[str, Any]:
    """Who changed one kind of object (`type`: events, categories, ...) and when; any user may look,
    so rows carry no client addresses or headers, and category/group-limited callers get none."""
    if _ACTION_CLAUSE.search(p.query):
        raise ApiError("search", "No.")  # the type picks the actions; xyOps words these two tersely
    if p.query.lstrip().startswith("("):
        raise ApiError("search", "Nope.")
    prefix = REVISION_TYPES.get(p.type)
    if prefix is None:
        raise ApiError("search", "Invalid search type.")
    search_cache_header(call)
    if call.user.limited and not call.user.is_admin:
        return {"code": 0, "rows": [], "list": {"length": 0}}
    try:
        rows, total = await call.services.activity.search(p.query, offset=p.offset, limit=p.limit,
                                                          sort_dir=p.sort_dir, action_prefix=prefix)
    except QueryError as exc:
        raise ApiError("api", str(exc)) from None
    for row in rows:
        for key in ("ip", "ips", "headers", "useragent"):
            row.pop(key, None)
    return {"code": 0, "rows": rows, "list": {"length": total}}


@router.verb("get_global_state", auth=USER)
async def get_global_state(call: Call, p: Params) -> dict[str, Any]:
    """Runtime state such as `scheduler.enabled`; admins also see the scheduler's per-event state
    as `events.<id>` (`cursor` of catch-up events, `nth` countdown)."""
    state = call.services.state.state
    scheduler = call.services.scheduler
    if call.user.is_admin and scheduler is not None:
        state = {**state, "events": await scheduler.event_states()}
    return {"code": 0, "state": state}


def _event_state_edits(call: Call, changes: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`events.<id>.cursor|nth` keys, grouped per event: they edit the scheduler's per-event state."""
    edits: dict[str, dict[str, Any]] = {}
    for key in [k for k in changes if k.split(".")[0] == "events"]:
        parts = key.split(".")
        if len(parts) != 3 or parts[2] not in ("cursor", "nth"):
            raise ApiError("api", f"Invalid parameter: {key} (event state keys are events.<id>.cursor and "
                                  "events.<id>.nth)")
        if call.services.events.get(parts[1]) is None:
            raise ApiError("api", f"Event not found: {parts[1]}")
        edits.setdefault(parts[1], {})[parts[2]] = changes.pop(key)
    return edits


@router.verb("update_global_state", auth=ADMIN)
async def update_global_state(call: Call, p: Params) -> dict[str, Any]:
    """Set state values by dot path, e.g. `{"scheduler.enabled": false}`; each key is audited."""
    changes = p.fields_set()
    if not changes:
        raise ApiError("api", "No state keys were given.")
    for key in changes:
        parts = key.split(".")
        if any(part in RESERVED_WORDS or not part for part in parts):
            raise ApiError("api", f"Invalid parameter: {key} (illegal key)")
    services = call.services
    audited = dict(changes)
    edits = _event_state_edits(call, changes)
    scheduler = services.scheduler
    if edits and scheduler is None:
        raise ApiError("scheduler", "The scheduler is not running on this conductor.")
    try:
        checked = {event_id: scheduler.check(edit) for event_id, edit in edits.items()} if scheduler else {}
    except ValueError as exc:
        raise ApiError("api", str(exc)) from None
    guard = scheduler.guard() if checked and scheduler else contextlib.nullcontext()
    async with guard, services.storage.transaction() as tx:  # between ticks, as update_event does
        if changes:
            await services.state.update(tx, changes)
        if scheduler is not None:
            for event_id, edit in checked.items():
                await scheduler.write(tx, event_id, edit)
        for key, value in audited.items():
            await services.activity.record(tx, "state_update", f"{key} = {value}", client=call.client,
                                           username=call.user.actor, keywords=[key], key=key, value=value)
    return {"code": 0}


class MultipleParams(Params):
    lists: CsvList | None = None
    jobs: Flag | str | None = None
    alerts: Flag | str | None = None
    state: Flag | str | None = None
    stats: Flag | str | None = None
    servers: Flag | str | None = None
    serverCache: Flag | str | None = None  # noqa: N815 (xyOps name)


def _wanted(value: Any) -> bool:
    return value not in (None, "", "0", 0, False, "false")


def _list_names(requested: list[str] | None) -> list[str]:
    if not requested:
        return []
    if requested == ["all"]:
        return list(CONFIG_LISTS)
    for name in requested:
        if name not in CONFIG_LISTS:
            raise ApiError("api", f"Unknown list: {name}")
    return list(dict.fromkeys(requested))


@router.verb("get_multiple", MultipleParams, auth=USER)
async def get_multiple(call: Call, p: MultipleParams) -> dict[str, Any]:
    """Several things in one round trip for the UI: whole config lists (`lists`: names, CSV or `all`)
    and, on request, live maps (`jobs`, `servers`, `serverCache`, `alerts`), `state` and `stats`."""
    user = call.user
    if user.limited and not user.is_admin:
        raise ApiError("access", "Category or group limited users may not use this API")
    services = call.services
    data: dict[str, Any] = {"code": 0, "epoch": time.time()}
    for name in _list_names(p.lists):
        rows = services.list(name).all()
        data[name] = [redacted(k) for k in rows] if name == "api_keys" and not user.is_admin else rows
    if _wanted(p.jobs):
        data["jobs"] = {job["id"]: job for job in services.jobs.active_jobs()}
    if _wanted(p.alerts):
        data["alerts"] = {}  # no alert engine yet: nothing is ever active
    if _wanted(p.state):
        data["state"] = services.state.state
    if _wanted(p.stats):
        data["stats"] = {"mem": rss_bytes(), "cpu": cpu_percent(), "currentMinute": {}, "lastMinute": {},
                         "currentDay": services.daily.today_stats()}
    fleet = services.fleet
    if _wanted(p.servers):
        data["servers"] = {s["id"]: _without_delete(s) for s in fleet.online_servers()} if fleet else {}
    if _wanted(p.serverCache):
        data["serverCache"] = {sid: _without_delete(s) for sid, s in fleet.offline.items()} if fleet else {}
    return data


def _without_delete(server: dict[str, Any]) -> dict[str, Any]:
    """Server records as `get_servers` shows them (no pending-delete marker)."""
    return {k: v for k, v in server.items() if k != "delete"}
