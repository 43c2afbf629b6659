"""The dashboard: what is happening now. Job, schedule and server panels fill in as those domains land."""

from __future__ import annotations

from typing import Any

from sundial.web.framework import PageContext, PageSet

pages = PageSet()
RECENT_ACTIVITY = 8


@pages.page("/", title="Dashboard", template="dashboard.html", nav="Overview", order=0)
async def dashboard(ctx: PageContext) -> dict[str, Any]:
    services = ctx.services
    recent: list[dict[str, Any]] = []
    if ctx.can("admin"):
        recent, _ = await services.activity.search("*", limit=RECENT_ACTIVITY)
    counts = {name: len(services.list(name)) for name in ("categories", "tags", "groups", "roles")}
    return {
        "scheduler_enabled": services.state.scheduler_enabled,
        "counts": counts,
        "user_count": len(services.users.roster()),
        "recent": recent,
    }
