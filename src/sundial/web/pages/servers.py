"""Servers: the fleet list (online from memory, offline paged in SQL) and one server's page.

The server page renders facts, groups and the last minute of per-second samples it has in
memory; `server.js` then follows `server:<id>` on the live channel (`/api/live`) for the live
charts and polls `get_latest_monitor_data` once a minute for the minute graphs. Changes go through
`update_server` and `delete_server`; install tokens through `get_satellite_token` (both are
writes, so the browser calls them, never a loader).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from sundial.fleet.service import FleetService
from sundial.web import fleetview
from sundial.web.access import job_search_limit, job_visible, online_servers
from sundial.web.forms import Field, resolve_options
from sundial.web.framework import PageContext, PageError, PageSet, not_found
from sundial.web.pages.jobs import event_titles

pages = PageSet()
OFFLINE_PER_PAGE = 50
RECENT_JOBS = 8
TOKEN_TTLS = [("3600", "1 hour"), ("86400", "24 hours"), ("604800", "7 days")]

EDIT_FIELDS = [
    Field("title", "Title", maxlength=512, help="Shown instead of the hostname. An empty box keeps the current title."),
    Field("enabled", "Enabled", kind="checkbox", help="A disabled server runs no new jobs."),
    Field("maxJobs", "Max concurrent jobs", kind="number", help="0 means no limit."),
    Field("autoGroup", "Automatic groups", kind="checkbox",
          help="Join every group whose hostname pattern matches. Uncheck to choose the groups below by hand."),
    Field("groups", "Groups", kind="list", options="visible_groups"),
]
TOKEN_FIELDS = [
    Field("title", "Title for the new server", maxlength=512, help="Optional."),
    Field("groups", "Groups", kind="list", options="visible_groups",
          help="None checked: groups follow the hostname patterns."),
]


def fleet_of(ctx: PageContext) -> FleetService | None:
    return ctx.services.fleet


def _filters(ctx: PageContext) -> fleetview.ServerFilters:
    status = ctx.query.get("status", "")
    return fleetview.ServerFilters(text=ctx.query.get("q", "").strip()[:200], group=ctx.query.get("group", "")[:64],
                                   status=status if status in fleetview.STATUSES else "")


def _page_link(filters: fleetview.ServerFilters, offset: int) -> str:
    params = filters.as_query()
    if offset > 0:
        params["offset"] = str(offset)
    return "/servers" + (f"?{urlencode(params)}" if params else "")


@pages.page("/servers", title="Servers", template="servers.html", nav="Fleet", order=10)
async def servers_list(ctx: PageContext) -> dict[str, Any]:
    services, viewer, filters = ctx.services, ctx.user, _filters(ctx)
    fleet = fleet_of(ctx)
    jobs = fleetview.jobs_per_server(services.jobs.active.values())
    online: list[dict[str, Any]] = []
    if fleet is not None and filters.status != "offline":
        online = [fleetview.summary(s, fleet.metrics.quick_rows(s["id"]), jobs.get(s["id"], 0), True)
                  for s in online_servers(services, viewer) if filters.matches(s)]
        online.sort(key=lambda row: row["label"].lower())
    offline: list[dict[str, Any]] = []
    total_offline, offset = 0, ctx.int_query("offset", 0)
    if filters.status != "online":
        docs, total_offline = await fleetview.offline_page(services, filters, viewer, offset=offset,
                                                           limit=OFFLINE_PER_PAGE)
        offline = [fleetview.summary(d, [], 0, False) for d in docs]
    return {
        "filters": filters, "online": online, "offline": offline, "total_offline": total_offline,
        "fleet_running": fleet is not None,
        "first": offset + 1 if offline else 0, "last": offset + len(offline),
        "newer": _page_link(filters, offset - OFFLINE_PER_PAGE) if offset > 0 else "",
        "older": _page_link(filters, offset + OFFLINE_PER_PAGE) if offset + OFFLINE_PER_PAGE < total_offline else "",
        "groups": [(g["id"], str(g.get("title") or g["id"])) for g in services.list("groups").all()
                   if viewer.principal.can_group(g["id"])],
        "group_titles": {g["id"]: str(g.get("title") or g["id"]) for g in services.list("groups").all()},
        "token_fields": TOKEN_FIELDS, "token_ttls": TOKEN_TTLS,
        "token_options": resolve_options(TOKEN_FIELDS, services, viewer),
    }


def _visible(ctx: PageContext, server: dict[str, Any]) -> bool:
    principal = ctx.user.principal
    return principal.is_admin or not principal.groups or any(g in principal.groups for g in server.get("groups") or [])


async def _recent_jobs(ctx: PageContext, server_id: str) -> list[dict[str, Any]]:
    rows, _ = await ctx.services.jobs.store.search(f"server:{server_id}", offset=0, limit=RECENT_JOBS,
                                                   sort_by="_id", sort_dir=-1,
                                                   extra=job_search_limit(ctx.user.principal))
    return rows


def live_data(ctx: PageContext, fleet: FleetService, server: dict[str, Any], online: bool) -> dict[str, Any]:
    """The JSON `server.js` starts from: definitions, and the samples the conductor holds now."""
    memory = fleetview.section(fleetview.section(server, "info"), "memory")
    return {
        "id": server["id"], "online": online,
        "quick_monitors": fleetview.quick_monitors(ctx.services),
        "monitors": [{k: m.get(k) for k in ("id", "title", "data_type", "suffix")}
                     for m in ctx.services.list("monitors").all()],
        "mem_total": memory.get("total") or 0,
        "quick": fleet.metrics.quick_rows(server["id"]) if online else [],
    }


@pages.page("/servers/{id:str}", title="Server", template="server.html")
async def server_page(ctx: PageContext) -> dict[str, Any]:
    fleet, server_id = fleet_of(ctx), ctx.path_param("id")
    if fleet is None:
        raise PageError(503, "The satellite hub is not running on this conductor.")
    server, online = await fleet.find(server_id)
    if server is None or not _visible(ctx, server):
        raise not_found(f"There is no server with the ID {server_id}.")
    services = ctx.services
    active = [j for j in services.jobs.active.values() if j.get("server") == server_id
              and job_visible(ctx.user.principal, j)]
    return {
        "title": f"Server: {fleetview.label(server)}", "server": server, "online": online,
        "label": fleetview.label(server), "facts": fleetview.host_facts(server),
        "sample": fleetview.sample_facts(await fleet.latest_sample(server_id)),
        "group_titles": {g["id"]: str(g.get("title") or g["id"]) for g in services.list("groups").all()},
        "live": live_data(ctx, fleet, server, online), "active_jobs": active,
        "recent_jobs": await _recent_jobs(ctx, server_id), "titles": event_titles(ctx),
        "edit_fields": EDIT_FIELDS, "options": resolve_options(EDIT_FIELDS, services, ctx.user),
        "edit_item": {"title": server.get("title") or "", "enabled": server.get("enabled", True) is not False,
                      "maxJobs": server.get("maxJobs") or 0, "autoGroup": server.get("autoGroup", True) is not False,
                      "groups": list(server.get("groups") or [])},
    }
