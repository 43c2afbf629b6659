"""`admin_delete_data`: bulk deletion of lists, index records, users and secret payloads.

The counterpart of an import's `listDelete` lines, run as a `maint` internal job like an
import: one at a time, the scheduler paused first (deleted events must not fire half-way),
each item in its own transaction, and every in-memory copy reloaded at the end. Items this
conductor does not store (buckets, tickets, snapshots, alerts) are reported, not refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, delete, select, true
from sqlalchemy.sql.elements import ColumnElement

from sundial.activity import ACTIVITY_INDEX, ClientInfo
from sundial.backup.export import INDEXES
from sundial.backup.service import MAINT, BackupBusy, reload_after_import
from sundial.fleet.store import SAMPLE_PREFIX, SERVERS_INDEX
from sundial.internal_jobs import InternalJobHandle
from sundial.jobs.store import JOBS_INDEX
from sundial.services import Services
from sundial.storage.schema import CONFIG_LISTS, activity, jobs, records, servers
from sundial.storage.search import QueryError, SearchIndex, compile_query
from sundial.vault.store import SECRET_PREFIX

NOT_STORED = {"bucketData": "bucket data", "bucketFiles": "bucket files"}
_TABLES: dict[str, tuple[Any, SearchIndex, ColumnElement[bool]]] = {
    "jobs": (jobs, JOBS_INDEX, jobs.c.final == 1),  # active jobs are the job manager's, never deleted here
    "activity": (activity, ACTIVITY_INDEX, true()),
    "servers": (servers, SERVERS_INDEX, true()),
}


class DeleteRefused(Exception):
    """The request as a whole is refused (nothing selected); the API answers code `admin`."""


@dataclass
class DeleteReport:
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add(self, what: str, count: int) -> None:
        self.counts[what] = self.counts.get(what, 0) + count

    def summary(self) -> str:
        done = ", ".join(f"{n} {what}" for what, n in self.counts.items()) or "nothing"
        return f"Deleted {done}" + (f" ({len(self.errors)} error(s))" if self.errors else "")

    def markdown(self) -> str:
        parts = [f"- **{what}:** {n}" for what, n in self.counts.items()]
        for title, lines in (("Errors", self.errors), ("Warnings", self.warnings)):
            if lines:
                parts += ["", f"### {title}", "", *[f"- {line}" for line in lines]]
        return "\n".join(parts)


def check_items(items: Any) -> list[dict[str, Any]]:
    if not isinstance(items, list) or not items:
        raise DeleteRefused("No data selected for deletion.")
    return [item if isinstance(item, dict) else {"type": repr(item)[:40]} for item in items]


class DataDeleter:
    """Runs one `admin_delete_data` request; built per request from `Services`."""

    def __init__(self, services: Services, *, username: str, actor: str, client: ClientInfo) -> None:
        self.services = services
        self.username, self.actor, self.client = username, actor, client
        self.report = DeleteReport()

    def start(self, items: list[dict[str, Any]], email: str) -> str:
        """Refuse while another maintenance job runs; else start the internal job and return its id."""
        jobs_registry = self.services.internal_jobs
        if jobs_registry.running(MAINT) or self.services.vault.rotating:
            raise BackupBusy()
        handle = jobs_registry.start("Custom bulk data delete", MAINT, self.username, email=email)
        jobs_registry.run_in_background(handle, lambda h: self.run(h, items))
        return handle.id

    def start_search_delete(self, index: str, query: str) -> str:
        """`bulk_search_delete`: one index's matching records, without pausing the scheduler.
        An unknown index or a query that does not compile is refused before anything starts."""
        source = _TABLES.get(index)
        if source is None:
            raise DeleteRefused(f"Unknown index: {index}")
        try:
            compile_query(query, source[1])
        except QueryError as exc:
            raise DeleteRefused(str(exc)) from None
        jobs_registry = self.services.internal_jobs
        handle = jobs_registry.start(f"Custom bulk deletion ({index})", MAINT, self.username)

        async def work(job: InternalJobHandle) -> None:
            await self._index(index, query)
            await job.finish(description=self.report.summary(), details=self.report.markdown(),
                             counts={"deleted": dict(self.report.counts)})

        jobs_registry.run_in_background(handle, work)
        return handle.id

    async def run(self, handle: InternalJobHandle, items: list[dict[str, Any]]) -> None:
        await self._pause_scheduler()
        for number, item in enumerate(items, start=1):
            handle.progress(number / (len(items) + 1), f"Item {number} of {len(items)}")
            try:
                await self._item(item)
            except QueryError as exc:
                self.report.errors.append(f"Item {number} ({item.get('type')}): bad query: {exc}")
        await reload_after_import(self.services)
        await handle.finish(code=0 if not self.report.errors else "delete", description=self.report.summary(),
                            details=self.report.markdown(), counts={"deleted": dict(self.report.counts)})

    async def _pause_scheduler(self) -> None:
        services = self.services
        if not services.state.scheduler_enabled:
            return
        async with services.storage.transaction() as tx:
            await services.state.update(tx, {"scheduler.enabled": False})
            await services.activity.record(tx, "state_update", "scheduler.enabled = False", client=self.client,
                                           username=self.actor, keywords=["scheduler.enabled"],
                                           key="scheduler.enabled", value=False)
        self.report.warnings.append("The scheduler was disabled for the deletion; re-enable it when ready.")

    async def _item(self, item: dict[str, Any]) -> None:
        kind = item.get("type")
        if kind == "list":
            await self._list(str(item.get("key") or ""))
        elif kind == "index":
            await self._index(str(item.get("index") or ""), str(item.get("query") or "*"))
        elif kind == "users":
            await self._users()
        elif kind == "secretData":
            await self._prefix(SECRET_PREFIX, "secret payloads")
        elif kind in NOT_STORED:
            self.report.warnings.append(f"This conductor stores no {NOT_STORED[kind]}; nothing to delete.")
        else:
            self.report.errors.append(f"Unknown item type: {str(kind)[:40]}")

    async def _list(self, key: str) -> None:
        name = key.removeprefix("global/")
        if key == "global/users":
            self.report.warnings.append("global/users: the roster is the user records themselves (see `users`).")
        elif key.startswith("global/") and name in CONFIG_LISTS:
            items = self.services.list(name)
            count = len(items)
            async with self.services.storage.transaction() as tx:
                await items.clear(tx)
            self.report.add(f"{name} list items", count)
        else:
            self.report.errors.append(f"List not found: {key[:80]}")

    async def _index(self, index: str, query: str) -> None:
        source = _TABLES.get(index)
        if source is None:
            if index in INDEXES:
                self.report.warnings.append(f"This conductor stores no {index} records; nothing to delete.")
            else:
                self.report.errors.append(f"Unknown index: {index[:40]}")
            return
        table, search, extra = source
        where = and_(extra, compile_query(query, search))
        async with self.services.storage.transaction() as tx:
            ids = [row.id for row in await tx.conn.execute(select(table.c.id).where(where))]
            await tx.conn.execute(delete(table).where(where))
            if index == "servers":
                for sid in ids:
                    await tx.conn.execute(delete(records).where(records.c.key == f"{SAMPLE_PREFIX}{sid}/data"))
        if index == "jobs":
            for job_id in ids:
                self.services.jobs.logs.delete(job_id)
        self.report.add(f"{index} records", len(ids))

    async def _users(self) -> None:
        users = self.services.users
        doomed = [u["username"] for u in users.roster() if u["username"] != self.username]
        async with self.services.storage.transaction() as tx:
            for name in doomed:
                await users.remove(tx, name)
        self.report.add("users", len(doomed))

    async def _prefix(self, prefix: str, what: str) -> None:
        async with self.services.storage.transaction() as tx:
            found = await tx.conn.execute(delete(records).where(records.c.key.startswith(prefix, autoescape=True)))
        self.report.add(what, int(found.rowcount or 0))
