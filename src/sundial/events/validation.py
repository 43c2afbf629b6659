"""Save-time validation of events: everything a job will need must exist and make sense.

Refusing a bad event when it is saved is far kinder than failing its jobs at 3 a.m.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from typing import Any

from sundial.plugins.params import (
    ParamError,
    default_values,
    reserved_override,
    validate_definitions,
    validate_values,
)
from sundial.scheduler.triggers import TriggerError, ValidationContext, normalise_triggers, validate_triggers

LAUNCH_CONTEXT_KEYS = ("command", "script", "uid", "gid", "cwd", "env", "kill", "runner")
CONDITION_RE = re.compile(r"^(start|complete|success|warning|error|user|critical|abort|tag:\w+|alert_new|"
                          r"alert_cleared|continue|instant)$")
ACTION_TYPES = frozenset({"email", "web_hook", "run_event", "channel", "snapshot", "ticket", "plugin", "suspend",
                          "disable", "delete", "tag", "label", "store", "fetch"})
LIMIT_TYPES = frozenset({"time", "log", "mem", "cpu", "job", "queue", "retry", "file", "day", "tag"})
DAY_CONDITIONS = frozenset({"start", "complete", "success", "warning", "error", "user", "critical", "abort"})
ALGOS = frozenset({"random", "round_robin", "prefer_first_natural", "prefer_last_natural", "prefer_first",
                   "prefer_last", "least_cpu", "least_mem", "fewest_jobs"})


class EventError(ValueError):
    """A refused event; `code` is the xyOps error code."""

    def __init__(self, description: str, code: str = "api") -> None:
        super().__init__(description)
        self.code = code
        self.description = description


Lookup = Callable[[str], dict[str, Any] | None]


def strip_launch_context(doc: dict[str, Any]) -> dict[str, Any]:
    """Clients may never set how a process is launched: that comes from the plugin only."""
    return {k: v for k, v in doc.items() if k not in LAUNCH_CONTEXT_KEYS}


def is_workflow(event: dict[str, Any]) -> bool:
    return event.get("type") == "workflow"


def validate_event(event: dict[str, Any], *, categories: Lookup, plugins: Lookup, tags: Lookup,
                   scheduler_plugins: list[str], events: Lookup | None = None) -> None:
    """Raise EventError for the first problem of a complete (merged) event record."""
    _check_basics(event)
    if not categories(str(event.get("category"))):
        raise EventError(f"Category not found: {event.get('category')}")
    if is_workflow(event):
        event["plugin"], event["targets"] = "_workflow", []
    else:
        _check_target_fields(event)
        _check_plugin(event, plugins)
    for tag in event.get("tags") or []:
        if not isinstance(tag, str) or not re.fullmatch(r"\w+", tag) or not tags(tag):
            raise EventError(f"Unknown tag: {tag}")
    _check_fields(event, plugins)
    validate_limits(event.get("limits") or [])
    own = event.get("id")
    validate_actions(event.get("actions") or [], plugins,
                     None if events is None else (lambda i: event if i == own else events(i)))
    try:
        validate_triggers(event.get("triggers") or [], ValidationContext(
            scheduler_plugins=scheduler_plugins, check_plugin_params=_scheduler_params_check(plugins)))
    except TriggerError as exc:
        raise EventError(exc.description) from None


def _scheduler_params_check(plugins: Lookup) -> Callable[[str, Mapping[str, Any]], str | None]:
    """A plugin trigger's params must satisfy its scheduler plugin's parameter rules."""
    def check(plugin_id: str, params: Mapping[str, Any]) -> str | None:
        plugin = plugins(plugin_id) or {}
        try:
            validate_values(plugin.get("params") or [], dict(params))
        except ParamError as exc:
            return str(exc)
        return None

    return check


def _check_basics(event: dict[str, Any]) -> None:
    for key, kind in (("params", dict), ("tags", list), ("targets", list), ("limits", list),
                      ("actions", list), ("triggers", list), ("fields", list)):
        if key in event and not isinstance(event[key], kind):
            raise EventError(f"Malformed event parameter: {key} (must be {'object' if kind is dict else 'array'})")
    for key in (event.get("params") or {}):
        if reserved_override(key):
            raise EventError(f"Reserved parameter name: {key}")


def _check_target_fields(event: dict[str, Any]) -> None:
    targets = event.get("targets")
    if not targets:
        raise EventError("Event has no targets specified.")
    bad = next((t for t in targets if not isinstance(t, str) or not t), None)
    if bad is not None:
        raise EventError(f"Malformed target: {bad}")
    algo = event.get("algo")
    if not isinstance(algo, str) or not re.fullmatch(r"[\w:]+", algo):
        raise EventError("Missing parameter: algo" if not algo else "Malformed parameter: algo")
    if algo not in ALGOS and not algo.startswith("monitor:"):
        raise EventError(f"Unknown algorithm: {algo}")


def _check_plugin(event: dict[str, Any], plugins: Lookup) -> None:
    plugin_id = event.get("plugin")
    if not isinstance(plugin_id, str) or not plugin_id:
        raise EventError("Event has no plugin specified.")
    if plugin_id.startswith("_"):
        return
    plugin = plugins(plugin_id)
    if plugin is None:
        raise EventError(f"Plugin not found: {plugin_id}")
    if plugin.get("type", "event") != "event":
        raise EventError(f"Plugin is not an event plugin: {plugin_id}")
    try:
        validate_values(plugin.get("params") or [], event.get("params") or {})
    except ParamError as exc:
        raise EventError(str(exc)) from None


def _check_fields(event: dict[str, Any], plugins: Lookup) -> None:
    """Field definitions must be sound, and a field may not shadow a locked plugin param (its
    value would let a non-admin change what the administrator locked)."""
    try:
        validate_definitions(event.get("fields") or [], "event field")
    except ParamError as exc:
        raise EventError(str(exc)) from None
    plugin = plugins(str(event.get("plugin"))) if not is_workflow(event) else None
    locked = {d.get("id") for d in (plugin or {}).get("params") or [] if isinstance(d, dict) and d.get("locked")}
    for field in event.get("fields") or []:
        if isinstance(field, dict) and field.get("id") in locked:
            raise EventError(f"Malformed user field '{field['id']}': ID is already in use (as plugin parameter).")


def validate_limits(limits: list[Any]) -> None:
    """Each limit, as xyOps words it: "Malformed limit entry #N: <problem>"."""
    has_job = False
    queue_on = False
    for index, item in enumerate(limits):
        prefix = f"Malformed limit entry #{index + 1}"
        if not isinstance(item, dict):
            raise EventError(f"{prefix} (not an object)")
        if "enabled" not in item:
            raise EventError(f"{prefix}: Missing enabled flag")
        kind = item.get("type")
        if kind not in LIMIT_TYPES:
            raise EventError(f"{prefix}: Unknown type")
        problem = _limit_problem(item, str(kind))
        if problem:
            raise EventError(f"{prefix}: {problem}")
        if item.get("enabled") and kind == "job":
            has_job = True
        if item.get("enabled") and kind == "queue" and _num(item.get("amount")) > 0:
            queue_on = True
    if queue_on and not has_job:
        raise EventError("Malformed limit list: a queue limit needs an enabled job limit")


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _is_num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_LIMIT_RULES: dict[str, tuple[tuple[str, bool, str], ...]] = {
    # type: (field, required (truthy number) or optional (number when set), problem text)
    "mem": (("amount", True, "Invalid memory amount (not a number)"),
            ("duration", False, "Invalid memory duration (not a number)")),
    "cpu": (("amount", True, "Invalid CPU amount (not a number)"),
            ("duration", False, "Invalid CPU duration (not a number)")),
    "log": (("amount", True, "Invalid max log size (not a number)"),),
    "time": (("duration", True, "Invalid time limit (not a number)"),),
    "job": (("amount", True, "Invalid max jobs (must be a positive number)"),),
    "retry": (("amount", False, "Invalid max retries (not a number)"),
              ("duration", False, "Invalid retry delay (not a number)")),
    "queue": (("amount", False, "Invalid max queue (not a number)"),),
    "tag": (("amount", False, "Invalid max tags (not a number)"),),
    "file": (("amount", False, "Invalid max files (not a number)"),
             ("size", False, "Invalid max file size (not a number)")),
    "day": (("amount", False, "Invalid max condition count (not a number)"),),
}


def _limit_problem(item: dict[str, Any], kind: str) -> str | None:
    """The first thing wrong with one limit (events spec §8.3), or None."""
    if kind == "day" and item.get("condition") not in DAY_CONDITIONS:
        return "Invalid condition (unknown)"
    for field, required, problem in _LIMIT_RULES.get(kind, ()):
        value = item.get(field)
        if (required and (not _is_num(value) or not value)) or (value and not _is_num(value)):
            return problem
    if kind == "job" and _num(item.get("amount")) <= 0:
        return "Invalid max jobs (must be a positive number)"
    accept = item.get("accept")
    if kind == "file" and accept and not isinstance(accept, str):
        return "Invalid file type list (not a string)"
    if kind == "file" and accept and re.search(r"[^\w\s\-.,]", accept):
        return "Invalid file type list (contains illegal characters)"
    return None


def validate_actions(actions: list[Any], plugins: Lookup | None = None, events: Lookup | None = None) -> None:
    """Save-time action checks (events spec §10.4), each error naming its entry as xyOps does
    ("Malformed action entry #N: ..."); `enabled` is optional (absent means disabled)."""
    for index, item in enumerate(actions):
        prefix = f"Malformed action entry #{index + 1}"
        if not isinstance(item, dict):
            raise EventError(f"{prefix} (not an object)")
        problem = _action_problem(item, plugins, events)
        if problem:
            raise EventError(f"{prefix}: {problem}")


def _action_problem(item: dict[str, Any], plugins: Lookup | None, events: Lookup | None) -> str | None:
    """The first thing wrong with one action, or None."""
    if not isinstance(item.get("condition"), str) or not CONDITION_RE.match(item["condition"]):
        return f"unknown condition {item.get('condition')!r}"
    if item.get("type") not in ACTION_TYPES:
        return f"unknown type {item.get('type')!r}"
    problem = _action_fields_problem(item)
    if problem is None and item["type"] == "plugin" and plugins is not None:
        problem = _action_plugin_problem(item, plugins)
    if problem is None and item["type"] == "run_event" and events is not None:
        problem = _action_event_problem(item, events)
    return problem


def _action_plugin_problem(item: dict[str, Any], plugins: Lookup) -> str | None:
    """A plugin action names an existing action plugin, and its params pass that plugin's rules."""
    plugin_id = str(item.get("plugin_id"))
    plugin = plugins(plugin_id)
    if plugin is None or plugin.get("type") != "action":
        return f"not an Action Plugin: {plugin_id}"
    params = item.get("params")
    if params is not None and not isinstance(params, dict):
        return "plugin params must be an object"
    try:
        validate_values(plugin.get("params") or [], dict(params or {}))
    except ParamError as exc:
        return str(exc)
    return None


