"""Events: the list with filters, and the editor (plugin params, targets, triggers, limits, actions).

The list filters in memory (events live in a config list); the editor's loader prepares
everything its form shows, and `event_editor.js` sends the whole event to `create_event` /
`update_event`, so validation stays in one place: the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sundial.events.validation import ALGOS
from sundial.jobs.launch import allows_manual_runs
from sundial.services import Services
from sundial.web.access import event_visible, job_search_limit, online_servers, server_label
from sundial.web.framework import PageContext, PageSet, not_found
from sundial.web.param_controls import controls_for
from sundial.web.viewer import Viewer

pages = PageSet()
EVENTS_PER_PAGE = 100
RECENT_JOBS = 8
ALGO_LABELS = {
    "random": "Random", "round_robin": "Round robin", "prefer_first": "Prefer first (by hostname)",
    "prefer_last": "Prefer last (by hostname)", "prefer_first_natural": "Prefer first (natural sort)",
    "prefer_last_natural": "Prefer last (natural sort)", "least_cpu": "Least CPU load",
    "least_mem": "Least memory in use", "fewest_jobs": "Fewest running jobs",
}
ROW_PLUGIN_TYPES = ("action", "scheduler")  # plugins chosen inside action and trigger rows
TRIGGER_WORDS = {"schedule": "Schedule", "interval": "Interval", "single": "Once", "manual": "On demand",
                 "startup": "At start-up", "magic": "Magic link", "keyboard": "Keyboard", "plugin": "Plugin"}


@dataclass(frozen=True)
class EventFilters:
    text: str = ""
    category: str = ""
    plugin: str = ""
    target: str = ""
    enabled: str = ""   # "", "yes", "no"

    def matches(self, event: dict[str, Any]) -> bool:
        if self.category and event.get("category") != self.category:
            return False
        if self.plugin and event.get("plugin") != self.plugin:
            return False
        if self.target and self.target not in (event.get("targets") or []):
            return False
        if self.enabled and bool(event.get("enabled")) != (self.enabled == "yes"):
            return False
        return not self.text or self.text.lower() in _haystack(event)

    def as_query(self) -> dict[str, str]:
        pairs = {"q": self.text, "category": self.category, "plugin": self.plugin, "target": self.target,
                 "enabled": self.enabled}
        return {k: v for k, v in pairs.items() if v}


def _haystack(event: dict[str, Any]) -> str:
    return " ".join(str(event.get(k) or "") for k in ("title", "id", "notes")).lower()


def _titles(services: Services, name: str) -> dict[str, str]:
    return {str(o["id"]): str(o.get("title") or o["id"]) for o in services.list(name).all()}


def trigger_words(event: dict[str, Any]) -> list[str]:
    """Short names of the enabled launch triggers, for the list's "Runs" column."""
    kinds = [t.get("type") for t in event.get("triggers") or [] if isinstance(t, dict) and t.get("enabled")]
    return list(dict.fromkeys(TRIGGER_WORDS[k] for k in kinds if k in TRIGGER_WORDS))


@pages.page("/events", title="Events", template="events.html", nav="Scheduling", order=10)
async def events_list(ctx: PageContext) -> dict[str, Any]:
    services, viewer = ctx.services, ctx.user
    filters = EventFilters(**{k: ctx.query.get(q, "").strip()[:200] for k, q in
                              (("text", "q"), ("category", "category"), ("plugin", "plugin"),
                               ("target", "target"), ("enabled", "enabled"))})
    visible = [e for e in services.events.events.all() if event_visible(viewer.principal, e)]
    rows = sorted((e for e in visible if filters.matches(e)), key=lambda e: str(e.get("title", "")).lower())
    offset = ctx.int_query("offset", 0, high=max(len(rows) - 1, 0))
    page = rows[offset:offset + EVENTS_PER_PAGE]
    targets = sorted({t for e in visible for t in e.get("targets") or []})
    return {
        "rows": [{**e, "runs": trigger_words(e), "manual": allows_manual_runs(e)} for e in page],
        "filters": filters, "total": len(rows), "all_count": len(visible),
        "first": offset + 1 if page else 0, "last": offset + len(page),
        "newer": _page_link(filters, offset - EVENTS_PER_PAGE) if offset > 0 else "",
        "older": _page_link(filters, offset + EVENTS_PER_PAGE) if offset + EVENTS_PER_PAGE < len(rows) else "",
        "categories": _titles(services, "categories"), "plugins": _titles(services, "plugins"),
        "groups": _titles(services, "groups"),
        "event_plugins": [p for p in services.list("plugins").all() if p.get("type", "event") == "event"],
        "target_options": targets,
    }


