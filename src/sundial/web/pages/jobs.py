"""Jobs: the history search (paged in SQL, never loading all jobs) and the job page (live or finished).

The job page renders what is known now; `job.js` then follows the job over the live channel
(`job:<id>` on `/api/live`) while it runs and reloads the page when it ends, so the finished
view is always the server's final record.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from sundial.jobs.build import log_token
from sundial.storage.search import MAX_QUERY_LENGTH, QueryError
from sundial.web.access import job_search_limit, job_visible
from sundial.web.framework import PageContext, PageSet, not_found
from sundial.web.param_controls import ParamControl, controls_for

pages = PageSet()
RESULT_FILTERS = {"success": "tags:_success", "error": "tags:_error", "warning": "code:warning",
                  "critical": "code:critical", "abort": "code:abort"}
RESULT_LABELS = [("", "Any result"), ("success", "Success"), ("error", "Any error"), ("warning", "Warning"),
                 ("critical", "Critical"), ("abort", "Aborted")]
LOG_SHOWN = 256 * 1024   # characters of a finished log shown in the page; the rest is a download away
ACTIVE_SHOWN = 20


def compose_query(query: str, result: str) -> tuple[str, str]:
    """The search text with the result filter added; (query, error) when they cannot combine."""
    extra = RESULT_FILTERS.get(result, "")
    if not extra:
        return query or "*", ""
    if query.startswith("("):
        return query, "The result filter cannot be combined with a PxQL query; add it to the query instead."
    return " ".join(part for part in ("" if query == "*" else query, extra) if part), ""


def per_page(ctx: PageContext) -> int:
    return int((ctx.services.config.get("client") or {}).get("items_per_page") or 50)


def visible_active(ctx: PageContext, limit: int = ACTIVE_SHOWN) -> tuple[list[dict[str, Any]], int]:
    """Running, queued and waiting jobs the viewer may see, newest first, and how many there are."""
    principal = ctx.user.principal
    rows = [j for j in ctx.services.jobs.active.values() if job_visible(principal, j)]
    rows.sort(key=lambda j: float(j.get("started") or j.get("now") or 0), reverse=True)
    return rows[:limit], len(rows)


def event_titles(ctx: PageContext) -> dict[str, str]:
    return {str(e["id"]): str(e.get("title") or e["id"]) for e in ctx.services.events.events.all()}


@pages.page("/jobs", title="Job history", template="jobs.html", nav="Scheduling", order=20)
async def job_history(ctx: PageContext) -> dict[str, Any]:
    query = ctx.query.get("query", "").strip()[:MAX_QUERY_LENGTH]
    result = ctx.query.get("result", "") if ctx.query.get("result", "") in RESULT_FILTERS else ""
    size, offset = per_page(ctx), ctx.int_query("offset", 0)
    search, error = compose_query(query, result)
    rows: list[dict[str, Any]] = []
    total = 0
    if not error:
        try:
            rows, total = await ctx.services.jobs.store.search(search, offset=offset, limit=size, sort_by="_id",
                                                               sort_dir=-1, extra=job_search_limit(ctx.user.principal))
        except QueryError as exc:
            error = str(exc)
    active, active_total = visible_active(ctx) if not (query or result or offset) else ([], 0)
    link = _page_link(query, result)
    return {
        "query": query, "result": result, "results": RESULT_LABELS, "rows": rows, "total": total, "error": error,
        "first": offset + 1 if rows else 0, "last": offset + len(rows), "active": active,
        "active_total": active_total, "titles": event_titles(ctx),
        "newer": link(offset - size) if offset > 0 else "",
        "older": link(offset + size) if offset + size < total else "",
    }


def _page_link(query: str, result: str) -> Any:
    def link(offset: int) -> str:
        params = {k: v for k, v in (("query", query), ("result", result)) if v}
        if offset > 0:
            params["offset"] = str(offset)
        return "/jobs" + (f"?{urlencode(params)}" if params else "")

    return link


def suspension(ctx: PageContext, job: dict[str, Any], plugin: dict[str, Any] | None,
               live: bool) -> dict[str, Any] | None:
    """What the job page says about a job held by a suspend action, and what its Resume form offers:
    the job's plugin parameters filled with the job's own values (`resume_job` merges the changed
    ones), for viewers allowed to resume it."""
    if not live or not job.get("suspended"):
        return None
    holding = next((a for a in job.get("actions") or [] if isinstance(a, dict) and a.get("type") == "suspend"
                    and a.get("active")), {})
    controls: list[ParamControl] = []
    if plugin and ctx.can("run_jobs"):
        controls = controls_for(plugin, dict(job.get("params") or {}), is_admin=ctx.user.is_admin,
                                services=ctx.services)
    return {"at": "finish" if job.get("state") == "complete" else "start",
            "condition": str(holding.get("condition") or ""), "text": str(holding.get("text") or ""),
            "controls": controls, "can_resume": ctx.can("run_jobs")}


@pages.page("/jobs/{id:str}", title="Job", template="job.html")
async def job_page(ctx: PageContext) -> dict[str, Any]:
    services, job_id = ctx.services, ctx.path_param("id")
    job = await services.jobs.get(job_id)
    if job is None or not job_visible(ctx.user.principal, job):
        raise not_found(f"There is no job with the ID {job_id}.")
    live = job_id in services.jobs.active
    token = log_token(job_id, str(services.config.get("secret_key")))
    output = "" if live else str(job.get("output") or "")
    event = services.events.get(str(job.get("event") or ""))
    plugin = services.list("plugins").get(str(job.get("plugin") or ""))
    log_links = {"view": f"/api/app/view_job_log/v1?{urlencode({'id': job_id, 't': token})}",
                 "download": f"/api/app/download_job_log/v1?{urlencode({'id': job_id, 't': token})}"}
    return {
        "title": f"Job {job_id}", "job": job, "live": live, "event": event,
        "event_title": (event or {}).get("title") or job.get("event_title") or job.get("event") or "",
        "category": services.list("categories").get(str(job.get("category") or "")),
        "plugin": plugin, "suspension": suspension(ctx, job, plugin, live),
        "output": output[-LOG_SHOWN:], "output_cut": len(output) > LOG_SHOWN, "log_links": log_links,
        "ran_actions": [a for a in job.get("actions") or [] if isinstance(a, dict) and "code" in a],
        "live_data": {"id": job_id, "live": live, "started": job.get("started"),
                      "suspended": bool(live and job.get("suspended")),
                      "fetch_log": bool(not live and not output and job.get("log_uploaded")),
                      "log_url": log_links["view"]},
    }
