"""User administration: the roster, creating users, and one page per user for edits,
disabling, password resets and unlocking. All writes go through the `/api/user/admin_*` verbs."""

from __future__ import annotations

from typing import Any

from sundial.web.forms import Field, resolve_options
from sundial.web.framework import PageContext, PageSet, not_found

pages = PageSet()

PROFILE_FIELDS = [
    Field("full_name", "Full name", required=True, maxlength=512),
    Field("email", "Email", kind="email", required=True, maxlength=512),
]
ACCESS_FIELDS = [
    Field("roles", "Roles", kind="list", options="roles"),
    Field("privileges", "Privileges", kind="flags", options="privileges"),
    Field("categories", "Limit to categories", kind="list", options="categories",
          help="None checked means all categories (administrators are never limited)."),
    Field("groups", "Limit to server groups", kind="list", options="groups",
          help="None checked means all groups."),
]


def user_status(user: dict[str, Any]) -> str:
    if user.get("force_password_reset"):
        return "locked"
    return "active" if user.get("active") else "disabled"


@pages.page("/users", title="Users", template="users.html", privilege="admin", nav="Administration", order=10)
async def users_list(ctx: PageContext) -> dict[str, Any]:
    roster = ctx.services.users.roster()
    defaults = ctx.services.config.get("default_user_privileges") or {}
    return {
        "rows": [{**u, "status": user_status(u)} for u in roster],
        "profile_fields": PROFILE_FIELDS, "access_fields": ACCESS_FIELDS,
        "defaults": {"privileges": {k: True for k, v in defaults.items() if v}, "roles": []},
        "options": resolve_options(ACCESS_FIELDS, ctx.services, ctx.user),
    }


@pages.page("/users/{username:str}", title="User", template="user_edit.html", privilege="admin")
async def user_edit(ctx: PageContext) -> dict[str, Any]:
    username = ctx.path_param("username")
    record = ctx.services.users.get(username)
    if record is None or record.get("hidden"):
        raise not_found(f"There is no user named {username}.")
    user = {k: v for k, v in record.items() if k not in ("password", "salt")}
    return {
        "title": f"User: {user['username']}", "item": {**user, "status": user_status(user)},
        "is_self": user["username"] == ctx.user.username,
        "profile_fields": PROFILE_FIELDS, "access_fields": ACCESS_FIELDS,
        "options": resolve_options(ACCESS_FIELDS, ctx.services, ctx.user),
    }