def _page_link(filters: EventFilters, offset: int) -> str:
    params = filters.as_query()
    if offset > 0:
        params["offset"] = str(offset)
    return "/events" + (f"?{urlencode(params)}" if params else "")


# -- the editor -------------------------------------------------------------------------------

def new_event(ctx: PageContext) -> dict[str, Any]:
    """A blank event with sensible choices made: first category, the shell plugin, first group, manual runs."""
    services, viewer = ctx.services, ctx.user
    categories = [c["id"] for c in services.list("categories").all() if viewer.principal.can_category(c["id"])]
    plugins = [p["id"] for p in services.list("plugins").all() if p.get("type", "event") == "event"]
    groups = [g["id"] for g in services.list("groups").all() if viewer.principal.can_group(g["id"])]
    plugin = ctx.query.get("plugin") or ("shellplug" if "shellplug" in plugins else (plugins or [""])[0])
    return {"title": "", "enabled": True, "category": ctx.query.get("category") or (categories or [""])[0],
            "plugin": plugin, "targets": groups[:1], "algo": "random", "params": {}, "tags": [], "notes": "",
            "triggers": [{"type": "manual", "enabled": True}], "limits": [], "actions": []}


def server_options(services: Services, viewer: Viewer) -> list[tuple[str, str]]:
    """Online servers the viewer may target; offline server targets already on an event show in
    "Other targets", so saving never drops them."""
    return [(str(s["id"]), server_label(s)) for s in online_servers(services, viewer)]


def assigned_secrets(services: Services, event: dict[str, Any]) -> list[dict[str, Any]]:
    """Secrets this event's jobs receive (assigned to the event, its category or its plugin); metadata only."""
    if not event.get("id"):
        return []
    routes = (("events", event.get("id"), "this event"), ("categories", event.get("category"), "its category"),
              ("plugins", event.get("plugin"), "its plugin"))
    found = []
    for meta in services.vault.all_metadata():
        via = [label for key, value, label in routes if value and value in (meta.get(key) or [])]
        if via:
            found.append({"id": str(meta.get("id", "")), "title": str(meta.get("title") or meta.get("id", "")),
                          "via": ", ".join(via), "enabled": bool(meta.get("enabled", True))})
    return found


def _choices(services: Services, name: str, keep: Any = None) -> list[list[str]]:
    return [[str(o["id"]), str(o.get("title") or o["id"])] for o in services.list(name).all()
            if keep is None or keep(o)]


def editor_data(ctx: PageContext, event: dict[str, Any]) -> dict[str, Any]:
    """What `event_editor.js` needs: the rows to edit and the choices for their selects."""
    services = ctx.services
    scheduler = services.scheduler
    timezone = scheduler.default_zone() if scheduler is not None else str(services.config.get("tz") or "UTC")
    viewer = ctx.user
    return {
        "event_id": event.get("id"), "timezone": timezone,
        "triggers": event.get("triggers") or [], "limits": event.get("limits") or [],
        "actions": event.get("actions") or [],
        "lists": {
            "web_hooks": _choices(services, "web_hooks"), "channels": _choices(services, "channels"),
            "tags": _choices(services, "tags"),
            "events": [[str(e["id"]), str(e.get("title") or e["id"])] for e in services.events.events.all()
                       if event_visible(viewer.principal, e)],
            "action_plugins": _choices(services, "plugins", lambda p: p.get("type") == "action"),
            "scheduler_plugins": _choices(services, "plugins", lambda p: p.get("type") == "scheduler"),
        },
    }


