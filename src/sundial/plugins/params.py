"""Parameter definitions (`Plugin.params[]`, `Event.fields[]`) and validation of their values.

Definitions are checked when a plugin or event is saved; values when an event is saved or
run, so a job never starts with a parameter its plugin declares impossible.
"""

from __future__ import annotations

import re
from typing import Any

RESERVED_KEYS = frozenset({"constructor", "__proto__", "hasOwnProperty", "toString", "valueOf",
                           "__defineGetter__", "__defineSetter__", "__lookupGetter__", "__lookupSetter__",
                           "isPrototypeOf", "propertyIsEnumerable", "toLocaleString", "0"})
OVERRIDE_PREFIX = "_xy_override_"
RESERVED_OVERRIDES = frozenset({"plugin", "params", "id", "event", "enabled", "category", "fields", "actions",
                                "limits", "triggers", "workflow", "command", "script", "uid", "gid", "cwd", "env",
                                "kill", "runner"})
CONTROL_TYPES = frozenset({"text", "textarea", "code", "json", "checkbox", "select", "bucket", "system",
                           "hidden", "toolset", "group"})
TOOL_FIELD_TYPES = frozenset({"checkbox", "code", "json", "hidden", "select", "text", "textarea"})
_ID_RE = re.compile(r"^[A-Za-z_][\w\-.]*$")
_RANGE_RE = re.compile(r"^\s*(-?[\d.]+)\s*-\s*(-?[\d.]+)\s*(?:/\s*([\d.]+|any)\s*)?$")


class ParamError(ValueError):
    """A bad definition or value; the message is shown to the user as is."""


def reserved_override(key: str) -> bool:
    return key.startswith(OVERRIDE_PREFIX) and key[len(OVERRIDE_PREFIX):] in RESERVED_OVERRIDES


def validate_definitions(defs: Any, what: str = "plugin parameter") -> None:
    """Check a `params`/`fields` array: ids, titles, types, regexes, uniqueness."""
    if not isinstance(defs, list):
        raise ParamError(f"Malformed {what}: params (must be array)")
    seen: set[str] = set()
    for index, item in enumerate(defs):
        if not isinstance(item, dict):
            raise ParamError(f"Malformed {what}: #{index + 1} (must be object)")
        _check_definition(item, what, seen)
        if item.get("type") == "toolset":
            _check_toolset(item, what, seen)


def _check_definition(item: dict[str, Any], what: str, seen: set[str]) -> None:
    kind = item.get("type")
    if kind == "group":
        return
    pid = item.get("id")
    if not isinstance(pid, str) or not _ID_RE.match(pid) or pid in RESERVED_KEYS or reserved_override(pid):
        raise ParamError(f"Malformed {what}: id ({pid!r})")
    if pid in seen:
        raise ParamError(f"Malformed {what}: duplicate id {pid}")
    seen.add(pid)
    title = item.get("title")
    if not isinstance(title, str) or not title.strip() or "<" in title or ">" in title:
        raise ParamError(f"Malformed {what}: title of {pid}")
    if kind not in CONTROL_TYPES:
        raise ParamError(f"Malformed {what}: unknown type for {pid}: {kind}")
    caption = item.get("caption")
    if caption is not None and (not isinstance(caption, str) or "<" in caption or ">" in caption):
        raise ParamError(f"Malformed {what}: caption of {pid}")
    regex = item.get("regex")
    if regex:
        try:
            re.compile(str(regex))
        except re.error:
            raise ParamError(f"Malformed {what}: regex of {pid}") from None
    if item.get("range") and not _RANGE_RE.match(str(item["range"])):
        raise ParamError(f"Malformed {what}: range of {pid}")


def _check_toolset(item: dict[str, Any], what: str, seen: set[str]) -> None:
    data = item.get("data")
    tools = data.get("tools") if isinstance(data, dict) else None
    if not isinstance(tools, list):
        raise ParamError(f"Malformed {what}: toolset {item.get('id')} needs data.tools")
    for tool in tools:
        if not isinstance(tool, dict) or not isinstance(tool.get("id"), str):
            raise ParamError(f"Malformed {what}: toolset {item.get('id')} has a tool without id")
        for field in tool.get("fields") or []:
            if not isinstance(field, dict) or field.get("type") not in TOOL_FIELD_TYPES:
                raise ParamError(f"Malformed {what}: toolset field type in {tool['id']}")
            _check_definition(field, what, seen)


def default_values(defs: list[dict[str, Any]]) -> dict[str, Any]:
    """The value each definition gives when the caller sends nothing."""
    values: dict[str, Any] = {}
    for item in defs:
        if not isinstance(item, dict) or item.get("type") in ("group", "toolset") or "id" not in item:
            continue
        value = item.get("value")
        if item.get("type") == "checkbox":
            value = bool(value)
        elif item.get("type") == "select" and isinstance(value, str):
            value = _first_option(value)
        elif item.get("type") == "text" and item.get("variant") == "number":
            value = _number_or_none(value)
        values[item["id"]] = value if value is not None else ""
    return values


def _first_option(csv: str) -> str:
    first = csv.split(",")[0].strip()
    match = re.search(r"\[([\w\-.]*)\]\s*$", first)
    return match.group(1) if match else first


def _number_or_none(value: Any) -> float | int | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    try:
        number = float(str(value))
    except ValueError:
        return None
    return int(number) if number.is_integer() else number


def validate_values(defs: list[dict[str, Any]], values: dict[str, Any]) -> None:
    """required / regex / range checks on the values a job will run with."""
    for item in defs:
        if not isinstance(item, dict) or "id" not in item:
            continue
        pid, raw = item["id"], values.get(item["id"])
        text = "" if raw is None else (raw if isinstance(raw, str) else str(raw))
        if item.get("required") and not text.strip():
            raise ParamError(f"Missing required parameter: {item.get('title') or pid}")
        if text and item.get("regex") and not re.search(str(item["regex"]), text):
            raise ParamError(f"Parameter does not match its pattern: {item.get('title') or pid}")
        if text and item.get("range"):
            _check_range(item, text)


def _check_range(item: dict[str, Any], text: str) -> None:
    match = _RANGE_RE.match(str(item["range"]))
    try:
        number = float(text)
    except ValueError:
        raise ParamError(f"Parameter is not a number: {item.get('title') or item['id']}") from None
    if match and not float(match.group(1)) <= number <= float(match.group(2)):
        raise ParamError(f"Parameter is out of range {item['range']}: {item.get('title') or item['id']}")
