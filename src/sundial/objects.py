"""Create, update and delete configuration objects, each with its activity record.

Categories, tags, roles, groups and the other `global/<list>` kinds share one life cycle
(stamp, store, audit); what differs between them is data in an `ObjectKind`.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sundial.activity import ActivityLog, ClientInfo
from sundial.ids import generate_id
from sundial.storage.engine import Storage, Tx
from sundial.storage.lists import ConfigList

# Fields a caller may never set directly on an object.
SERVER_FIELDS = ("username", "created", "modified", "revision")
# xyOps passes its list store's error through verbatim, so a missing id reads
# "Failed to delete role: Error: Item not found" (core-api.md §8.4); clients match on it.
ITEM_NOT_FOUND = "Error: Item not found"


class ObjectError(Exception):
    """A refused object change, with the xyOps error code for it."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


@dataclass(frozen=True)
class ObjectKind:
    list_name: str          # "categories": table and `global/<list>` name
    singular: str           # "category": response key and activity payload key
    label: str              # "Category": used in messages
    prefix: str             # ID prefix for generated ids
    code: str               # error code for update/delete failures
    defaults: dict[str, Any] = field(default_factory=dict)
    exists_message: str = "That {label} ID already exists: {id}"
    sort_order: bool = False
    action: str = ""        # activity action prefix when it differs from `singular`
    noun: str = ""          # how refusals name the kind when it differs from `label.lower()`

    @property
    def message_noun(self) -> str:
        return self.noun or self.label.lower()

    @property
    def privilege_suffix(self) -> str:
        return self.list_name


DeleteGuard = Callable[[dict[str, Any]], Awaitable[str | None]]
# Called after a committed change with ("create"|"update"|"delete", the object).
ChangeListener = Callable[[str, dict[str, Any]], None]


