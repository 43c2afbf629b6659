"""API keys: only masks are ever shown here; the plain key appears once, in the create reply."""

from __future__ import annotations

from typing import Any

from sundial.web.forms import Field, resolve_options
from sundial.web.framework import PageContext, PageSet, not_found

pages = PageSet()

KEY_FIELDS = [
    Field("title", "Title", required=True, maxlength=512),
    Field("description", "Description", kind="textarea", maxlength=65536),
    Field("roles", "Roles", kind="list", options="roles"),
    Field("privileges", "Privileges", kind="flags", options="privileges"),
]


def _public(record: dict[str, Any]) -> dict[str, Any]:
    """Drop the stored hash: the page has no use for it."""
    return {k: v for k, v in record.items() if k != "key"}


@pages.page("/apikeys", title="API keys", template="apikeys.html", privilege="admin", nav="Administration",
            order=30)
async def apikeys_list(ctx: PageContext) -> dict[str, Any]:
    rows = [_public(k) for k in ctx.services.list("api_keys").all()]
    return {"rows": rows, "fields": KEY_FIELDS, "options": resolve_options(KEY_FIELDS, ctx.services, ctx.user)}


@pages.page("/apikeys/{id:str}", title="API key", template="apikey_edit.html", privilege="admin")
async def apikey_edit(ctx: PageContext) -> dict[str, Any]:
    key_id = ctx.path_param("id")
    record = ctx.services.list("api_keys").get(key_id)
    if record is None:
        raise not_found(f"There is no API key with the ID {key_id}.")
    return {"title": f"API key: {record.get('title') or key_id}", "item": _public(record), "fields": KEY_FIELDS,
            "options": resolve_options(KEY_FIELDS, ctx.services, ctx.user)}
