"""Plugin parameter definitions turned into form controls for the event editor.

A plugin declares its parameters (`Plugin.params[]`, see the plugins spec §3); the editor
shows one control per definition, by type, filled with the event's stored value or the
definition's default. The template renders these; `event_editor.js` reads them back by
`data-param`, so the rules for reading a value live next to the rules for showing it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from sundial.plugins.params import default_values
from sundial.services import Services

# `text` variants that map onto an HTML input type of the same name.
INPUT_VARIANTS = frozenset({"color", "date", "datetime-local", "email", "number", "password", "text", "time", "tel",
                            "url"})
_OPTION_RE = re.compile(r"^(.*?)\s*\[([\w\-.]*)\]\s*$")
# `system` parameters pick from one of these lists (the ones the conductor keeps in memory).
SYSTEM_LISTS = {"categories": "categories", "groups": "groups", "tags": "tags", "web_hooks": "web_hooks",
                "channels": "channels", "plugins": "plugins", "events": "events", "roles": "roles",
                "buckets": "buckets", "monitors": "monitors"}


@dataclass(frozen=True)
class ParamControl:
    """One parameter as the template needs it; `kind` picks the markup, `read` how JS reads it back."""

    id: str
    title: str
    kind: str            # text, textarea, code, json, checkbox, select, hidden, group, raw
    value: Any
    read: str = "string"  # string, number, bool, json, list
    input_type: str = "text"
    caption: str = ""
    required: bool = False
    locked: bool = False
    readonly: bool = False
    multiple: bool = False
    options: list[tuple[str, str]] = field(default_factory=list)


def select_options(csv: Any) -> list[tuple[str, str]]:
    """`"A, B [b], C"` → [(A, A), (b, B), (C, C)]; a leading comma gives an empty first choice."""
    if isinstance(csv, list):
        return [(str(item), str(item)) for item in csv]
    text = str(csv or "")
    options: list[tuple[str, str]] = [("", "—")] if text.startswith(",") else []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        match = _OPTION_RE.match(part)
        options.append((match.group(2), match.group(1) or match.group(2)) if match else (part, part))
    return options


def _system_options(services: Services, list_id: str) -> list[tuple[str, str]] | None:
    name = SYSTEM_LISTS.get(list_id)
    if name is None or name not in services.lists:
        return None
    return [("", "—")] + [(str(o["id"]), str(o.get("title") or o["id"])) for o in services.list(name).all()]


def _json_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def _value(definition: dict[str, Any], params: dict[str, Any]) -> Any:
    pid = definition["id"]
    if pid in params:
        return params[pid]
    return default_values([definition]).get(pid, "")


def control_for(definition: dict[str, Any], params: dict[str, Any], *, is_admin: bool,
                services: Services) -> ParamControl | None:
    """The control for one definition, or None for entries that carry nothing to edit."""
    kind = str(definition.get("type") or "text")
    if kind == "group":
        return ParamControl(id="", title=str(definition.get("title") or ""), kind="group", value=None)
    if "id" not in definition:
        return None
    locked = bool(definition.get("locked"))
    base: dict[str, Any] = {
        "id": str(definition["id"]), "title": str(definition.get("title") or definition["id"]),
        "caption": str(definition.get("caption") or ""), "required": bool(definition.get("required")),
        "locked": locked, "readonly": locked and not is_admin,
    }
    value = _value(definition, params)
    return _typed_control(kind, definition, value, base, services)


def _typed_control(kind: str, definition: dict[str, Any], value: Any, base: dict[str, Any],
                   services: Services) -> ParamControl:
    if kind in ("textarea", "code"):
        return ParamControl(kind=kind, value="" if value is None else str(value), **base)
    if kind == "json":
        return ParamControl(kind="json", value=_json_text(value), read="json", **base)
    if kind == "checkbox":
        return ParamControl(kind="checkbox", value=bool(value), read="bool", **base)
    if kind == "hidden":
        if isinstance(value, str):
            return ParamControl(kind="hidden", value=value, **base)
        return ParamControl(kind="hidden", value=_json_text(value), read="json", **base)
    multiple = bool(definition.get("multiple"))
    if kind == "select":
        return ParamControl(kind="select", value=value, read="list" if multiple else "string", multiple=multiple,
                            options=select_options(definition.get("value")), **base)
    if kind == "system":
        options = _system_options(services, str(definition.get("list_id") or ""))
        if options is not None:
            return ParamControl(kind="select", value=value, read="list" if multiple else "string",
                                multiple=multiple, options=options, **base)
    if kind == "text":
        variant = str(definition.get("variant") or "text")
        input_type = variant if variant in INPUT_VARIANTS else "text"
        return ParamControl(kind="text", value="" if value is None else value, input_type=input_type,
                            read="number" if variant == "number" else "string", **base)
    # bucket, toolset and anything newer: edited as JSON so nothing is lost.
    return ParamControl(kind="json", value=_json_text(value), read="json", **base)


def controls_for(plugin: dict[str, Any], params: dict[str, Any], *, is_admin: bool,
                 services: Services) -> list[ParamControl]:
    controls = [control_for(d, params, is_admin=is_admin, services=services)
                for d in plugin.get("params") or [] if isinstance(d, dict)]
    return [c for c in controls if c is not None]
