"""Checks on secret parameters, run before anything is encrypted or stored.

Values are only measured, never shown: every message names the parameter, the variable
name or the limit. Fields come back normalised to `[{"name", "value"}]` in the order given,
which is exactly what gets encrypted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sundial.vault.errors import VaultError

# A secret becomes environment variables of a job; Linux refuses one env string over 128 KiB
# (MAX_ARG_STRLEN) and the whole environment shares ~2 MiB with argv, so stay well inside.
MAX_FIELDS_PER_SECRET = 100
MAX_NAME_LENGTH = 128
MAX_VALUE_BYTES = 64 * 1024
MAX_FIELDS_TOTAL_BYTES = 256 * 1024
MAX_ID_LENGTH = 128
MAX_ASSIGNMENTS = 1000

ASSIGNMENT_LISTS = ("events", "categories", "plugins", "web_hooks")

_POSIX_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OBJECT_ID = re.compile(r"[a-z0-9_]+")

# Names that would clobber JavaScript object internals in xyOps; refused there, refused here
# too so records stay portable back to xyOps.
RESERVED_NAMES = frozenset({
    "constructor", "__proto__", "__defineGetter__", "__defineSetter__", "__lookupGetter__",
    "__lookupSetter__", "hasOwnProperty", "isPrototypeOf", "propertyIsEnumerable", "toString",
    "toLocaleString", "valueOf", "0",
})


def _bad_name(name: str) -> VaultError:
    return VaultError("api", f"Invalid secret variable name: {name}")


def validate_name(name: object, *, posix: bool = False) -> str:
    """A variable name: xyOps's rule (anything but a reserved word) by default.

    The spec recommends POSIX environment names without enforcing them, so `A-B` is accepted;
    what no process environment can carry (`=`, NUL) is refused. `posix=True` is the strict rule.
    """
    if not isinstance(name, str) or not name:
        raise VaultError("api", "Secret variable name must be a non-empty string")
    if len(name) > MAX_NAME_LENGTH:
        raise VaultError("api", f"Secret variable name is too long (limit: {MAX_NAME_LENGTH} characters)")
    if name in RESERVED_NAMES:
        raise _bad_name(name)
    if posix and not _POSIX_ENV_NAME.fullmatch(name):
        raise _bad_name(name)
    if "=" in name or "\x00" in name:
        raise _bad_name(name)  # can never be an environment variable, even for imports
    return name


def _value_size(name: str, value: object) -> int:
    """UTF-8 size of a value; refuses what no process environment can carry."""
    if not isinstance(value, str):
        raise VaultError("api", f"Secret value must be a string: {name}")
    if "\x00" in value:
        raise VaultError("api", f"Secret value contains a NUL character: {name}")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise VaultError("api", f"Secret value is not valid Unicode text: {name}") from None
    if size > MAX_VALUE_BYTES:
        raise VaultError("api", f"Secret value is too large: {name} (limit: {MAX_VALUE_BYTES} bytes)")
    return size


def _field(item: object, index: int, posix: bool) -> tuple[dict[str, str], int]:
    if not isinstance(item, Mapping):
        raise VaultError("api", f"Malformed parameter: fields (item {index} is not an object)")
    name = validate_name(item.get("name"), posix=posix)
    size = _value_size(name, item.get("value"))
    return {"name": name, "value": item["value"]}, size + len(name)


def validate_fields(raw: object, *, posix: bool = False) -> list[dict[str, str]]:
    """The `fields` parameter of create/update_secret, normalised for encryption."""
    if not isinstance(raw, list):
        raise VaultError("api", "Parameter is not an array: fields")
    if len(raw) > MAX_FIELDS_PER_SECRET:
        raise VaultError("api", f"Too many secret fields (limit: {MAX_FIELDS_PER_SECRET})")
    fields: list[dict[str, str]] = []
    total = 0
    for index, item in enumerate(raw):
        # A name may repeat, as in xyOps (the spec does not forbid it): fields are kept as sent
        # and a job's environment takes the last value (spec §3, later fields overwrite).
        field, size = _field(item, index, posix)
        total += size
        fields.append(field)
    if total > MAX_FIELDS_TOTAL_BYTES:
        raise VaultError("api", f"Secret fields are too large in total "
                                f"(limit: {MAX_FIELDS_TOTAL_BYTES} bytes)")
    return fields


def field_names(fields: list[dict[str, str]]) -> list[str]:
    """The plaintext `names` metadata, regenerated whenever fields are sent."""
    return [field["name"] for field in fields]


def validate_object_id(raw: object, param: str = "id") -> str:
    """An id in the xyOps shape `^[a-z0-9_]+$`."""
    if raw is None or raw == "":
        raise VaultError("api", f"Missing parameter: {param}")
    if not isinstance(raw, str) or len(raw) > MAX_ID_LENGTH or not _OBJECT_ID.fullmatch(raw):
        raise VaultError("api", f"Malformed parameter: {param}")
    return raw


def validate_id_list(raw: object, param: str) -> list[str]:
    """An assignment list; xyOps stores a non-array as sent, Sundial refuses it."""
    if not isinstance(raw, list):
        raise VaultError("api", f"Parameter is not an array: {param}")
    if len(raw) > MAX_ASSIGNMENTS:
        raise VaultError("api", f"Too many entries in {param} (limit: {MAX_ASSIGNMENTS})")
    for index, item in enumerate(raw):
        if not isinstance(item, str) or len(item) > MAX_ID_LENGTH or not _OBJECT_ID.fullmatch(item):
            raise VaultError("api", f"Malformed parameter: {param} (item {index} is not a valid id)")
    return list(dict.fromkeys(raw))


def validate_assignments(params: Mapping[str, Any]) -> dict[str, list[str]]:
    """The assignment lists present in a create/update request (absent ones are left alone)."""
    return {name: validate_id_list(params[name], name) for name in ASSIGNMENT_LISTS if name in params}