def row_param_sets(services: Services, viewer: Viewer) -> list[dict[str, Any]]:
    """Controls of every action and scheduler plugin with their defaults, rendered once as
    `<template>`s that `rows.js` copies into plugin action and plugin trigger rows (and fills in)."""
    return [{"plugin": p, "controls": controls_for(p, {}, is_admin=viewer.is_admin, services=services)}
            for p in services.list("plugins").all() if p.get("type") in ROW_PLUGIN_TYPES]


def editor_context(ctx: PageContext, event: dict[str, Any], *, is_new: bool) -> dict[str, Any]:
    services, viewer = ctx.services, ctx.user
    params = event.get("params") or {}
    plugins = [p for p in services.list("plugins").all() if p.get("type", "event") == "event"]
    param_sets = [{"plugin": p, "controls": controls_for(p, params if p["id"] == event.get("plugin") else {},
                                                         is_admin=viewer.is_admin, services=services)}
                  for p in plugins]
    groups = [(g["id"], str(g.get("title") or g["id"])) for g in services.list("groups").all()
              if viewer.principal.can_group(g["id"])]
    servers = server_options(services, viewer)
    known = {i for i, _ in groups} | {i for i, _ in servers}
    return {
        "event": event, "is_new": is_new, "param_sets": param_sets, "groups": groups, "servers": servers,
        "other_targets": ", ".join(t for t in event.get("targets") or [] if t not in known),
        "categories": [(c["id"], str(c.get("title") or c["id"])) for c in services.list("categories").all()
                       if viewer.principal.can_category(c["id"])],
        "tags": [(t["id"], str(t.get("title") or t["id"])) for t in services.list("tags").all()],
        "algos": [(a, ALGO_LABELS.get(a, a)) for a in sorted(ALGOS, key=lambda a: a != "random")],
        "editor": editor_data(ctx, event), "secrets": assigned_secrets(services, event),
        "row_param_sets": row_param_sets(services, viewer),
        "can_save": viewer.can("create_events" if is_new else "edit_events"),
        "is_workflow": event.get("type") == "workflow",
    }


@pages.page("/events/new", title="New event", template="event_edit.html", privilege="create_events")
async def event_new(ctx: PageContext) -> dict[str, Any]:
    return editor_context(ctx, new_event(ctx), is_new=True)


@pages.page("/events/{id:str}", title="Event", template="event_edit.html")
async def event_edit(ctx: PageContext) -> dict[str, Any]:
    viewer, event_id = ctx.user, ctx.path_param("id")
    event = ctx.services.events.get(event_id)
    if event is None or not event_visible(viewer.principal, event):
        raise not_found(f"There is no event with the ID {event_id}.")
    jobs = ctx.services.jobs
    recent, _ = await jobs.store.search(f"event:{event_id}", offset=0, limit=RECENT_JOBS, sort_by="_id",
                                        sort_dir=-1, extra=job_search_limit(viewer.principal))
    return {**editor_context(ctx, event, is_new=False), "title": f"Event: {event.get('title') or event_id}",
            "recent_jobs": recent, "active_jobs": jobs.active_for_event(event_id),
            "manual": allows_manual_runs(event), "run": _run_button(viewer, event)}


def _run_button(viewer: Viewer, event: dict[str, Any]) -> dict[str, Any] | None:
    """Run now when manual runs are allowed; otherwise a test run, which the API permits regardless."""
    if not viewer.can("run_jobs"):
        return None
    if allows_manual_runs(event) and event.get("enabled"):
        return {"label": "Run now", "params": {"id": event["id"]}, "hint": ""}
    return {"label": "Test run", "params": {"id": event["id"], "test": True},
            "hint": "This event has no enabled manual trigger or is disabled, so a run from here is a test run."}
