"""What each XYBK entry means for Sundial's storage: the one place that decides, used by both
import passes so the applying pass can never meet a line the checking pass let through.

Sundial's mapping of xyOps keys (admin-and-data.md §1.2):

| key | goes to |
|---|---|
| `global/<one of the 13 lists>` (+ pages, list commands) | that list's table, replaced whole |
| `global/users` roster | ignored: the user records themselves are the roster |
| `users/<name>` | the users table (password hash and salt as exported) |
| DB records of `jobs`, `activity`, `servers` | those tables (other indexes: reported, skipped) |
| binary keys (`files/...`, `logs/jobs/<id>/log.txt.gz`, avatars) | files under `data/` (see paths.py) |
| `global/key_canary`, `global/key_rotation_pending`, `sessions/...` | refused: vault state and logins never travel |
| anything else (`secrets/<id>`, `buckets/...`, `global/stats`, ...) | key/value records, as stored |
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sundial.auth.users import normalize
from sundial.backup.format import Command, DbRecord, Entry, LineError, is_binary_key
from sundial.backup.paths import BlobPaths, UnsafeKey
from sundial.storage.schema import CONFIG_LISTS

TABLE_INDEXES = {"jobs": 32, "activity": 32, "servers": 64}  # index -> longest id its table takes
REFUSED_PREFIXES = ("global/key_canary", "global/key_rotation_pending", "sessions/", "transfer_tokens/")
_LIST_PAGE = re.compile(r"^global/(\w+)/(-?\d+)$")
_ID = re.compile(r"^[\w\-.]+$")
SUPPORTED_COMMANDS = frozenset({"put", "delete", "listCreate", "listDelete", "listPush", "listUnshift"})


@dataclass
class ListState:
    """One configuration list as the file builds it: header, pages, pushed items."""

    header: dict[str, Any] | None = None
    pages: dict[int, list[Any]] = field(default_factory=dict)
    head: list[Any] = field(default_factory=list)
    tail: list[Any] = field(default_factory=list)

    def reset(self) -> None:
        self.header, self.pages, self.head, self.tail = None, {}, [], []

    def items(self) -> list[Any]:
        if self.header is not None:
            first, last = int(self.header.get("first_page", 0)), int(self.header.get("last_page", -1))
            numbers = [n for n in range(first, last + 1) if n in self.pages]
        else:
            numbers = sorted(self.pages)
        middle = [item for n in numbers for item in self.pages[n]]
        return [*reversed(self.head), *middle, *self.tail]


# What pass 2 writes, in file order: ("user", doc) | ("user_delete", norm) | ("record", key, value)
# | ("record_delete", key) | ("record_list_reset", key) | ("db", index, id, record)
Action = tuple[Any, ...]


@dataclass
class Counts:
    entries: int = 0
    db_records: int = 0
    keys: int = 0
    commands: int = 0
    files: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


class Planner:
    """Turns entries into actions; in the checking pass it also decodes binary values to `stage_dir`."""

    def __init__(self, paths: BlobPaths, stage_dir: Path | None = None) -> None:
        self.paths = paths
        self.stage_dir = stage_dir
        self.lists: dict[str, ListState] = {}
        self.blobs: dict[str, Path | None] = {}  # binary key -> staged file (None = delete)
        self.secrets: dict[str, Any] = {}  # first few secret records, for the key check
        self.counts = Counts()

    def plan(self, entry: Entry) -> list[Action]:
        self.counts.entries += 1
        if isinstance(entry, DbRecord):
            return self._db(entry)
        if isinstance(entry, Command):
            self.counts.commands += 1
            return self._command(entry)
        self.counts.keys += 1
        return self._put(entry.key, entry.value)

    # -- puts ----------------------------------------------------------------------------------
    def _put(self, key: str, value: Any) -> list[Action]:
        if _js_falsy(value):
            self.counts.skip("puts with an empty value")
            return []
        if key.startswith(REFUSED_PREFIXES):
            self.counts.skip("vault state, sessions and tokens (never imported)")
            return []
        if is_binary_key(key):
            return self._blob(key, value)
        target = self._list_target(key)
        if target is not None:
            return self._list_put(*target, value)
        if key == "global/users" or key.startswith("global/users/"):
            self.counts.skip("user roster entries (users come from their records)")
            return []
        parts = key.split("/")
        if parts[0] == "users" and len(parts) == 2:
            return self._user(parts[1], value)
        if key.startswith("secrets/") and len(self.secrets) < 3:
            self.secrets[key.removeprefix("secrets/")] = value
        return [("record", key, value)]

    def _list_target(self, key: str) -> tuple[str, int | None] | None:
        name = key.removeprefix("global/")
        if key.startswith("global/") and name in CONFIG_LISTS:
            return name, None
        match = _LIST_PAGE.match(key)
        if match and match.group(1) in CONFIG_LISTS:
            return match.group(1), int(match.group(2))
        return None

    def _list_put(self, name: str, page: int | None, value: Any) -> list[Action]:
        state = self.lists.setdefault(name, ListState())
        if not isinstance(value, dict):
            raise LineError(f"global/{name}: a list {'page' if page is not None else 'header'} must be an object")
        if page is None:
            if value.get("type") != "list":
                raise LineError(f"global/{name}: not a list header")
            state.header = value
        else:
            items = value.get("items")
            if not isinstance(items, list):
                raise LineError(f"global/{name}/{page}: a list page needs an items array")
            state.pages[page] = items
        return []

    def _user(self, norm: str, value: Any) -> list[Action]:
        if not isinstance(value, dict) or not isinstance(value.get("username"), str) or not value["username"]:
            raise LineError(f"users/{norm}: a user record needs a username")
        if normalize(value["username"]) != norm:
            raise LineError(f"users/{norm}: record is for user {value['username'][:60]}")
        return [("user", value)]

    def _blob(self, key: str, value: Any) -> list[Action]:
        try:
            self.paths.path_for(key)
        except UnsafeKey as exc:
            raise LineError(str(exc)) from None
        if not isinstance(value, str):
            raise LineError(f"{key}: binary value must be a base64 string")
        self.counts.files += 1
        if self.stage_dir is not None:
            try:
                data = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise LineError(f"{key}: binary value is not valid base64") from None
            staged = self.stage_dir / f"{len(self.blobs)}-{self.counts.entries}.bin"
            staged.write_bytes(data)
            self.blobs[key] = staged
        return []

    # -- commands ------------------------------------------------------------------------------
    def _command(self, entry: Command) -> list[Action]:
        key, args = entry.args[0], entry.args[1:]
        if entry.cmd not in SUPPORTED_COMMANDS:
            raise LineError(f"Storage command not supported by Sundial: {entry.cmd}")
        if entry.cmd == "put":
            self.counts.commands -= 1
            self.counts.keys += 1
            return self._put(key, args[0] if args else None)
        target = self._list_target(key)
        if target is not None and target[1] is None:
            return self._list_command(target[0], entry.cmd, args)
        if key == "global/users":
            self.counts.skip("user roster entries (users come from their records)")
            return []
        return self._plain_command(key, entry.cmd)

    def _list_command(self, name: str, cmd: str, args: list[Any]) -> list[Action]:
        state = self.lists.setdefault(name, ListState())
        if cmd in ("listDelete", "listCreate", "delete"):
            state.reset()
            return []
        value = args[0] if args else None
        items = value if isinstance(value, list) else ([] if value is None else [value])
        if cmd == "listPush":
            state.tail.extend(items)
        else:  # listUnshift puts the given items, in order, before the current first item
            state.head.extend(reversed(items))
        return []

    def _plain_command(self, key: str, cmd: str) -> list[Action]:
        if cmd in ("listPush", "listUnshift"):
            raise LineError(f"{cmd} is only supported on the configuration lists, not {key[:80]}")
        if key.startswith(REFUSED_PREFIXES):
            self.counts.skip("vault state, sessions and tokens (never imported)")
            return []
        if cmd == "listDelete":
            return [("record_list_reset", key)]
        if cmd == "listCreate":
            return [("record", key, {"type": "list", "length": 0, "page_size": 100, "first_page": 0,
                                     "last_page": 0})]
        if is_binary_key(key):
            try:
                self.paths.path_for(key)
            except UnsafeKey as exc:
                raise LineError(str(exc)) from None
            self.blobs[key] = None
            return []
        parts = key.split("/")
        if parts[0] == "users" and len(parts) == 2:
            return [("user_delete", parts[1])]
        return [("record_delete", key)]

    # -- database records ----------------------------------------------------------------------
    def _db(self, entry: DbRecord) -> list[Action]:
        limit = TABLE_INDEXES.get(entry.index)
        if limit is None:
            self.counts.skip(f"records of index {entry.index[:40]} (not stored by this conductor)")
            return []
        if len(entry.id) > limit or not _ID.match(entry.id):
            raise LineError(f"{entry.index} record id is malformed: {entry.id[:60]}")
        self.counts.db_records += 1
        return [("db", entry.index, entry.id, entry.record)]

    # -- end of the checking pass --------------------------------------------------------------
    def final_lists(self) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
        """Every touched list's final items, checked; also problems found in them."""
        problems: list[str] = []
        result: dict[str, list[dict[str, Any]]] = {}
        for name, state in self.lists.items():
            items: dict[str, dict[str, Any]] = {}
            for item in state.items():
                if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
                    problems.append(f"global/{name}: an item without a string id")
                    continue
                if len(item["id"]) > 64:
                    problems.append(f"global/{name}: item id is too long: {item['id'][:64]}...")
                    continue
                items.pop(item["id"], None)
                items[item["id"]] = item
            result[name] = list(items.values())
        return result, problems


def _js_falsy(value: Any) -> bool:
    """xyOps skips puts whose value is falsy in JavaScript ({} and [] are truthy there)."""
    if value is None or value is False or value == "":
        return True
    return isinstance(value, int | float) and not isinstance(value, bool) and value == 0


def check_secrets(planner: Planner, decrypts: Callable[[str, Any], bool] | None) -> list[str]:
    """Warnings for sampled secret records the conductor's key cannot open."""
    if decrypts is None:
        return []
    bad = [sid for sid, record in planner.secrets.items() if not decrypts(sid, record)]
    if not bad:
        return []
    return [f"Secret {', '.join(bad)} cannot be decrypted with this conductor's secret_key: the backup was made "
            "under another key. Put that system's secret_key in conf/ (or rotate it there first) to use them."]
