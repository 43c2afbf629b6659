"""API errors and the HTTP status rule of the xyOps envelope."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

_STATUS = {"api": 400, "session": 403, "access": 403, "rate": 429, "notfound": 404}
_VERSIONED = re.compile(r"^[^?]+/v\d+(\?|/|$)")
_TAG_RE = re.compile(r"<[^>]*>")
_USER_NAMESPACE = "/api/user/"


class ApiError(Exception):
    """Raised anywhere below a verb; becomes `{"code": code, "description": ...}`."""

    def __init__(self, code: str | int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = _TAG_RE.sub("", description)


def http_status(code: str | int, path: str) -> int:
    """Errors map to HTTP statuses only on versioned paths (`/v1`), as in xyOps; the user
    manager's verbs (`/api/user/*`) never map them, even on `/v1` (core-api.md §3)."""
    if code == 0 or not _VERSIONED.match(path) or path.startswith(_USER_NAMESPACE):
        return 200
    if isinstance(code, int):
        return 200
    return _STATUS.get(code, 500)


_TYPE_NAMES = {
    "string_type": "string", "int_type": "number", "int_parsing": "number",
    "int_from_float": "number", "float_type": "number", "float_parsing": "number",
    "bool_type": "boolean", "bool_parsing": "boolean", "dict_type": "object",
    "model_type": "object", "model_attributes_type": "object",
}


def describe_validation(exc: ValidationError) -> str:
    """The first problem in xyOps wording; echoes no value but a non-string `id` (as xyOps does)."""
    err = exc.errors(include_input=False)[0]
    loc = ".".join(str(part) for part in err["loc"] if not isinstance(part, int) or True)
    kind = err["type"]
    if loc == "id" and kind == "string_type":
        shown = js_string(exc.errors()[0].get("input"))
        return f"Invalid ID parameter: {shown} (not a string)"
    if kind == "missing":
        return f"Missing parameter: {loc}"
    if kind == "list_type":
        return f"Parameter is not an array: {loc}"
    if kind in _TYPE_NAMES:
        return f"Parameter is not type {_TYPE_NAMES[kind]}: {loc}"
    if kind == "string_pattern_mismatch":
        return f"Malformed parameter: {loc}"
    if kind in ("string_too_long", "too_long"):
        return f"Parameter is too long: {loc} ({err['msg']})"
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    return f"Invalid parameter: {loc} ({err['msg']})"


def js_string(value: Any, depth: int = 0) -> str:
    """A value as JavaScript's String() shows it (null, true, 1,2, [object Object]), bounded."""
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))
    elif isinstance(value, list):
        text = ",".join("" if item is None else js_string(item, depth + 1) for item in value[:20]) \
            if depth < 4 else ""
    elif isinstance(value, dict):
        text = "[object Object]"
    else:
        text = str(value)
    return text[:100]


def validation_error(exc: ValidationError) -> ApiError:
    return ApiError("api", describe_validation(exc))