class ObjectStore:
    """The write path shared by every configuration-object kind."""

    def __init__(self, storage: Storage, activity: ActivityLog) -> None:
        self.storage = storage
        self.activity = activity
        self._guards: dict[str, list[DeleteGuard]] = {}
        self._listeners: dict[str, list[ChangeListener]] = {}

    def add_delete_guard(self, list_name: str, guard: DeleteGuard) -> None:
        """Let another domain refuse a delete (e.g. a category still used by events)."""
        self._guards.setdefault(list_name, []).append(guard)

    def on_change(self, list_name: str, listener: ChangeListener) -> None:
        """Hear about committed changes of one kind (e.g. re-match servers when groups change)."""
        self._listeners.setdefault(list_name, []).append(listener)

    async def create(self, kind: ObjectKind, items: ConfigList, fields: dict[str, Any], *,
                     username: str, actor: str, client: ClientInfo,
                     extra: Callable[[Tx], Awaitable[None]] | None = None) -> dict[str, Any]:
        now = int(time.time())  # records carry whole epoch seconds (spec: events-and-jobs.md §1)
        doc = {**copy.deepcopy(kind.defaults), **_without_server_fields(fields)}
        doc["id"] = doc.get("id") or generate_id(kind.prefix)
        if doc["id"] in items:
            raise ObjectError(kind.code, kind.exists_message.format(label=kind.label, id=doc["id"]))
        if kind.sort_order:  # always after the last one, whatever was sent (as xyOps does)
            doc["sort_order"] = max((int(o.get("sort_order") or 0) for o in items.all()), default=-1) + 1
        doc.update(username=username, created=now, modified=now, revision=1)
        async with self.storage.transaction() as tx:
            await items.insert(tx, doc)
            await self._audit(tx, kind, "create", doc, actor, client)
            if extra is not None:  # a related write that must commit with the object (or not at all)
                await extra(tx)
        return doc

    async def update(self, kind: ObjectKind, items: ConfigList, item_id: str, fields: dict[str, Any], *,
                     actor: str, client: ClientInfo, bump: bool = True,
                     extra: Callable[[Tx], Awaitable[None]] | None = None) -> dict[str, Any]:
        current = items.get(item_id)
        if current is None:
            raise ObjectError(kind.code, f"Failed to update {kind.message_noun}: {ITEM_NOT_FOUND}")
        doc = {**copy.deepcopy(current), **_without_server_fields(fields), "id": item_id}
        if bump:
            doc["modified"] = int(time.time())
            doc["revision"] = int(current.get("revision") or 0) + 1
        async with self.storage.transaction() as tx:
            await items.replace(tx, doc)
            await self._audit(tx, kind, "update", doc, actor, client)
            if extra is not None:
                await extra(tx)
        return doc

    async def multi_update(self, kind: ObjectKind, items: ConfigList, changes: list[dict[str, Any]], *,
                           actor: str, client: ClientInfo) -> list[str]:
        """Merge several partial objects at once (the UI's drag-to-reorder saves `sort_order` this way).

        As in xyOps: no `modified`/`revision` bump, unknown ids are skipped, and one
        `<kind>_multi_update` record names the fields the first item changed.
        """
        docs = []
        for change in changes:
            current = items.get(str(change.get("id")))
            if current is not None:
                docs.append({**copy.deepcopy(current), **_without_server_fields(change), "id": current["id"]})
        fields = sorted(k for k in _without_server_fields(changes[0]) if k != "id") if changes else []
        async with self.storage.transaction() as tx:
            for doc in docs:
                await items.replace(tx, doc)
                for listener in self._listeners.get(kind.list_name, []):
                    tx.after_commit(lambda listener=listener, doc=doc: listener("update", doc))  # type: ignore[misc]
            await self.activity.record(tx, f"{kind.action or kind.singular}_multi_update",
                                       f"Updated {len(docs)} {kind.list_name}: {', '.join(fields)}",
                                       client=client, username=actor, keywords=[d["id"] for d in docs],
                                       updated=fields)
        return [d["id"] for d in docs]

    async def delete(self, kind: ObjectKind, items: ConfigList, item_id: str, *, actor: str,
                     client: ClientInfo, extra: Callable[[Tx], Awaitable[None]] | None = None
                     ) -> dict[str, Any]:
        current = items.get(item_id)
        if current is None:
            raise ObjectError(kind.code, f"Failed to delete {kind.message_noun}: {ITEM_NOT_FOUND}")
        for guard in self._guards.get(kind.list_name, []):
            reason = await guard(current)
            if reason:
                raise ObjectError(kind.code, f"Failed to delete {kind.label.lower()}: {reason}")
        async with self.storage.transaction() as tx:
            await items.delete(tx, item_id)
            if extra is not None:
                await extra(tx)
            await self._audit(tx, kind, "delete", current, actor, client)
        return current

    async def _audit(self, tx: Tx, kind: ObjectKind, what: str, doc: dict[str, Any], actor: str,
                     client: ClientInfo) -> None:
        for listener in self._listeners.get(kind.list_name, []):
            tx.after_commit(lambda listener=listener: listener(what, doc))  # type: ignore[misc]
        await self.activity.record(tx, f"{kind.action or kind.singular}_{what}", str(doc.get("title") or doc["id"]),
                                   client=client, username=actor, keywords=[doc["id"]],
                                   **{kind.singular: doc})  # type: ignore[arg-type]


def _without_server_fields(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if k not in SERVER_FIELDS}


CATEGORY = ObjectKind("categories", "category", "Category", "ca", "category",
                      defaults={"enabled": True, "color": "", "icon": "", "notes": "", "limits": [],
                                "actions": []}, sort_order=True)
TAG = ObjectKind("tags", "tag", "Tag", "t", "tag", defaults={"icon": "", "notes": ""},
                 exists_message="Tag ID already exists: {id}")
ROLE = ObjectKind("roles", "role", "Role", "r", "role",
                  defaults={"enabled": True, "icon": "", "notes": "", "privileges": {},
                            "categories": [], "groups": []})
GROUP = ObjectKind("groups", "group", "Group", "g", "group",
                   defaults={"icon": "", "notes": "", "alert_actions": [], "max_jobs_per_server": 0},
                   sort_order=True)
API_KEY = ObjectKind("api_keys", "api_key", "API Key", "k", "api_key", action="apikey", noun="API Key")
