"""Daily maintenance: history caps, expired records, log archives and online SQLite backups.

Each part is its own internal job (so admins see it in `get_internal_jobs` and its result in
the activity log), and each part is safe to interrupt: deletes go in chunks of committed
transactions, and a backup becomes visible only by a final rename.

Schedule (server local time, as xyOps): the database parts at `maintenance` (HH:MM), log
archiving at midnight, expired transfer tokens every minute. `admin_run_maintenance` runs
every part at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import re
import shutil
import sqlite3
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Table, delete, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.sql.elements import ColumnElement

from sundial.backup import tokens
from sundial.housekeeping import rotate_logs, seconds_until_midnight
from sundial.internal_jobs import InternalJobHandle
from sundial.services import Services
from sundial.storage.engine import Storage
from sundial.storage.schema import activity, config_tables, jobs, records, servers, sessions, users

TRIM_CHUNK = 1000
DEFAULT_TIME = (4, 0)
Part = Callable[[InternalJobHandle], Awaitable[str]]


class MaintenanceBusy(Exception):
    def __init__(self) -> None:
        super().__init__("Another maintenance job is already running.")


def parse_hhmm(text: Any) -> tuple[int, int] | None:
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", str(text or ""))
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        return None
    return int(match.group(1)), int(match.group(2))


def seconds_until(hour: int, minute: int, now: float | None = None) -> float:
    """Seconds from `now` to the next local HH:MM (at least 1)."""
    current = datetime.fromtimestamp(now if now is not None else time.time())
    target = current.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if target <= current:
        target += timedelta(days=1)
    return max(1.0, target.timestamp() - current.timestamp())


# -- the parts, as plain functions (the CLI and tests call them too) -------------------------------
def sqlite_backup(db_file: Path, backup_dir: Path, keep: int, now: float | None = None) -> Path:
    """Copy a live SQLite database with the backup API, gzip it, keep the newest `keep` copies.

    One backup step reads one consistent snapshot; in WAL mode that read never blocks writers,
    so the service keeps running. The copy appears under its final name only when complete.
    """
    backup_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d-%H%M%S", time.localtime(now))
    final = backup_dir / f"{db_file.stem}-{stamp}.db.gz"
    raw = backup_dir / f".{final.name}.db.tmp"
    part = backup_dir / f".{final.name}.part"
    try:
        source, copy = sqlite3.connect(db_file, timeout=30), sqlite3.connect(raw)
        try:
            source.backup(copy)
        finally:
            copy.close()
            source.close()
        with open(raw, "rb") as src, gzip.open(part, "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        part.replace(final)
    finally:
        raw.unlink(missing_ok=True)
        part.unlink(missing_ok=True)
    for old in sorted(backup_dir.glob(f"{db_file.stem}-*.db.gz"))[:-keep or None]:
        old.unlink(missing_ok=True)
    return final


async def database_stats(storage: Storage) -> dict[str, Any]:
    """`admin_stats.db`: SQLite file bytes (database + WAL) and row counts per index and list."""
    counted: dict[str, Table] = {"jobs": jobs, "activity": activity, "servers": servers, "users": users,
                                 "sessions": sessions, "records": records, **config_tables}
    async with storage.read() as conn:
        counts = {name: int((await conn.execute(select(func.count()).select_from(table))).scalar() or 0)
                  for name, table in counted.items()}
    size = 0
    if storage.is_sqlite:
        db_file = Path(make_url(storage.url).database or "")
        size = sum(p.stat().st_size for p in (db_file, Path(f"{db_file}-wal")) if p.exists())
    return {"sqlite": size, "records": counts}


def sqlite_file(storage: Storage) -> Path | None:
    """The SQLite database file, or None on PostgreSQL."""
    return Path(make_url(storage.url).database or "") if storage.is_sqlite else None


def optimize_sqlite(db_file: Path) -> tuple[bool, str]:
    """`admin_run_optimization`: integrity check, then VACUUM and a WAL checkpoint, on a
    connection of its own (VACUUM cannot run inside a transaction; writers wait on SQLite's
    busy timeout meanwhile). Returns (healthy, Markdown report)."""
    report = "### Database Integrity Check\n"
    started = time.time()
    with contextlib.closing(sqlite3.connect(db_file, timeout=30, isolation_level=None)) as conn:
        rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check")]
        if [r.strip().lower() for r in rows] != ["ok"]:
            listing = "\n".join(rows[:100])
            return False, (report + f"\n**Integrity Check Failed:**\n\n```text\n{listing}\n```\n"
                           "\nRestore the database from a backup, or export, delete and import the data.\n")
        report += f"\nIntegrity check complete in {time.time() - started:.2f} sec. No issues found.\n"
        before = _db_bytes(db_file)
        started = time.time()
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    reclaimed = max(0, before - _db_bytes(db_file))
    return True, (report + "\n### Database Compaction\n"
                  f"\nDatabase compaction completed in {time.time() - started:.2f} sec. Reclaimed {reclaimed} bytes.\n")


def _db_bytes(db_file: Path) -> int:
    return sum(p.stat().st_size for p in (db_file, Path(f"{db_file}-wal")) if p.exists())


class MaintenanceService:
    """Schedules and runs the parts; one per conductor."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.log = services.logger("Maint")
        self._tasks: list[asyncio.Task[Any]] = []

    def start(self) -> None:
        self._tasks += [asyncio.create_task(self._daily()), asyncio.create_task(self._midnight()),
                        asyncio.create_task(self._every_minute())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def busy(self) -> bool:
        return bool(self.services.internal_jobs.running("maint")) or self.services.vault.rotating

    # -- schedules ---------------------------------------------------------------------------
    def _time(self) -> tuple[int, int]:
        value = self.services.config.get("maintenance")
        parsed = parse_hhmm(value)
        if parsed is None:
            self.log.error("config", f"Invalid maintenance time {value!r} (expected HH:MM); using 04:00")
        return parsed or DEFAULT_TIME

    async def _daily(self) -> None:
        while True:
            await asyncio.sleep(seconds_until(*self._time()))
            if self.busy():
                self.log.debug(2, "Daily maintenance skipped: another maintenance job is running")
                continue
            await self._run_parts(self._db_parts(), username="")

    async def _midnight(self) -> None:
        while True:
            await asyncio.sleep(seconds_until_midnight())
            await self._run_parts([("Archive logs", "logs", self.archive_logs)], username="")

    async def _every_minute(self) -> None:
        while True:
            await asyncio.sleep(60)
            try:
                await tokens.purge_expired(self.services.storage)
            except Exception as exc:  # a database blip must not end the loop
                self.log.error("maint", f"Purging expired transfer tokens failed: {exc}")

    # -- running -----------------------------------------------------------------------------
    def run_now(self, username: str) -> str:
        """`admin_run_maintenance`: every part, one after another; returns the first job's id."""
        if self.busy():
            raise MaintenanceBusy()
        parts = [*self._db_parts(), ("Archive logs", "logs", self.archive_logs)]
        title, kind, work = parts[0]
        first = self.services.internal_jobs.start(title, kind, username)

        async def chain(handle: InternalJobHandle) -> None:
            await self._run_one(handle, work)
            await self._run_parts(parts[1:], username)

        self.services.internal_jobs.run_in_background(first, chain)
        return first.id

    def _db_parts(self) -> list[tuple[str, str, Part]]:
        parts: list[tuple[str, str, Part]] = []
        if self.services.is_primary():  # shared-database work belongs to the primary only
            parts += [("Database maintenance", "maint", self.trim_history),
                      ("Storage maintenance", "storage", self.sweep_expired)]
        if self.services.storage.is_sqlite and int(self.services.config.get("Storage.backups") or 0) > 0:
            parts.append(("Database backup", "maint", self.backup_database))
        return parts

    async def _run_parts(self, parts: list[tuple[str, str, Part]], username: str) -> None:
        for title, kind, work in parts:
            handle = self.services.internal_jobs.start(title, kind, username)
            await self._run_one(handle, work)

    async def _run_one(self, handle: InternalJobHandle, work: Part) -> None:
        try:
            text = await work(handle)
        except Exception as exc:  # reported on the job and in the log; the next part still runs
            self.log.error("maint", f"{handle.job.title} failed: {type(exc).__name__}: {exc}")
            await handle.finish(code="maint", description=f"{type(exc).__name__}: {exc}")
            return
        await handle.finish(description=text)

    # -- part: history caps (db_maint.<index>.max_rows) --------------------------------------------
    async def trim_history(self, handle: InternalJobHandle) -> str:
        done: list[str] = []
        targets: list[tuple[str, Table, ColumnElement[bool], Any]] = [
            ("jobs", jobs, jobs.c.final == 1, jobs.c.id), ("activity", activity, activity.c.id != "", activity.c.id),
            ("servers", servers, servers.c.online == 0, servers.c.modified)]
        for number, (name, table, where, order) in enumerate(targets):
            cap = self.services.config.get(f"db_maint.{name}.max_rows")
            if isinstance(cap, int) and cap >= 0:
                removed = await self._trim(table, where, order, cap, name)
                if removed:
                    done.append(f"{removed} {name}")
            handle.progress((number + 1) / len(targets))
        return f"Removed {', '.join(done)} over their caps" if done else "Every index is within its cap"

    async def _trim(self, table: Table, where: ColumnElement[bool], order: Any, cap: int, name: str) -> int:
        storage = self.services.storage
        async with storage.read() as conn:
            total = int((await conn.execute(select(func.count()).select_from(table).where(where))).scalar() or 0)
        surplus, removed = total - cap, 0
        while surplus > 0:
            async with storage.transaction() as tx:
                ids = [row[0] for row in await tx.conn.execute(
                    select(table.c.id).where(where).order_by(order).limit(min(TRIM_CHUNK, surplus)))]
                if not ids:
                    break
                await tx.conn.execute(delete(table).where(table.c.id.in_(ids)))
                if name == "servers":
                    await tx.conn.execute(delete(records).where(records.c.key.in_([f"hosts/{i}/data" for i in ids])))
            if name == "jobs":
                await asyncio.to_thread(self._remove_job_files, ids)
            surplus -= len(ids)
            removed += len(ids)
        return removed

    def _remove_job_files(self, ids: list[str]) -> None:
        from sundial.backup.paths import BlobPaths

        paths = BlobPaths.from_config(self.services.config)
        for job_id in ids:
            paths.job_log(job_id).unlink(missing_ok=True)
            shutil.rmtree(paths.files / "jobs" / job_id, ignore_errors=True)

    # -- part: expired records, sessions, tokens -----------------------------------------------------
    async def sweep_expired(self, handle: InternalJobHandle) -> str:
        now = time.time()
        async with self.services.storage.transaction() as tx:
            gone_records = (await tx.conn.execute(delete(records).where(records.c.expires <= now))).rowcount
            gone_sessions = (await tx.conn.execute(delete(sessions).where(sessions.c.expires <= now))).rowcount
        if gone_sessions:
            await self.services.users.load()  # drops the expired sessions held in memory too
        return f"Deleted {gone_records or 0} expired record(s) and {gone_sessions or 0} expired session(s)"

    # -- part: logs ----------------------------------------------------------------------------------
    async def archive_logs(self, handle: InternalJobHandle) -> str:
        template = str(self.services.config.get("log_archive_path") or "")
        if not template:
            return "Log archiving is off (log_archive_path is empty)"
        await asyncio.to_thread(rotate_logs, self.services.logs, self.services.config)
        return "Archived the logs"

    # -- part: SQLite backup -----------------------------------------------------------------------
    async def backup_database(self, handle: InternalJobHandle) -> str:
        db_file = Path(make_url(self.services.storage.url).database or self.services.config.path("Storage.sqlite_file"))
        keep = int(self.services.config.get("Storage.backups") or 0)
        target = await asyncio.to_thread(sqlite_backup, db_file, db_file.parent / "backups", keep)
        return f"Backed up the database to {target.name} ({target.stat().st_size:,} bytes; keeping {keep})"
