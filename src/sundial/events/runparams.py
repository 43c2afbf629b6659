"""The params a manually started job runs with (run_event, magic links).

The request's values, then the event's saved ones, then field defaults; locked values stay
what the administrator set; every plugin and field rule holds before anything is launched.
Refusals are ParamError, which the API answers with code `api`.
"""

from __future__ import annotations

from typing import Any

from sundial.plugins.params import ParamError, reserved_override, validate_values
from sundial.scheduler.triggers import js_truthy


def job_params(params: dict[str, Any], event: dict[str, Any], plugin: dict[str, Any] | None,
               force_locked: bool = True) -> dict[str, Any]:
    """The job's params: the request's, then the event's saved ones, then field defaults; locked
    plugin params and locked fields forced to their stored values (unless an administrator
    runs it: `force_locked=False`); required ones present; every plugin and field rule passed."""
    for key in params:
        if reserved_override(key):
            raise ParamError(f"Reserved parameter name: {key}")
    stored = event.get("params")
    saved: dict[str, Any] = stored if isinstance(stored, dict) else {}
    fields = [f for f in event.get("fields") or [] if isinstance(f, dict) and "id" in f]
    out = {**saved, **params}
    for item in fields:
        out.setdefault(item["id"], item.get("value"))
    defs = [d for d in (plugin or {}).get("params") or [] if isinstance(d, dict) and "id" in d]
    _force_locked(out, defs, lambda d: saved.get(d["id"], d.get("value")), "Missing required Plugin parameters.",
                  force_locked)
    _force_locked(out, fields, lambda f: f.get("value"), "Missing required event parameters.", force_locked)
    validate_values(defs, out)
    validate_values(fields, out)
    return out


def _force_locked(params: dict[str, Any], defs: list[dict[str, Any]], stored: Any, missing: str,
                  force: bool = True) -> None:
    for item in defs:
        if force and item.get("locked"):
            params[item["id"]] = stored(item)
    if any(item.get("required") and not js_truthy(params.get(item["id"])) for item in defs):
        raise ParamError(missing)
