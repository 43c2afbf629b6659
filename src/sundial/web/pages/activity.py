"""The activity log: a search box speaking the xyOps query syntax, newest first, paged.

Searches run on the server (no JS needed) through the same compiler the API uses, so a
query that works here works with `search_activity` too.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from sundial.services import Services
from sundial.storage.search import MAX_QUERY_LENGTH, QueryError
from sundial.web.framework import PageContext, PageSet

pages = PageSet()
HIDDEN_DETAILS = ("id", "action", "epoch", "description", "ip", "ips", "headers", "keywords", "username",
                  "useragent", "admin")


def actor_names(services: Services) -> dict[str, str]:
    """Activity records name an API key by its id (the key's title may change); pages show the title."""
    return {str(k["id"]): f"API key: {k.get('title') or k['id']}" for k in services.list("api_keys").all()}


@pages.page("/activity", title="Activity log", template="activity.html", privilege="admin",
            nav="Administration", order=40)
async def activity(ctx: PageContext) -> dict[str, Any]:
    query = ctx.query.get("query", "").strip()[:MAX_QUERY_LENGTH]
    per_page = int((ctx.services.config.get("client") or {}).get("items_per_page") or 50)
    offset = ctx.int_query("offset", 0)
    error, total = "", 0
    rows: list[dict[str, Any]] = []
    try:
        rows, total = await ctx.services.activity.search(query or "*", offset=offset, limit=per_page)
    except QueryError as exc:
        error = str(exc)
    for row in rows:
        row["details"] = {k: v for k, v in row.items() if k not in HIDDEN_DETAILS}
    return {
        "query": query, "rows": rows, "total": total, "offset": offset, "error": error,
        "actors": actor_names(ctx.services),
        "first": offset + 1 if rows else 0, "last": offset + len(rows),
        "newer": _page_link(query, offset - per_page) if offset > 0 else "",
        "older": _page_link(query, offset + per_page) if offset + per_page < total else "",
    }


def _page_link(query: str, offset: int) -> str:
    params = {"query": query} if query else {}
    if offset > 0:
        params["offset"] = str(offset)
    return "/activity" + (f"?{urlencode(params)}" if params else "")
