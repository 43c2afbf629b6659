"""Declarative form fields and table columns, rendered by the `macros.html` templates.

A field's `kind` decides both the HTML control and the `data-type` that `forms.js` uses to
turn the control back into JSON, so a page declares its fields once and needs no JS of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sundial.auth.privileges import PRIVILEGES
from sundial.services import Services
from sundial.web.access import event_visible
from sundial.web.viewer import Viewer

# The xyOps category colour names (values are names, the stylesheet draws the swatches).
COLORS = ("plain", "red", "fire", "orange", "tangerine", "amber", "gold", "yellow", "lemon", "lime", "grass",
          "green", "mint", "emerald", "aqua", "teal", "turquoise", "cyan", "ice", "skyblue", "azure", "blue",
          "sapphire", "indigo", "lavender", "violet", "orchid", "purple", "magenta", "fuchsia", "hotpink", "pink",
          "blush", "rose")

KINDS = ("text", "textarea", "code", "json", "number", "checkbox", "select", "flags", "list", "password", "email",
         "pairs")


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str = "text"
    help: str = ""
    required: bool = False
    create_only: bool = False     # settable on create, read-only afterwards (ids)
    options: str = ""             # an OPTION_SOURCES key for select, flags and list kinds
    placeholder: str = ""
    pattern: str = ""
    maxlength: int = 0
    default: Any = None
    # `pairs` only: a list of {name, value} rows (web hook headers, secret variables).
    pair_labels: tuple[str, str] = ("Name", "Value")
    secret: bool = False          # values are write-only: never pre-filled, never echoed back

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown field kind {self.kind!r} for {self.name}")


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str = "text"   # text, code, bool, date, color, list, count


Options = list[tuple[str, str]]


def _privileges(services: Services, viewer: Viewer) -> Options:
    return list(PRIVILEGES.items())


def _titled(list_name: str) -> Callable[[Services, Viewer], Options]:
    def source(services: Services, viewer: Viewer) -> Options:
        return [(str(o["id"]), str(o.get("title") or o["id"])) for o in services.list(list_name).all()]

    return source


def _colors(services: Services, viewer: Viewer) -> Options:
    return [("", "None")] + [(name, name.capitalize()) for name in COLORS]


def _fixed(options: Options) -> Callable[[Services, Viewer], Options]:
    return lambda _services, _viewer: list(options)


def _optional(source: Callable[[Services, Viewer], Options]) -> Callable[[Services, Viewer], Options]:
    """A select whose first choice is "none" (an empty value the API reads as unset)."""
    return lambda services, viewer: [("", "None")] + source(services, viewer)


def _users(services: Services, viewer: Viewer) -> Options:
    return [(str(u["username"]), str(u.get("full_name") or u["username"])) for u in services.users.roster()]


def _events(services: Services, viewer: Viewer) -> Options:
    """Events the viewer may see: a select must not leak the titles of events outside their limits."""
    return [(str(e["id"]), str(e.get("title") or e["id"])) for e in services.events.events.all()
            if event_visible(viewer.principal, e)]


def _visible_groups(services: Services, viewer: Viewer) -> Options:
    return [(str(g["id"]), str(g.get("title") or g["id"])) for g in services.list("groups").all()
            if viewer.principal.can_group(g["id"])]


PLUGIN_TYPES: Options = [("event", "Event"), ("monitor", "Monitor"), ("action", "Action"), ("scheduler", "Scheduler")]
HTTP_METHODS: Options = [(m, m) for m in ("POST", "GET", "PUT", "PATCH", "DELETE", "HEAD")]
KILL_MODES: Options = [("parent", "The main process"), ("all", "The whole process tree"),
                       ("none", "Nothing (let it finish)")]

OPTION_SOURCES: dict[str, Callable[[Services, Viewer], Options]] = {
    "privileges": _privileges, "roles": _titled("roles"), "categories": _titled("categories"),
    "groups": _titled("groups"), "colors": _colors, "plugin_types": _fixed(PLUGIN_TYPES),
    "kill_modes": _fixed(KILL_MODES), "http_methods": _fixed(HTTP_METHODS), "users": _users,
    "events": _events, "plugins": _titled("plugins"), "web_hooks": _titled("web_hooks"),
    "web_hook_choice": _optional(_titled("web_hooks")), "event_choice": _optional(_events),
    "visible_groups": _visible_groups,
}


def resolve_options(fields: list[Field], services: Services, viewer: Viewer) -> dict[str, Options]:
    """Choices for each field that has a source, looked up once per page view."""
    return {f.name: OPTION_SOURCES[f.options](services, viewer) for f in fields if f.options}
