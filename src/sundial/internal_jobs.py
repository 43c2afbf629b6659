"""Internal jobs: long conductor-side work (key rotation, backups, maintenance) admins can watch.

xyOps shows such work as "internal jobs": in memory while they run (`get_internal_jobs`), gone
when they finish, each finish leaving an `internal_job` activity record with its report. They
are not event jobs: no satellite, no log file, no retry. A conductor restart forgets running
ones; whoever starts one must make its work safe to interrupt (the vault's rotation is).
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sundial.activity import ActivityLog, ClientInfo
from sundial.ids import generate_id
from sundial.logs import Logger
from sundial.storage.engine import Storage

ROW_KEYS = ("id", "title", "type", "username", "email", "started", "progress", "status")


@dataclass
class InternalJob:
    """One running piece of internal work, shaped like xyOps's internal job rows."""

    id: str
    title: str
    type: str
    username: str
    email: str = ""
    started: float = field(default_factory=time.time)
    progress: float = 0.0
    status: str = ""
    quiet: bool = False

    def row(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in ROW_KEYS}


class InternalJobHandle:
    """What the worker holds: report progress, then finish exactly once."""

    def __init__(self, registry: InternalJobs, job: InternalJob) -> None:
        self._registry = registry
        self.job = job
        self.finished = False

    @property
    def id(self) -> str:
        return self.job.id

    def progress(self, fraction: float, status: str | None = None) -> None:
        """Thread-safe enough for workers in threads: two plain attribute stores."""
        self.job.progress = min(1.0, max(0.0, float(fraction)))
        if status is not None:
            self.job.status = status

    async def finish(self, *, code: int | str = 0, description: str = "", details: str = "",
                     counts: dict[str, Any] | None = None) -> None:
        if self.finished:
            return
        self.finished = True
        await self._registry._finished(self.job, code, description, details, counts or {})


class InternalJobs:
    """The registry of running internal jobs (one per conductor, held by `Services`)."""

    def __init__(self, storage: Storage, activity: ActivityLog, log: Logger) -> None:
        self.storage = storage
        self.activity = activity
        self.log = log
        self._running: dict[str, InternalJob] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self, title: str, type: str, username: str, *, email: str = "",
              quiet: bool = False) -> InternalJobHandle:
        job = InternalJob(id=generate_id("i"), title=title, type=type, username=username, email=email,
                          quiet=quiet)
        self._running[job.id] = job
        self.log.debug(5, f"Internal job started: {title} ({job.id}, type {type})")
        return InternalJobHandle(self, job)

    def running(self, type: str | None = None) -> list[InternalJob]:
        return [job for job in self._running.values() if type is None or job.type == type]

    def rows(self) -> list[dict[str, Any]]:
        return [job.row() for job in self._running.values()]

    def run_in_background(self, handle: InternalJobHandle,
                          work: Callable[[InternalJobHandle], Awaitable[None]]) -> asyncio.Task[None]:
        """Run `work` as a task; an escaping exception finishes the job as failed, logged, not lost."""
        task = asyncio.create_task(self._guarded(handle, work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _guarded(self, handle: InternalJobHandle,
                       work: Callable[[InternalJobHandle], Awaitable[None]]) -> None:
        try:
            await work(handle)
        except Exception as exc:
            ref = generate_id("x")
            self.log.error("internal_job", f"Internal job {handle.id} failed (ref {ref})",
                           {"trace": traceback.format_exc(limit=20)})
            await handle.finish(code="internal", description=f"{type(exc).__name__} (details in Error.log, "
                                                             f"ref {ref})")
        finally:
            if not handle.finished:
                await handle.finish()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _finished(self, job: InternalJob, code: int | str, description: str, details: str,
                        counts: dict[str, Any]) -> None:
        self._running.pop(job.id, None)
        elapsed = round(time.time() - job.started, 3)
        summary = {**job.row(), "progress": 1.0, "completed": time.time(), "elapsed": elapsed, "code": code,
                   "description": description, "details": details, **counts}
        self.log.debug(5, f"Internal job finished: {job.title} ({job.id}) code {code} in {elapsed} s")
        if job.quiet:
            return
        text = f"{job.title}: {description}" if description else f"{job.title} completed"
        async with self.storage.transaction() as tx:
            await self.activity.record(tx, "internal_job", text, client=ClientInfo(useragent="Sundial"),
                                       username=job.username or None, keywords=[job.id, job.type],
                                       job=summary)
