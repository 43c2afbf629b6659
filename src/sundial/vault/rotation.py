"""The two rotation front ends over the one engine (`VaultService.rotate`).

Model A (xyOps `admin_rotate_secret_key`): the conductor makes the new key, quiesces job
work, rotates, persists the key and reports on an internal job; the API answers at once.
Model B (ServOS `POST /api/maintenance/rotate-key`): the operator brings both keys, the
request waits for the result. Both quiesce first (satellites' job credentials derive from
the key), both leave the scheduler paused for an admin to resume, as xyOps does.

Steps carry fault points (see `faults`) so the tests can kill the process at each one.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sundial.activity import ActivityLog, ClientInfo
from sundial.ids import generate_id
from sundial.internal_jobs import InternalJobHandle, InternalJobs
from sundial.logs import Logger
from sundial.storage.engine import Storage
from sundial.vault.crypto import SecretKey
from sundial.vault.errors import VaultError
from sundial.vault.faults import fault_point
from sundial.vault.keyring import generate_key
from sundial.vault.service import RotationOutcome, VaultService

if TYPE_CHECKING:
    from sundial.jobs.manager import JobManager
    from sundial.state import StateService

MAINT = "maint"
ABORT_REASON = "Secret key rotation"
MAX_REPORTED_ERRORS = 100
# Share of the internal job's progress bar spent before re-encryption starts.
QUIESCE_SHARE = 0.2


@dataclass
class Report:
    """What a rotation did, for the internal job's Markdown and model B's JSON answer."""

    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    outcome: RotationOutcome | None = None
    flushed: int = 0
    aborted: int = 0

    def markdown(self) -> str:
        ok = self.outcome is not None and not self.errors
        lines = [f"## Secret Key Rotation {'Completed' if ok else 'Failed'}", ""]
        if self.outcome is not None:
            counts = self.outcome.hook_counts
            lines += [f"- **Secrets re-encrypted:** {self.outcome.secrets}",
                      f"- **Servers re-authenticated:** {counts.get('servers', 0)}",
                      f"- **Conductor peers updated:** {counts.get('peers', 0)}",
                      f"- **New key fingerprint:** {self.outcome.fingerprint} (epoch {self.outcome.epoch})",
                      f"- **Key persisted to:** {self.outcome.persisted_to or 'not persisted'}", ""]
        for title, items in (("Errors", self.errors[:MAX_REPORTED_ERRORS]), ("Warnings", self.warnings)):
            if items:
                lines += [f"**{title} ({len(items)}):**", "", *[f"- {item}" for item in items], ""]
        return "\n".join(lines)


class Quiescer:
    """Stops job work before a key change: pause scheduler, flush queue, abort, drain (bounded)."""

    def __init__(self, state: StateService, jobs: JobManager, storage: Storage, activity: ActivityLog, *,
                 drain_timeout: float) -> None:
        self.state = state
        self.jobs = jobs
        self.storage = storage
        self.activity = activity
        self.drain_timeout = drain_timeout

    async def run(self, report: Report, actor: str, client: ClientInfo,
                  progress: Callable[[float], None]) -> None:
        await self.pause_scheduler(report, actor, client)
        fault_point("rotate", "pause")
        report.flushed = await self.flush_queue(report)
        fault_point("rotate", "flush")
        report.aborted = await self.abort_active(report)
        fault_point("rotate", "abort")
        progress(QUIESCE_SHARE / 2)
        await self.drain(report)
        fault_point("rotate", "drain")
        progress(QUIESCE_SHARE)

    async def pause_scheduler(self, report: Report, actor: str, client: ClientInfo) -> None:
        if not self.state.scheduler_enabled:
            return
        async with self.storage.transaction() as tx:
            await self.state.update(tx, {"scheduler.enabled": False})
            await self.activity.record(tx, "state_update", "scheduler.enabled = False", client=client,
                                       username=actor, keywords=["scheduler.enabled"], key="scheduler.enabled",
                                       value=False)
        report.warnings.append("The scheduler was disabled for the key rotation; re-enable it manually "
                               "(update_global_state scheduler.enabled = true, or the UI).")

    async def flush_queue(self, report: Report) -> int:
        events = {str(job.get("event")) for job in self.jobs.active.values() if job.get("state") == "queued"}
        count = 0
        for event_id in events:
            count += await self.jobs.flush_queue(event_id)
        if count:
            report.warnings.append(f"{count} queued job(s) were flushed.")
        return count

    async def abort_active(self, report: Report) -> int:
        ids = list(self.jobs.active)
        for job_id in ids:
            await self.jobs.abort(job_id, ABORT_REASON)
        if ids:
            report.warnings.append(f"{len(ids)} active job(s) were aborted.")
        return len(ids)

    async def drain(self, report: Report) -> None:
        """Wait for aborted jobs to finish; after the timeout, finish the stragglers ourselves (H2)."""
        deadline = time.monotonic() + self.drain_timeout
        while self.jobs.active and (left := deadline - time.monotonic()) > 0:
            await asyncio.gather(*(self.jobs.wait(job_id, left) for job_id in list(self.jobs.active)))
        stragglers = list(self.jobs.active)
        for job_id in stragglers:
            await self.jobs.finish_from_api(job_id, {"code": "abort", "complete": True,
                                                     "description": f"{ABORT_REASON} (no answer from the "
                                                                    "satellite; finished by the conductor)"}, None)
        if stragglers:
            report.warnings.append(f"{len(stragglers)} job(s) did not stop within {self.drain_timeout:.0f} s "
                                   "and were marked aborted.")


class Rotations:
    """Preflight checks and the two front ends; one instance per conductor."""

    def __init__(self, vault: VaultService, internal_jobs: InternalJobs, quiescer: Quiescer, log: Logger) -> None:
        self.vault = vault
        self.internal_jobs = internal_jobs
        self.quiescer = quiescer
        self.log = log

    def maintenance_running(self) -> bool:
        return bool(self.internal_jobs.running(MAINT)) or self.vault.rotating

    def _refuse_if_busy(self) -> None:
        if self.maintenance_running():
            raise VaultError("admin", "Another maintenance job is already running.")

    async def _verify_current(self) -> None:
        """The canary must open with the key in force before anything changes."""
        problem = (await self.vault.check_candidate(self.vault.current.key)).rotation_error()
        if problem is not None:
            raise problem

    # -- model A ---------------------------------------------------------------------------
    async def start_orchestrated(self, *, username: str, email: str, actor: str, client: ClientInfo) -> str:
        """`admin_rotate_secret_key` after its password check: returns the internal job id at once."""
        self._refuse_if_busy()
        if not self.vault.source.mutable:
            raise VaultError("admin", "Cannot rotate secret key when specified via environment variable.")
        await self._verify_current()
        handle = self.internal_jobs.start("Rotate secret key", MAINT, username, email=email)

        async def work(job: InternalJobHandle) -> None:
            report = await self._rotate(generate_key(), job, actor=actor, client=client, model="xyops")
            await job.finish(code=0 if not report.errors else "rotate",
                             description=report.errors[0] if report.errors else "Secret key rotated",
                             details=report.markdown(), counts=_counts(report))

        self.internal_jobs.run_in_background(handle, work)
        return handle.id

    # -- model B ---------------------------------------------------------------------------
    async def rotate_direct(self, old: SecretKey, new: SecretKey, *, username: str, actor: str,
                            client: ClientInfo, quiesce: bool = True) -> dict[str, Any]:
        """`/api/maintenance/rotate-key`: checks in the specified order, then rotate and answer."""
        self._refuse_if_busy()
        problem = (await self.vault.check_candidate(old)).rotation_error()
        if problem is not None:
            raise problem
        handle = self.internal_jobs.start("Rotate secret key (direct)", MAINT, username)
        report = await self._rotate(new, handle, actor=actor, client=client, model="direct", quiesce=quiesce)
        if report.outcome is None:
            await handle.finish(code="rotate", description=report.errors[0], details=report.markdown())
            raise VaultError("rotate", report.errors[0])
        await handle.finish(description="Secret key rotated", details=report.markdown(), counts=_counts(report))
        return self._direct_answer(report.outcome, report)

    def _direct_answer(self, outcome: RotationOutcome, report: Report) -> dict[str, Any]:
        source = self.vault.source
        answer: dict[str, Any] = {"code": 0, "rotated": {"secrets": outcome.secrets, "canary": 1, "other": 0},
                                  "key_epoch": outcome.epoch, "fingerprint": outcome.fingerprint,
                                  "restart_required": outcome.persisted_to is None,
                                  "scheduler_paused": not self.quiescer.state.scheduler_enabled,
                                  "warnings": report.warnings}
        if outcome.persisted_to is None:
            answer["persist_to"] = source.where_to_persist
            answer["message"] = (f"The running conductor now uses the new key. The key came from "
                                 f"{source.description}: write the new key to {source.where_to_persist} "
                                 "before the next restart; until then a restart is refused.")
        else:
            answer["message"] = f"The running conductor now uses the new key; it was saved to {outcome.persisted_to}."
        return answer

    # -- shared ----------------------------------------------------------------------------
    async def _rotate(self, new: SecretKey, job: InternalJobHandle, *, actor: str, client: ClientInfo,
                      model: str, quiesce: bool = True) -> Report:
        report = Report()
        if quiesce:
            job.progress(0.01, "Stopping job work")
            await self.quiescer.run(report, actor, client, job.progress)
        job.progress(QUIESCE_SHARE, "Re-encrypting secrets")

        def on_progress(done: int, total: int) -> None:
            job.progress(QUIESCE_SHARE + (1 - QUIESCE_SHARE) * 0.95 * done / max(total, 1))

        try:
            report.outcome = await self.vault.rotate(new, model=model, progress=on_progress)
        except VaultError as exc:
            report.errors.append(exc.description)
        except Exception as exc:  # storage errors: the transaction rolled back; keep SQL out of replies
            ref = generate_id("x")
            self.log.error("rotate", f"Key rotation failed (ref {ref})", {"trace": traceback.format_exc(limit=20)})
            report.errors.append(f"{type(exc).__name__} while rotating (details in Error.log, ref {ref})")
        if report.outcome is None:
            self.log.error("rotate", f"Key rotation failed, nothing was changed: {report.errors[0]}")
            return report
        report.warnings.extend(report.outcome.warnings)
        return report


def _counts(report: Report) -> dict[str, Any]:
    outcome = report.outcome
    return {"secrets": outcome.secrets if outcome else 0, "flushed": report.flushed, "aborted": report.aborted,
            "servers": outcome.hook_counts.get("servers", 0) if outcome else 0}
