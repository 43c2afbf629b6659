"""Secrets admin: metadata in the page, values never.

Loaders read `vault.all_metadata()` / `get_metadata()`, which carry names and assignments but
no values, so nothing a page renders can leak one. Values travel only in two directions:
typed into write-only boxes (create, replace), and fetched by `secret.js` through
`decrypt_secret` after an explicit confirmation; that call is audited as `secret_access`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from sundial.web.forms import Field, resolve_options
from sundial.web.framework import PageContext, PageSet, not_found
from sundial.web.pages.objects import ID_FIELD, NOTES_FIELD, TITLE_FIELD

pages = PageSet()

ASSIGNMENTS = (("events", "Events"), ("categories", "Categories"), ("plugins", "Plugins"),
               ("web_hooks", "Web hooks"))
SINGULAR = {"events": "event", "categories": "category", "plugins": "plugin", "web_hooks": "web hook"}
ASSIGNMENT_HELP = "Jobs of these receive the secret's variables; web hooks can use them as {{ secrets.NAME }}."

META_FIELDS = [
    TITLE_FIELD, Field("enabled", "Enabled", kind="checkbox", default=True,
                       help="A disabled secret is not given to any job or web hook."),
    *[Field(key, label, kind="list", options=key, help=ASSIGNMENT_HELP if key == "events" else "")
      for key, label in ASSIGNMENTS],
    NOTES_FIELD,
]
VALUES_FIELD = Field("fields", "Variables", kind="pairs", pair_labels=("Variable", "Value"), secret=True,
                     default=[{}],
                     help="Names are environment variable names (letters, digits, underscores). Values are "
                          "encrypted at once and never shown again unless an administrator decrypts them.")
CREATE_FIELDS = [ID_FIELD, *META_FIELDS, VALUES_FIELD]


def assignment_summary(meta: dict[str, Any]) -> str:
    """"2 events, 1 plugin": what the list shows instead of the raw id lists."""
    parts = []
    for key, label in ASSIGNMENTS:
        count = len(meta.get(key) or [])
        if count:
            parts.append(f"{count} {label.lower() if count != 1 else SINGULAR[key]}")
    return ", ".join(parts) or "Nothing"


def activity_link(secret_id: str) -> str:
    """The activity search that lists this secret's decryptions, newest first."""
    return "/activity?" + urlencode({"query": f"action:secret_access {secret_id}"})


@pages.page("/secrets", title="Secrets", template="secrets.html", privilege="admin", nav="Administration",
            order=35)
async def secrets_list(ctx: PageContext) -> dict[str, Any]:
    rows = sorted(ctx.services.vault.all_metadata(), key=lambda m: str(m.get("title") or m.get("id")).lower())
    return {"rows": [{**m, "assigned": assignment_summary(m)} for m in rows], "fields": CREATE_FIELDS,
            "options": resolve_options(CREATE_FIELDS, ctx.services, ctx.user)}


@pages.page("/secrets/{id:str}", title="Secret", template="secret_edit.html", privilege="admin")
async def secret_edit(ctx: PageContext) -> dict[str, Any]:
    secret_id = ctx.path_param("id")
    meta = ctx.services.vault.get_metadata(secret_id)
    if meta is None:
        raise not_found(f"There is no secret with the ID {secret_id}.")
    names = [str(n) for n in meta.get("names") or []]
    return {"title": f"Secret: {meta.get('title') or secret_id}", "item": meta, "fields": META_FIELDS,
            "values_field": VALUES_FIELD, "names": names, "name_rows": [{"name": n} for n in names] or [{}],
            "options": resolve_options(META_FIELDS, ctx.services, ctx.user),
            "activity_link": activity_link(secret_id),
            "decrypt_params": {"id": secret_id, "title": str(meta.get("title") or secret_id)}}
