"""Server records: building one from a ``hello``, merging the stored copy, keywords, groups.

Pure functions, so the join rules of servers-groups-monitoring.md §1.1 and the membership rules
of §2.2 can be tested without sockets or a database.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any

from sundial.storage.search import normalize_words

Server = dict[str, Any]

#: Keys a ``hello`` may not set on the record: identity, bookkeeping and transient state belong to
#: the conductor. Everything else an agent's ``initial`` carries (title, icon, enabled, groups,
#: userData, ...) is kept, as xyOps does.
HELLO_DENY = frozenset({"id", "hostname", "info", "ip", "socket_id", "delete", "last_time_code",
                        "keywords", "created", "modified", "online", "autoGroup", "token", "nonce"})
#: Fresh values from the connection win over the stored record for these keys on every join.
FRESH_KEYS = ("info", "hostname", "ip", "socket_id")
#: Never written to the database: they only mean something while a socket is open.
TRANSIENT_KEYS = ("socket_id", "delete", "last_time_code")
INFO_OBJECTS = ("os", "memory", "cpu", "virt", "features", "monitors", "deltas")


def initial_fields(hello: Mapping[str, Any]) -> dict[str, Any]:
    """The ``initial`` keys of a hello, type-checked where the conductor relies on the type."""
    fields = {k: copy.deepcopy(v) for k, v in hello.items() if k not in HELLO_DENY}
    for key in ("title", "icon"):
        if key in fields and not isinstance(fields[key], str):
            fields.pop(key)
    if "enabled" in fields and not isinstance(fields["enabled"], bool):
        fields["enabled"] = bool(fields["enabled"])
    if "groups" in fields:
        groups = fields["groups"]
        fields["groups"] = [g for g in groups if isinstance(g, str)] if isinstance(groups, list) else []
    return fields


def joined_record(*, server_id: str, hostname: str, ip: str, socket_id: str, hello: Mapping[str, Any],
                  stored: Mapping[str, Any] | None, now: float) -> Server:
    """The online record of a server that just authenticated (``addServer`` steps 1-3, minus groups)."""
    info = hello.get("info")
    fresh: Server = {**initial_fields(hello), "id": server_id, "hostname": hostname, "ip": ip,
                     "socket_id": socket_id, "info": copy.deepcopy(info) if isinstance(info, dict) else {}}
    if stored is not None:
        kept = {k: copy.deepcopy(v) for k, v in stored.items() if k not in FRESH_KEYS and k not in TRANSIENT_KEYS}
        record = {**fresh, **kept}
    else:
        record = {**fresh, "created": now, "enabled": bool(fresh.get("enabled", True)),
                  "autoGroup": not fresh.get("groups")}
        record.setdefault("title", "")
        record.setdefault("icon", "")
    record["modified"] = now
    ensure_info(record["info"])
    return record


def ensure_info(info: dict[str, Any]) -> None:
    """Every record has the info sub-objects the UI and selection algorithms read."""
    for key in INFO_OBJECTS:
        if not isinstance(info.get(key), dict):
            info[key] = {} if key != "virt" or info.get(key) is not False else False
    cpu = info["cpu"]
    maker = str(cpu.get("manufacturer") or "")
    if maker in ("", "-", "unknown"):
        maker = str(cpu.get("vendor") or "")
    cpu["combo"] = " ".join(part for part in (maker, str(cpu.get("brand") or "")) if part)


def identity_changes(stored: Mapping[str, Any] | None, hostname: str, ip: str) -> list[str]:
    """Human-readable notes when a known server comes back under another name or address."""
    if not stored:
        return []
    notes = []
    if stored.get("hostname") and stored["hostname"] != hostname:
        notes.append(f"Server hostname changed: {stored['hostname']} → {hostname} (id {stored.get('id')})")
    if stored.get("ip") and stored["ip"] != ip:
        notes.append(f"Server IP address changed: {stored['ip']} → {ip} ({hostname})")
    return notes


def _text(node: Any, *path: str) -> str:
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return str(node) if isinstance(node, str | int | float) and not isinstance(node, bool) else ""


def keywords(record: Mapping[str, Any]) -> str:
    """The CSV search text of a server (hostname, ip, groups, OS, CPU, virtualisation, title)."""
    info = record.get("info") or {}
    words = [str(record.get("hostname") or ""), str(record.get("ip") or ""),
             *[str(g) for g in record.get("groups") or []],
             _text(info, "os", "platform"), _text(info, "os", "distro"), _text(info, "os", "release"),
             _text(info, "os", "arch"), _text(info, "cpu", "manufacturer"), _text(info, "cpu", "brand"),
             _text(info, "virt", "vendor"), _text(info, "virt", "type"), _text(info, "virt", "location"),
             str(record.get("title") or "")]
    return ",".join(w for w in words if w)


def stored_copy(record: Mapping[str, Any]) -> Server:
    """What goes to the database: the record without socket-bound state."""
    return {k: copy.deepcopy(v) for k, v in record.items() if k not in TRANSIENT_KEYS}


def search_columns(record: Mapping[str, Any]) -> dict[str, Any]:
    """Indexed columns of the ``servers`` table: space-padded lower-case words, like the other
    searchable tables, so ``os_distro:debian`` or ``cpu_brand:xeon`` is one word match."""
    info = record.get("info") or {}
    cpu = info.get("cpu") if isinstance(info.get("cpu"), dict) else {}
    cores = cpu.get("cores") if isinstance(cpu, dict) else 0

    def words(value: Any, size: int) -> str:
        return normalize_words(value)[:size]

    return {
        "hostname": str(record.get("hostname") or "")[:255], "ip": str(record.get("ip") or "")[:64],
        "enabled": 1 if record.get("enabled", True) else 0,
        "groups": normalize_words(list(record.get("groups") or [])),
        "keywords": normalize_words(str(record.get("keywords") or keywords(record)).split(",")),
        "os_platform": words(_text(info, "os", "platform"), 64), "os_distro": words(_text(info, "os", "distro"), 128),
        "os_release": words(_text(info, "os", "release"), 128), "os_arch": words(_text(info, "os", "arch"), 32),
        "cpu_brand": words(_text(info, "cpu", "brand"), 255), "cpu_virt": words(_text(info, "virt", "vendor"), 128),
        "cpu_cores": int(cores) if isinstance(cores, int) and not isinstance(cores, bool) else 0,
        "created": float(record.get("created") or 0), "modified": float(record.get("modified") or 0),
    }


# -- groups (servers-groups-monitoring.md §2.2) ---------------------------------------------------

@functools.lru_cache(maxsize=1024)
def _pattern(source: str) -> re.Pattern[str] | None:
    """A group's ``hostname_match``; one that does not compile matches nothing (manual only)."""
    try:
        return re.compile(source)
    except (re.error, RecursionError, OverflowError):
        return None


