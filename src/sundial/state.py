"""Global runtime state (`global/state`): scheduler switch, watches, counters.

Held in memory and written through as one record, so readers never touch the database.
"""

from __future__ import annotations

import copy
from typing import Any

from sundial.config import get_path, set_path
from sundial.storage.engine import Storage, Tx
from sundial.storage.records import get_record, put_record

STATE_KEY = "global/state"
DEFAULT_STATE: dict[str, Any] = {"scheduler": {"enabled": True}}


class StateService:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.state: dict[str, Any] = copy.deepcopy(DEFAULT_STATE)

    async def load(self) -> None:
        async with self.storage.read() as conn:
            stored = await get_record(conn, STATE_KEY)
        self.state = stored if isinstance(stored, dict) else copy.deepcopy(DEFAULT_STATE)

    def get(self, path: str, default: Any = None) -> Any:
        return get_path(self.state, path.split("."), default)

    async def update(self, tx: Tx, changes: dict[str, Any]) -> None:
        """Apply dot-path changes; memory follows only after the commit."""
        updated = copy.deepcopy(self.state)
        for path, value in changes.items():
            set_path(updated, path.split("."), value)
        await put_record(self.storage, tx, STATE_KEY, updated)

        def apply() -> None:
            self.state = updated

        tx.after_commit(apply)

    async def remove(self, tx: Tx, paths: list[str]) -> None:
        """Delete dot-path keys (a cancelled watch leaves no key behind, as in xyOps)."""
        updated = copy.deepcopy(self.state)
        for path in paths:
            *parents, leaf = path.split(".")
            node = get_path(updated, parents, None) if parents else updated
            if isinstance(node, dict):
                node.pop(leaf, None)
        await put_record(self.storage, tx, STATE_KEY, updated)

        def apply() -> None:
            self.state = updated

        tx.after_commit(apply)

    @property
    def scheduler_enabled(self) -> bool:
        return bool(self.get("scheduler.enabled", True))
