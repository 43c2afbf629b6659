"""First-start data: the admin account and the stock objects xyOps ships with.

Runs only when the database has no users at all, inside one transaction, so a crash during
first start leaves an empty database that the next start seeds again.
"""

from __future__ import annotations

import time
from typing import Any

from sundial.actions.records import CHANNEL, EXAMPLE_HOOK, SEV1_CHANNEL, WEB_HOOK
from sundial.activity import ClientInfo
from sundial.objects import CATEGORY, GROUP, ROLE, TAG, ObjectKind
from sundial.plugins.stock import PLUGIN, STOCK_PLUGINS
from sundial.services import Services

SETUP_CLIENT = ClientInfo(useragent="Sundial Setup Script")

STOCK: list[tuple[ObjectKind, dict[str, Any]]] = [
    (ROLE, {"id": "all", "title": "All Users", "enabled": True, "icon": "", "notes": "",
            "privileges": {"create_events": True, "edit_events": True, "run_jobs": True,
                           "tag_jobs": True}, "categories": [], "groups": []}),
    (GROUP, {"id": "main", "title": "Main Group", "hostname_match": ".+", "icon": "", "notes": "",
             "alert_actions": [], "max_jobs_per_server": 0, "sort_order": 0}),
    (CATEGORY, {"id": "general", "title": "General", "enabled": True, "color": "", "icon": "",
                "notes": "", "limits": [], "actions": [], "sort_order": 0}),
    (TAG, {"id": "important", "title": "Important", "icon": "alert-decagram", "notes": ""}),
    (TAG, {"id": "flag", "title": "Flag", "icon": "flag", "notes": ""}),
    *[(PLUGIN, plugin) for plugin in STOCK_PLUGINS],
    (WEB_HOOK, EXAMPLE_HOOK),
    (CHANNEL, SEV1_CHANNEL),
]


async def seed_first_start(services: Services) -> bool:
    """Create admin/admin and the stock objects; returns False when already seeded."""
    if services.users.exists_any:
        return False
    admin = await services.users.new_user({
        "username": "admin", "full_name": "Administrator", "email": "admin@localhost",
        "privileges": {"admin": True}, "roles": [], "force_password_change": True,
    }, "admin")
    admin["force_password_change"] = True
    now = int(time.time())
    async with services.storage.transaction() as tx:
        await services.users.insert(tx, admin)
        await services.activity.record(tx, "user_create", "admin", client=SETUP_CLIENT, username="admin",
                                       keywords=["admin"])
        for kind, fields in STOCK:
            doc = {**fields, "username": "admin", "created": now, "modified": now, "revision": 1}
            await services.list(kind.list_name).insert(tx, doc)
            await services.activity.record(tx, f"{kind.action or kind.singular}_create",
                                           str(doc["title"]), client=SETUP_CLIENT, username="admin",
                                           keywords=[doc["id"]], **{kind.singular: doc})  # type: ignore[arg-type]
        await services.state.update(tx, {"scheduler.enabled": True})
    services.logger("Sundial").debug(1, "First start: created the administrator account admin/admin. "
                                        "Log in and change its password now.")
    return True


async def recover_admin(services: Services, spec: str) -> None:
    """`recover_admin=USER:PASS`: (re)create a hidden emergency admin on every start."""
    log = services.logger("Sundial")
    username, _, password = spec.partition(":")
    from sundial.auth.accounts import valid_username

    if not username or not password or not valid_username(username):
        log.error("recover_admin", "recover_admin must be USER:PASS with a valid username; ignored")
        return
    user = services.users.get(username) or {"username": username, "full_name": username,
                                            "email": f"{username}@localhost"}
    user = dict(user)
    user.update(privileges={"admin": True}, active=1, hidden=True, categories=[], groups=[])
    user.setdefault("created", int(time.time()))
    user["modified"] = int(time.time())
    await services.users.set_password(user, password)
    async with services.storage.transaction() as tx:
        await services.users.upsert(tx, user)
        await services.activity.record(tx, "critical", f"Emergency administrator account recovered: "
                                                       f"{username}", client=SETUP_CLIENT,
                                       keywords=[username])
    log.debug(1, f"Emergency administrator account {username} is active (recover_admin)")
