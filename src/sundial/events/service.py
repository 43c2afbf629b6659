"""Create, update and delete events: validation, locked params, audit, delete guards."""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from sundial.activity import ClientInfo
from sundial.events.validation import EventError, lock_params, prepare_event, strip_launch_context, validate_event
from sundial.objects import ObjectError, ObjectKind, ObjectStore
from sundial.storage.engine import Tx
from sundial.storage.lists import ConfigList

EVENT = ObjectKind("events", "event", "Event", "e", "event", exists_message="That Event ID already exists: {id}")
Extra = Callable[[Tx], Awaitable[None]]


class EventStateStore(Protocol):
    """The scheduler's per-event state (cursor, every-Nth counter), as `update_state` edits it.

    ``check`` raises ValueError (with the message for the caller) before anything is saved;
    ``write`` runs inside the event's own transaction, under ``guard`` so that a scheduler
    tick in progress cannot overwrite the edit with what it planned before.
    """

    def check(self, update: Any) -> Any: ...

    def guard(self) -> AbstractAsyncContextManager[Any]: ...

    async def write(self, tx: Tx, event_id: str, edit: Any) -> None: ...


class EventService:
    def __init__(self, objects: ObjectStore, lists: dict[str, ConfigList]) -> None:
        self.objects = objects
        self.lists = lists
        self.events = lists["events"]
        self.active_count: Callable[[str], int] = lambda event_id: 0
        self.on_refused: Callable[[str, str], None] = lambda event_id, reason: None  # set to a logger at wiring
        self.state_store: EventStateStore | None = None  # the scheduler, set at wiring
        objects.add_delete_guard("categories", self._category_in_use)

    async def _category_in_use(self, category: dict[str, Any]) -> str | None:
        if any(e.get("category") == category["id"] for e in self.events.all()):
            return "Still in use by one or more events."
        return None

    def get(self, event_id: str) -> dict[str, Any] | None:
        return self.events.get(event_id)

    def find(self, id_or_title: str) -> dict[str, Any] | None:
        return self.events.get(id_or_title) or next(
            (e for e in self.events.all() if e.get("title") == id_or_title), None)

    def _validate(self, event: dict[str, Any]) -> None:
        plugins = self.lists["plugins"]
        validate_event(event, categories=self.lists["categories"].get, plugins=plugins.get,
                       tags=self.lists["tags"].get,
                       scheduler_plugins=[p["id"] for p in plugins.all() if p.get("type") == "scheduler"],
                       events=self.events.get)

    async def create(self, fields: dict[str, Any], *, is_admin: bool, username: str, actor: str,
                     client: ClientInfo) -> dict[str, Any]:
        from sundial.ids import generate_id

        event = strip_launch_context(copy.deepcopy(fields))
        event.setdefault("id", generate_id("e"))
        edit = self._state_edit(event)
        if not is_admin:
            lock_params(event, self.lists["plugins"].get(str(event.get("plugin"))), None)
        self._validate(event)
        doc = prepare_event(event, event["id"])

        async def save(extra: Extra | None) -> dict[str, Any]:
            return await self.objects.create(EVENT, self.events, doc, username=username, actor=actor, client=client,
                                             extra=extra)

        try:
            return await self._with_state(str(doc["id"]), edit, save)
        except ObjectError as exc:
            raise EventError(exc.description, exc.code) from None

    async def update(self, event_id: str, fields: dict[str, Any], *, is_admin: bool, actor: str,
                     client: ClientInfo) -> dict[str, Any]:
        current = self.events.get(event_id)
        if current is None:
            raise EventError(f"Event not found: {event_id}", "event")
        changes = strip_launch_context(copy.deepcopy(fields))
        edit = self._state_edit(changes)
        merged = {**copy.deepcopy(current), **changes}
        if not is_admin:
            lock_params(merged, self.lists["plugins"].get(str(merged.get("plugin"))), current)
        self._validate(merged)
        doc = prepare_event(merged, event_id)

        async def save(extra: Extra | None) -> dict[str, Any]:
            return await self.objects.update(EVENT, self.events, event_id, doc, actor=actor, client=client,
                                             extra=extra)

        return await self._with_state(event_id, edit, save)

    def _state_edit(self, fields: dict[str, Any]) -> Any:
        """Take `update_state` out of the fields (it is never stored on the event) and check it."""
        if "update_state" not in fields:
            return None
        raw = fields.pop("update_state")
        if raw is None or self.state_store is None:
            return None
        try:
            return self.state_store.check(raw)
        except ValueError as exc:
            raise EventError(str(exc)) from None

    async def _with_state(self, event_id: str, edit: Any,
                          save: Callable[[Extra | None], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        """Save the event; with a state edit, write it in the same transaction, between ticks."""
        store = self.state_store
        if edit is None or store is None:
            return await save(None)

        async def write(tx: Tx) -> None:
            await store.write(tx, event_id, edit)

        async with store.guard():
            return await save(write)

    async def apply_job_changes(self, event_id: str, update: dict[str, Any] | None, delete: bool,
                                actor: str) -> None:
        """A finished job asked to update or delete its event (plugin `update_event`/`delete_event`).

        Validated like any other change; a refused change is logged, never raised, since
        the job that asked is already over.
        """
        from sundial.activity import ClientInfo as Client

        client = Client(useragent="Sundial Job")
        try:
            if delete and event_id in self.events:
                await self.delete(event_id, actor=actor, client=client)
            elif update and event_id in self.events:
                await self.update(event_id, update, is_admin=True, actor=actor, client=client)
        except (EventError, ObjectError) as exc:
            self.on_refused(event_id, exc.description)

    async def delete(self, event_id: str, *, actor: str, client: ClientInfo) -> dict[str, Any]:
        if event_id not in self.events:
            raise EventError(f"Event not found: {event_id}", "event")
        active = self.active_count(event_id)
        if active:
            raise EventError(f"Failed to delete event: {active} active jobs found", "event")
        return await self.objects.delete(EVENT, self.events, event_id, actor=actor, client=client)
