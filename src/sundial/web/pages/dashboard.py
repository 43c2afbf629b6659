"""The dashboard: what is happening now (active jobs, servers), next (upcoming runs) and just happened
(recent results, today's counts).

Every panel reads memory or one small indexed query, so the page stays fast with a long job
history; `dashboard.js` refreshes the active-jobs panel while the page is open, and today's
counts (`dash_stats`) when jobs start or finish.
"""

from __future__ import annotations

import time
from typing import Any

from sundial.services import Services
from sundial.web.access import event_visible, job_search_limit, online_servers
from sundial.web.framework import PageContext, PageSet
from sundial.web.pages.activity import actor_names
from sundial.web.pages.jobs import event_titles, visible_active
from sundial.web.viewer import Viewer

pages = PageSet()
RECENT_ACTIVITY = 8
RECENT_RESULTS = 8
ACTIVE_SHOWN = 10
UPCOMING_SHOWN = 8
UPCOMING_PER_EVENT = 3
LAUNCHERS = frozenset({"schedule", "interval", "single"})
UPCOMING_CACHE_SECONDS = 15.0
_upcoming_cache: dict[str, tuple[float, list[dict[str, Any]]]] = {}
#: Today's job counters (`dash_stats` day, `job_<condition>`) shown on the dashboard: stat, label, result filter.
TODAY_COUNTS = (("job_start", "Started", ""), ("job_success", "Succeeded", "success"),
                ("job_error", "Failed", "error"), ("job_warning", "Warnings", "warning"),
                ("job_critical", "Critical", "critical"), ("job_abort", "Aborted", "abort"))


def today_counts(services: Services) -> dict[str, Any]:
    """Today's counts as `dash_stats` reports them (the same in-memory counters).

    Its `timeStart` is when this process began counting (or an admin reset them), not when the
    day's stored counts began, so the page does not show it as "since"."""
    day = services.daily.today_stats()
    return {"counts": {name: int(day.get(name) or 0) for name, _, _ in TODAY_COUNTS}}


def _scheduled(event: dict[str, Any]) -> bool:
    return bool(event.get("enabled")) and any(
        isinstance(t, dict) and t.get("enabled") and t.get("type") in LAUNCHERS for t in event.get("triggers") or [])


def _compute_upcoming(services: Services, viewer: Viewer) -> list[dict[str, Any]]:
    scheduler = services.scheduler
    if scheduler is None:
        return []
    runs: list[dict[str, Any]] = []
    for event in services.events.events.all():
        if not _scheduled(event) or not event_visible(viewer.principal, event):
            continue
        preview = scheduler.upcoming(event, UPCOMING_PER_EVENT)
        if not preview.get("runs"):
            continue
        runs += [{"event": event["id"], "title": event.get("title") or event["id"], "epoch": row["now"],
                  "type": row["type"]} for row in preview.get("rows") or []]
    runs.sort(key=lambda r: r["epoch"])
    return runs[:UPCOMING_SHOWN]


def upcoming_runs(services: Services, viewer: Viewer) -> list[dict[str, Any]]:
    """The next scheduled runs across the viewer's events, from the scheduler's own planner.

    Planning every event on every page view would grow with the number of events, so the
    answer is kept briefly per viewer and version of the event list (any event change recomputes it).
    """
    signature = hash(tuple((e["id"], e.get("revision")) for e in services.events.events.all()))
    key = f"{viewer.username}:{signature}"
    now = time.monotonic()
    cached = _upcoming_cache.get(key)
    if cached and now - cached[0] < UPCOMING_CACHE_SECONDS:
        return [r for r in cached[1] if r["epoch"] >= time.time()]
    runs = _compute_upcoming(services, viewer)
    if len(_upcoming_cache) > 256:
        _upcoming_cache.clear()
    _upcoming_cache[key] = (now, runs)
    return runs


@pages.page("/", title="Dashboard", template="dashboard.html", nav="Overview", order=0)
async def dashboard(ctx: PageContext) -> dict[str, Any]:
    services, viewer = ctx.services, ctx.user
    recent: list[dict[str, Any]] = []
    if ctx.can("admin"):
        recent, _ = await services.activity.search("*", limit=RECENT_ACTIVITY)
    results, _ = await services.jobs.store.search("*", offset=0, limit=RECENT_RESULTS, sort_by="_id", sort_dir=-1,
                                                  extra=job_search_limit(viewer.principal))
    active, active_total = visible_active(ctx, ACTIVE_SHOWN)
    counts = {name: len(services.list(name)) for name in ("categories", "tags", "groups", "roles")}
    return {
        "scheduler_enabled": services.state.scheduler_enabled,
        "scheduler_running": services.scheduler is not None,
        "counts": counts, "event_count": sum(1 for e in services.events.events.all()
                                             if event_visible(viewer.principal, e)),
        "user_count": len(services.users.roster()),
        "recent": recent, "results": results, "active": active, "active_total": active_total,
        "upcoming": upcoming_runs(services, viewer), "titles": event_titles(ctx),
        "servers": online_servers(services, viewer), "fleet_running": services.fleet is not None,
        "group_titles": {g["id"]: str(g.get("title") or g["id"]) for g in services.list("groups").all()},
        "today": today_counts(services), "today_labels": TODAY_COUNTS,
        "actors": actor_names(services) if recent else {},
    }
