"""The system page: conductor facts, the scheduler switch, secret key rotation and backups.

Rotation is started by the browser (`admin_rotate_secret_key`, which re-checks the password)
and watched through `get_internal_jobs`; the loader only says whether one is running now and
where the key comes from. Backups link to `admin_export_data` when this conductor has it.
"""

from __future__ import annotations

import platform
import time
from typing import Any
from urllib.parse import urlencode

from sundial import __version__
from sundial.services import Services
from sundial.vault.rotation import MAINT
from sundial.web.framework import PageContext, PageSet

pages = PageSet()


def has_verb(name: str) -> bool:
    """Whether the running conductor serves a verb (backups are being built in parallel).

    Imported here, not at module level: `sundial.app` imports the web routes.
    """
    from sundial.app import ROUTERS

    return any(verb.name == name for router in ROUTERS for verb in router.verbs)


def key_facts(services: Services) -> dict[str, Any]:
    """Which key is in force, where it came from, and whether a rotation is running."""
    vault = services.vault
    running = [job.row() for job in services.internal_jobs.running(MAINT)]
    return {"fingerprint": vault.current.fingerprint, "epoch": vault.current.epoch,
            "source": vault.source.description, "mutable": vault.source.mutable,
            "running": running[0] if running else None}


def activity_link(query: str) -> str:
    return "/activity?" + urlencode({"query": query})


@pages.page("/system", title="System", template="system.html", privilege="admin", nav="Administration",
            order=50)
async def system(ctx: PageContext) -> dict[str, Any]:
    services = ctx.services
    key = key_facts(services)
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
        "key": key,
        "rotations_link": activity_link("action:internal_job maint"),
        "backup_ready": has_verb("admin_export_data") and has_verb("get_transfer_token"),
        "system_data": {"rotation": key["running"]},
    }