def _action_event_problem(item: dict[str, Any], events: Lookup) -> str | None:
    """A run_event action names an existing event, and its params pass that event's field rules."""
    event_id = str(item.get("event_id"))
    target = events(event_id)
    if target is None:
        return f"Event not found: {event_id}"
    params = item.get("params")
    if params is not None and not isinstance(params, dict):
        return "run_event params must be an object"
    fields = [f for f in target.get("fields") or [] if isinstance(f, dict)]
    values = {**default_values(fields), **(target.get("params") or {}), **(params or {})}
    try:
        validate_values(fields, values)
    except ParamError as exc:
        return str(exc)
    return None


def _action_fields_problem(item: dict[str, Any]) -> str | None:
    kind = item["type"]
    id_field = {"web_hook": "web_hook", "channel": "channel_id", "plugin": "plugin_id", "run_event": "event_id",
                "store": "bucket_id", "fetch": "bucket_id"}.get(kind)
    if id_field and not re.fullmatch(r"\w+", str(item.get(id_field) or "")):
        return f"{kind} needs {id_field}"
    if kind == "email":
        users, email = item.get("users") or [], item.get("email") or ""
        if not isinstance(users, list) or not isinstance(email, str) or not (users or email.strip()):
            return "email needs users or an email address"
    if kind == "tag" and (not isinstance(item.get("tags"), list) or not item["tags"]):
        return "tag needs a non-empty tags list"
    if kind == "label" and (not isinstance(item.get("label"), str) or re.search(r"[<>]", item["label"])):
        return "label must be text without < or >"
    return None


def prepare_event(event: dict[str, Any], event_id: str) -> dict[str, Any]:
    """Stored form: launch context dropped, triggers normalised (magic keys become tokens)."""
    doc = strip_launch_context(copy.deepcopy(event))
    doc["triggers"] = normalise_triggers(doc.get("triggers") or [], event_id)
    for key, default in (("params", {}), ("tags", []), ("limits", []), ("actions", []), ("fields", []),
                         ("icon", ""), ("notes", "")):
        doc.setdefault(key, copy.deepcopy(default))
    return doc


def lock_params(event: dict[str, Any], plugin: dict[str, Any] | None, previous: dict[str, Any] | None) -> None:
    """Non-admins can never change locked plugin params: keep the stored (or default) value."""
    if not plugin:
        return
    params = event.setdefault("params", {})
    for item in plugin.get("params") or []:
        if isinstance(item, dict) and item.get("locked") and "id" in item:
            old = (previous or {}).get("params", {})
            params[item["id"]] = old.get(item["id"], item.get("value", "")) if previous else item.get("value", "")
