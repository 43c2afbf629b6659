"""Export and import as internal jobs of a running conductor (the API's side of backups).

The API layer parses and authorises; this module owns the rules that hold whoever calls:
one maintenance job at a time, the import checked before anything changes, job work quiesced
before the write (unless `danger`), and every in-memory copy reloaded after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
import traceback
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sundial.activity import ClientInfo
from sundial.backup.export import Exporter, gzip_stream
from sundial.backup.importer import Importer, ImportRefused, ImportReport, open_upload, ring_decrypter
from sundial.backup.paths import BlobPaths
from sundial.ids import generate_id
from sundial.internal_jobs import InternalJobHandle
from sundial.services import Services
from sundial.storage.lists import load_all
from sundial.vault.errors import VaultError

MAINT = "maint"
ABORT_REASON = "System data import"


class BackupBusy(Exception):
    """Another maintenance job runs; xyOps's wording."""

    def __init__(self) -> None:
        super().__init__("Another maintenance job is already running.")


class BackupService:
    """One per conductor; built on demand from `Services` (it holds no state of its own)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.paths = BlobPaths.from_config(services.config)
        self.log = services.logger("Maint")

    # -- export ------------------------------------------------------------------------------
    def export_stream(self, items: list[dict[str, Any]], *, username: str) -> AsyncIterator[bytes]:
        """The gzip body of an export, as an internal job that ends with the stream (or the client).

        The job starts with the first chunk asked for, so a response that is never sent leaves
        no job behind to block imports and maintenance.
        """
        exporter = Exporter(self.services.storage, self.paths, hostname=self.services.hostname)
        return self._export_body(username, exporter, items)

    async def _export_body(self, username: str, exporter: Exporter,
                           items: list[dict[str, Any]]) -> AsyncIterator[bytes]:
        handle = self.services.internal_jobs.start("Custom bulk data export", MAINT, username)

        def details() -> str:
            return "\n".join(f"- {note}" for note in exporter.stats.notes)

        try:
            lines = exporter.lines(items, lambda n, total: handle.progress(n / max(total, 1)))
            async for chunk in gzip_stream(lines):
                yield chunk
        except BaseException:  # the client went away (or the read failed): awaiting may be cancelled here
            _detach(handle.finish(code="abort", description="Export stopped before the end", details=details()))
            raise
        # Finished before the body ends, so a client that imports right after never finds it still running.
        stats = exporter.stats
        await handle.finish(description=f"Exported {stats.lines} lines ({stats.records} records, {stats.files} files)",
                            details=details())

    # -- import ------------------------------------------------------------------------------
    def busy(self) -> bool:
        return bool(self.services.internal_jobs.running(MAINT)) or self.services.vault.rotating

    async def start_import(self, upload: dict[str, Any], *, username: str, email: str, actor: str,
                           client: ClientInfo, danger: bool) -> str:
        """Steps 1-5 of the spec: refuse when busy, start the job, open the file, answer with its id.

        ImportRefused (bad archive, no rows, wrong format) is raised after the internal job has
        finished with the same message, so the failure is visible in both places.
        """
        if self.busy():
            raise BackupBusy()
        handle = self.services.internal_jobs.start("Custom bulk data import", MAINT, username, email=email)
        work = self.services.config.path("temp_dir") / f"import-{handle.id}"
        report = ImportReport(file_name=str(upload.get("name", "")), file_size=int(upload.get("size") or 0))
        try:
            path, entries = await asyncio.to_thread(
                open_upload, Path(upload["path"]), report.file_name, str(upload.get("type", "")), work)
        except ImportRefused as exc:
            shutil.rmtree(work, ignore_errors=True)
            await handle.finish(code="import", description=str(exc))
            raise
        self.services.internal_jobs.run_in_background(
            handle, lambda h: self._import(h, path, entries, report, actor, client, danger))
        return handle.id

    async def _import(self, handle: InternalJobHandle, path: Path, entries: int, report: ImportReport,
                      actor: str, client: ClientInfo, danger: bool) -> None:
        work = path.parent
        importer = Importer(self.services.storage, self.paths, work, decrypts=self._decrypts())
        importer.report = report
        try:
            ok = await asyncio.to_thread(importer.check, path, entries, lambda f, s: handle.progress(f, s))
            if ok:
                if not danger:
                    await self._quiesce(report, actor, client)
                await self._apply(importer, path, handle)
        except ImportRefused as exc:
            report.error(str(exc))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        await handle.finish(code=0 if report.applied else "import", description=report.summary(),
                            details=report.markdown())

    async def _apply(self, importer: Importer, path: Path, handle: InternalJobHandle) -> None:
        try:
            await importer.apply(path, lambda f, s: handle.progress(f, s), online=self._online)
        except Exception as exc:  # the transaction rolled back: say so, keep the trace in Error.log
            ref = generate_id("x")
            self.services.logger("Error").error("import", f"Import write failed (ref {ref})",
                                                {"trace": traceback.format_exc(limit=20)})
            importer.report.error(f"Writing failed and was rolled back: {type(exc).__name__}: {str(exc)[:200]} "
                                  f"(ref {ref})")
            return
        handle.progress(0.95, "Reloading")
        await reload_after_import(self.services)

    def _online(self, server_id: str) -> bool:
        fleet = self.services.fleet
        return fleet is not None and server_id in fleet.online

    def _decrypts(self) -> Any:
        try:
            return ring_decrypter(self.services.vault.keyring)
        except VaultError:
            return None

    async def _quiesce(self, report: ImportReport, actor: str, client: ClientInfo) -> None:
        """xyOps's safety steps: pause the scheduler, drop queued jobs, abort and drain running ones."""
        services = self.services
        if services.state.scheduler_enabled:
            async with services.storage.transaction() as tx:
                await services.state.update(tx, {"scheduler.enabled": False})
                await services.activity.record(tx, "state_update", "scheduler.enabled = False", client=client,
                                               username=actor, keywords=["scheduler.enabled"],
                                               key="scheduler.enabled", value=False)
            report.warnings.append("The scheduler was disabled for the import; re-enable it when ready.")
        jobs = services.jobs
        for event_id in {str(j.get("event")) for j in jobs.active.values() if j.get("state") == "queued"}:
            await jobs.flush_queue(event_id)
        running = list(jobs.active)
        for job_id in running:
            await jobs.abort(job_id, ABORT_REASON)
        deadline = time.monotonic() + float(services.config.get("dead_job_timeout") or 120)
        while jobs.active and (left := deadline - time.monotonic()) > 0:
            await asyncio.gather(*(jobs.wait(job_id, left) for job_id in list(jobs.active)))
        if running:
            report.warnings.append(f"{len(running)} running job(s) were aborted for the import.")


async def reload_after_import(services: Services) -> None:
    """Every in-memory copy of what an import may have written, read again from storage."""
    await load_all(services.storage, services.lists.values())
    await services.users.load()
    await services.state.load()
    await services.vault.reload()
    if services.fleet is not None:
        with contextlib.suppress(Exception):
            await services.fleet.rematch_all()
            await services.fleet.push_plugins()


_pending: set[asyncio.Task[Any]] = set()


def _detach(coro: Any) -> None:
    """Finish an internal job from a generator's `finally`, where awaiting may be cancelled."""
    task = asyncio.ensure_future(coro)
    _pending.add(task)
    task.add_done_callback(_pending.discard)