def hostname_matches(pattern: Any, hostname: str) -> bool:
    compiled = _pattern(pattern) if isinstance(pattern, str) and pattern else None
    return bool(compiled and compiled.search(hostname))


def ordered_groups(groups: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Groups in list order: by ``sort_order``, ties in stored order."""
    def order(group: Mapping[str, Any]) -> float:
        value = group.get("sort_order")
        return float(value) if isinstance(value, int | float) else 0.0

    return sorted(groups, key=order)


def matching_groups(hostname: str, groups: Iterable[Mapping[str, Any]]) -> list[str]:
    """Automatic membership: every group whose pattern is found in the hostname, in list order."""
    return [str(g["id"]) for g in ordered_groups(groups) if hostname_matches(g.get("hostname_match"), hostname)]


def assign_groups(record: Server, groups: Iterable[Mapping[str, Any]]) -> bool:
    """Apply the membership rules to ``record`` in place; True when its groups changed.

    Manual servers keep their groups minus deleted ones, and fall back to automatic membership
    when none is left, so a server can never be stranded in no group by a deletion.
    """
    all_groups = list(groups)
    before = list(record.get("groups") or [])
    if not record.get("autoGroup", True):
        known = {str(g.get("id")) for g in all_groups}
        kept = [g for g in before if g in known]
        if kept:
            record["groups"] = kept
            return kept != before
        record["autoGroup"] = True
    record["groups"] = matching_groups(str(record.get("hostname") or ""), all_groups)
    return record["groups"] != before
