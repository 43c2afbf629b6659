"""Configuration objects that share one life cycle: categories, tags, groups, plugins, roles.

Each kind is one `ObjectAdmin` declaration (fields, columns, nav position); the list page,
the edit page and the create/update/delete wiring all come from it. Web hooks use their own
edit template (`web_hook_edit.html`) only to add the Test button.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sundial.web.forms import Column, Field, resolve_options
from sundial.web.framework import PageContext, PageSet, not_found
from sundial.web.viewer import Viewer

pages = PageSet()

ID_FIELD = Field("id", "ID", help="Lower-case letters, digits and underscores; generated when empty.",
                 create_only=True, pattern="[a-z0-9_]+", maxlength=64)
TITLE_FIELD = Field("title", "Title", required=True, maxlength=512)
NOTES_FIELD = Field("notes", "Notes", kind="textarea", maxlength=65536)


@dataclass(frozen=True)
class ObjectAdmin:
    list_name: str          # "tags": the config list and privilege suffix
    singular: str           # "tag": verb suffix
    label: str              # "Tag"
    plural_label: str       # "Tags"
    fields: list[Field]
    columns: list[Column]
    intro: str = ""
    order: int = 100
    visible: Callable[[Viewer, dict[str, Any]], bool] = lambda _viewer, _item: True
    edit_template: str = "object_edit.html"   # a template extending object_edit.html adds page-specific parts

    @property
    def path(self) -> str:
        return "/" + self.list_name

    def verb(self, action: str) -> str:
        return f"{action}_{self.singular}"

    def privilege(self, action: str) -> str:
        return f"{action}_{self.list_name}"


CATEGORIES = ObjectAdmin(
    "categories", "category", "Category", "Categories", order=10,
    intro="Categories group events; a disabled category stops its events from running.",
    fields=[ID_FIELD, TITLE_FIELD, Field("enabled", "Enabled", kind="checkbox", default=True),
            Field("color", "Colour", kind="select", options="colors"),
            Field("sort_order", "Sort order", kind="number"), NOTES_FIELD],
    columns=[Column("title", "Title"), Column("id", "ID", "code"), Column("color", "Colour", "color"),
             Column("enabled", "Enabled", "bool"), Column("modified", "Modified", "date")],
    visible=lambda viewer, item: viewer.principal.can_category(item.get("id")))

TAGS = ObjectAdmin(
    "tags", "tag", "Tag", "Tags", order=20,
    intro="Tags label events and jobs for searching and filtering.",
    fields=[ID_FIELD, TITLE_FIELD,
            Field("icon", "Icon", help="Icon name (letters, digits, dashes).", pattern=r"[\w\-]*", maxlength=128),
            NOTES_FIELD],
    columns=[Column("title", "Title"), Column("id", "ID", "code"), Column("notes", "Notes"),
             Column("modified", "Modified", "date")])

GROUPS = ObjectAdmin(
    "groups", "group", "Group", "Groups", order=30,
    intro="Server groups collect servers by hostname pattern; events target groups.",
    fields=[ID_FIELD, TITLE_FIELD,
            Field("hostname_match", "Hostname match", required=True, default=".+",
                  help="A regular expression matched against server hostnames.", maxlength=1024),
            Field("max_jobs_per_server", "Max jobs per server", kind="number", help="0 means no limit."),
            NOTES_FIELD],
    columns=[Column("title", "Title"), Column("id", "ID", "code"), Column("hostname_match", "Hostname match", "code"),
             Column("modified", "Modified", "date")],
    visible=lambda viewer, item: viewer.principal.can_group(item.get("id")))

ROLES = ObjectAdmin(
    "roles", "role", "Role", "Roles", order=20,
    intro="Roles bundle privileges and limits; users and API keys gain those of their enabled roles.",
    fields=[ID_FIELD, TITLE_FIELD, Field("enabled", "Enabled", kind="checkbox", default=True),
            Field("privileges", "Privileges", kind="flags", options="privileges"),
            Field("categories", "Limit to categories", kind="list", options="categories",
                  help="None checked means all categories."),
            Field("groups", "Limit to server groups", kind="list", options="groups",
                  help="None checked means all groups."),
            NOTES_FIELD],
    columns=[Column("title", "Title"), Column("id", "ID", "code"), Column("enabled", "Enabled", "bool"),
             Column("privileges", "Privileges", "count"), Column("modified", "Modified", "date")])


PLUGINS = ObjectAdmin(
    "plugins", "plugin", "Plugin", "Plugins", order=40,
    intro="Plugins are the programs jobs run. An event plugin's parameters become the fields of the event editor.",
    fields=[ID_FIELD, TITLE_FIELD, Field("type", "Type", kind="select", options="plugin_types", default="event"),
            Field("enabled", "Enabled", kind="checkbox", default=True),
            Field("command", "Command", required=True, maxlength=4096,
                  help="Executable and arguments (no shell). [shell-plugin] and friends are built into the satellite."),
            Field("script", "Script", kind="code", maxlength=4 * 1024 * 1024,
                  help="Optional source, written to a file whose path is added as the last argument."),
            Field("params", "Parameters", kind="json", default=[],
                  help='A JSON array of definitions, e.g. [{"id": "url", "title": "URL", "type": "text", '
                       '"required": true}]. Types: text, textarea, code, json, checkbox, select, hidden, system.'),
            Field("kill", "On abort, stop", kind="select", options="kill_modes", default="parent"),
            Field("timeout", "Timeout (seconds)", kind="number", help="Action and scheduler plugins only."),
            NOTES_FIELD],
    columns=[Column("title", "Title"), Column("id", "ID", "code"), Column("type", "Type"),
             Column("command", "Command", "code"), Column("enabled", "Enabled", "bool"),
             Column("modified", "Modified", "date")])


WEB_HOOKS = ObjectAdmin(
    "web_hooks", "web_hook", "Web hook", "Web hooks", order=50, edit_template="web_hook_edit.html",
    intro="Web hooks send an HTTP request when a job action or a notification channel fires. "
          "Secrets assigned to a hook can be used in its URL, headers and body as {{ secrets.NAME }}.",
    fields=[ID_FIELD, TITLE_FIELD, Field("enabled", "Enabled", kind="checkbox", default=True),
            Field("method", "Method", kind="select", options="http_methods", default="POST"),
            Field("url", "URL", required=True, maxlength=8192, placeholder="https://example.com/hook",
                  help="http:// or https://; macros such as {{ job.id }} are expanded when the hook fires."),
            Field("headers", "Headers", kind="pairs", pair_labels=("Header", "Value"),
                  default=[{"name": "Content-Type", "value": "application/json"}]),
            Field("body", "Body", kind="code", maxlength=1 << 20, default='{\n\t"text": "{{text}}"\n}',
                  help="Sent with POST, PUT and PATCH. {{text}} is the notification text; job fields are "
                       "available as {{ job.* }}."),
            Field("timeout", "Timeout (seconds)", kind="number", default=30),
            Field("retries", "Retries", kind="number", default=0,
                  help="Extra tries after a network error or a 408, 429 or 5xx answer."),
            Field("follow", "Follow redirects", kind="checkbox", default=False),
            Field("ssl_cert_bypass", "Skip TLS certificate checks", kind="checkbox", default=False,
                  help="Only for test systems with self-signed certificates."),
            Field("max_per_day", "Daily limit", kind="number", default=0, help="0 means no limit."),
            NOTES_FIELD],
    columns=[Column("title", "Title"), Column("id", "ID", "code"), Column("method", "Method"),
             Column("url", "URL", "code"), Column("enabled", "Enabled", "bool"),
             Column("modified", "Modified", "date")])

CHANNELS = ObjectAdmin(
    "channels", "channel", "Channel", "Notification channels", order=60,
    intro="A channel bundles who to tell when an event's action fires it: users, email addresses, a web hook "
          "and an event to run.",
    fields=[ID_FIELD, TITLE_FIELD, Field("enabled", "Enabled", kind="checkbox", default=True),
            Field("users", "Users", kind="list", options="users", help="Each user's email address is notified."),
            Field("email", "Other email addresses", maxlength=4096, help="Separate several with commas."),
            Field("web_hook", "Web hook", kind="select", options="web_hook_choice"),
            Field("run_event", "Run event", kind="select", options="event_choice"),
            Field("max_per_day", "Daily limit", kind="number", default=0, help="0 means no limit."),
            NOTES_FIELD],
    columns=[Column("title", "Title"), Column("id", "ID", "code"), Column("users", "Users", "list"),
             Column("web_hook", "Web hook", "code"), Column("enabled", "Enabled", "bool"),
             Column("modified", "Modified", "date")])


def register(admin: ObjectAdmin, nav: str) -> None:
    """Declare the list page and the edit page of one kind."""

    async def list_page(ctx: PageContext) -> dict[str, Any]:
        viewer = ctx.user
        rows = [o for o in ctx.services.list(admin.list_name).all() if admin.visible(viewer, o)]
        return {"admin": admin, "rows": rows, "options": resolve_options(admin.fields, ctx.services, viewer)}

    async def edit_page(ctx: PageContext) -> dict[str, Any]:
        viewer, item_id = ctx.user, ctx.path_param("id")
        item = ctx.services.list(admin.list_name).get(item_id)
        if item is None or not admin.visible(viewer, item):
            raise not_found(f"There is no {admin.label.lower()} with the ID {item_id}.")
        return {"admin": admin, "item": item, "title": f"{admin.label}: {item.get('title') or item_id}",
                "options": resolve_options(admin.fields, ctx.services, viewer)}

    list_page.__name__ = f"{admin.list_name}_list"
    edit_page.__name__ = f"{admin.list_name}_edit"
    pages.page(admin.path, title=admin.plural_label, template="objects.html", nav=nav,
               order=admin.order)(list_page)
    pages.page(admin.path + "/{id:str}", title=admin.label, template=admin.edit_template)(edit_page)


for _admin in (CATEGORIES, TAGS, GROUPS, PLUGINS, WEB_HOOKS, CHANNELS):
    register(_admin, "Configuration")
register(ROLES, "Administration")
