"""Shared parameter types for verb models (pydantic v2).

Models allow extra keys because xyOps objects carry free-form fields; the declared
fields are the ones whose types we guarantee, so a wrong type can never reach a handler.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, StringConstraints

RESERVED_WORDS = frozenset({
    "constructor", "__defineGetter__", "__defineSetter__", "hasOwnProperty", "__lookupGetter__",
    "__lookupSetter__", "isPrototypeOf", "propertyIsEnumerable", "toString", "valueOf",
    "__proto__", "toLocaleString", "0",
})
_TAGS = re.compile(r"<[^>]*>")


class Params(BaseModel):
    """Base of every verb's params: extra keys kept, declared keys type-checked."""

    # defer_build: each verb's validator is built on its first call rather than at import, so a
    # conductor holds only the validators of verbs it has served (~1.6 MiB and ~15 ms at start).
    model_config = ConfigDict(extra="allow", populate_by_name=True, defer_build=True)

    def fields_set(self) -> dict[str, Any]:
        """Only what the caller sent (declared and extra), for shallow merges."""
        return self.model_dump(exclude_unset=True)


class NoParams(Params):
    pass


def _check_id(value: str) -> str:
    if value in RESERVED_WORDS:
        raise ValueError(f"Invalid ID parameter: {value} (reserved word)")
    if not re.fullmatch(r"[a-z0-9_]+", value):
        raise ValueError("Malformed parameter: id")
    return value


def _check_title(value: str) -> str:
    if "<" in value or ">" in value:
        raise ValueError("Malformed title parameter: Cannot contain HTML metacharacters")
    if not value.strip():
        raise ValueError("Missing parameter: title")
    return value


def _check_icon(value: str) -> str:
    if value and not re.fullmatch(r"[\w\-]+", value):
        raise ValueError("Malformed icon parameter: Contains illegal characters")
    return value


def strip_html(value: str) -> str:
    return _TAGS.sub("", value)


ObjectId = Annotated[str, StringConstraints(max_length=64), AfterValidator(_check_id)]
Title = Annotated[str, StringConstraints(max_length=512), AfterValidator(_check_title)]
Icon = Annotated[str, StringConstraints(max_length=128), AfterValidator(_check_icon)]
Notes = Annotated[str, StringConstraints(max_length=65536), AfterValidator(strip_html)]
Flag = bool | int
Number = int | float
StrList = list[Annotated[str, StringConstraints(max_length=1024)]]


class IdParams(Params):
    """The params of every verb that names one record by id."""

    id: ObjectId


def _csv_to_list(value: Any) -> Any:
    """Query strings carry arrays as `a,b` or repeated keys; accept both."""
    if isinstance(value, str):
        return [part for part in value.split(",") if part]
    return value


CsvList = Annotated[StrList, BeforeValidator(_csv_to_list)]


def _zero_is_default(value: Any) -> Any:
    """xyOps reads `limit:0` as "not given"; database searches then page their default of 1 row."""
    return 1 if value in (0, "0") and not isinstance(value, bool) else value


# The `limit` of database searches (`search_*`, `get_event_history`): 0 means the default, 1 (core-api §4).
SearchLimit = Annotated[int, BeforeValidator(_zero_is_default)]


def find_reserved_key(value: Any, depth: int = 0) -> str | None:
    """Prototype words as keys anywhere in the params (xyOps crashed on `__proto__`)."""
    if depth > 64:
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if key in RESERVED_WORDS:
                return str(key)
            found = find_reserved_key(item, depth + 1)
            if found:
                return found
    elif isinstance(value, list):
        for item in value[:1000]:
            found = find_reserved_key(item, depth + 1)
            if found:
                return found
    return None
