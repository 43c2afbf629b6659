"""The system page: conductor facts and the scheduler switch; key rotation and backups come later."""

from __future__ import annotations

import platform
import time
from typing import Any

from sundial import __version__
from sundial.web.framework import PageContext, PageSet

pages = PageSet()


@pages.page("/system", title="System", template="system.html", privilege="admin", nav="Administration",
            order=50)
async def system(ctx: PageContext) -> dict[str, Any]:
    services = ctx.services
    return {
        "scheduler_enabled": services.state.scheduler_enabled,
        "facts": [
            ("Version", __version__),
            ("Hostname", services.hostname),
            ("Primary conductor", "yes" if services.is_primary() else "no"),
            ("Database", "SQLite" if services.storage.is_sqlite else "PostgreSQL"),
            ("Python", platform.python_version()),
        ],
        "started": services.started,
        "uptime": time.time() - services.started,
    }
