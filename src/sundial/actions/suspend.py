"""Suspend actions (events-and-jobs.md §10.1): a job that waits for a person before it goes on.

The job manager asks :meth:`Suspender.gate` just before a job would start (condition `start`) and
just before it would finish (its completion conditions). When a pending suspend action applies,
the gate marks the job `suspended`, the manager stores it and stops there, and the notifications
(template `job_suspended`, e-mail and web hook) go out in the background. Only the suspend action
runs at that point; the other actions of the same condition run when the job goes on, so a
"job started" message means the job really started. `resume_job` (:meth:`resume`) lets the job
continue from where it stopped; `abort_job` ends it (the manager clears `suspended`).

`sources[]` limits a suspend action to jobs whose topmost source is listed: the source of the
first job of the chain that launched this one (parent job of a run_event action, workflow job of
a sub-job), so a job launched by an action of a scheduled job counts as `scheduler`.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from sundial.actions.channels import fan_out
from sundial.jobs.build import meta_line

if TYPE_CHECKING:
    from sundial.actions.runner import ActionRunner, Outcome

TEMPLATE = "job_suspended"
MAX_CHAIN = 32


class Suspender:
    def __init__(self, runner: ActionRunner) -> None:
        self.runner = runner
        self.jobs = runner.services.jobs
        self._tasks: set[asyncio.Task[None]] = set()

    # -- the job manager's gate -----------------------------------------------------------------
    async def gate(self, job: dict[str, Any], conditions: list[str]) -> bool:
        """True when a suspend action now holds `job` (the live record); sets `suspended`."""
        from sundial.actions.runner import select_actions

        if job.get("suspended"):
            return True
        _settle(job)
        for index, action in select_actions(job, conditions):
            if action.get("type") != "suspend":
                continue
            action["active"] = True  # claimed: neither the gate nor the runner picks it again
            source = await self.topmost_source(job)
            sources = [str(s) for s in action.get("sources") or [] if isinstance(s, str)]
            if sources and source not in sources:
                action.pop("active", None)
                action.update(date=round(time.time(), 3), elapsed_ms=0, code=0, details="",
                              description=f"Skipped: job source '{source}' is not one of: {', '.join(sources)}")
                continue
            job["suspended"] = True
            meta_line(job, f"Job suspended by a suspend action ({action.get('condition')}); "
                           "waiting for resume_job.")
            self._spawn(self._notify(str(job["id"]), index, dict(action)))
            return True
        return False

    async def topmost_source(self, job: dict[str, Any]) -> str:
        """The `source` of the first job in the chain of parents (workflow job, then parent job)."""
        current, seen = job, {str(job.get("id"))}
        for _ in range(MAX_CHAIN):
            parent_id = str(_field(current, "workflow", "job") or _field(current, "parent", "job") or "")
            if not parent_id or parent_id in seen:
                break
            found = await self.jobs.get(parent_id)
            if found is None:
                break
            seen.add(parent_id)
            current = found
        return str(current.get("source") or "")

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- notifications ------------------------------------------------------------------------------
    async def _notify(self, job_id: str, index: int, action: dict[str, Any]) -> None:
        """E-mail and web hook with the `job_suspended` text; the result is recorded on the action."""
        runner = self.runner
        try:
            job = self.jobs.get_active(job_id)
            if job is None:
                return
            started, clock = time.time(), time.perf_counter()
            outcome = await self.notifications(job, action)
            fields = {"date": round(started, 3), "elapsed_ms": round((time.perf_counter() - clock) * 1000, 3),
                      "code": outcome.code, "description": outcome.description, "details": outcome.details,
                      "active": bool((self.jobs.active.get(job_id) or {}).get("suspended"))}  # until resumed
            await runner.record(job_id, {index: fields})
        except Exception as exc:
            runner.log.error("action", f"Suspend notifications of job {job_id} failed: {exc!r}")

    async def notifications(self, job: dict[str, Any], action: dict[str, Any]) -> Outcome:
        from sundial.actions.runner import Outcome

        base = {"enabled": True, "condition": action.get("condition", ""), "template": TEMPLATE,
                "text": str(action.get("text") or "")}
        subs: list[dict[str, Any]] = []
        users = action.get("users") if isinstance(action.get("users"), list) else []
        if users or str(action.get("email") or "").strip():
            subs.append({**base, "type": "email", "users": users, "email": str(action.get("email") or "")})
        if action.get("web_hook"):
            subs.append({**base, "type": "web_hook", "web_hook": str(action["web_hook"])})
        return await fan_out(self.runner, job, subs, Outcome(
            0, "Job suspended: waiting for a user to resume it"
               + ("" if subs else " (no one notified: the action names no recipients or web hook)")))

    # -- resume_job -----------------------------------------------------------------------------------
    async def resume(self, job_id: str, params: dict[str, Any] | None, redirect: str, who: str) -> bool:
        """Let a suspended job go on; False when it is not active and suspended (nothing changes)."""
        job = self.jobs.active.get(job_id)
        if job is None or not job.get("suspended"):
            return False
        if redirect and isinstance(job.get("workflow"), dict):
            job["workflow"]["redirect"] = redirect
        now = round(time.time(), 3)
        for action in job.get("actions") or []:
            if isinstance(action, dict) and action.get("type") == "suspend" and action.get("active"):
                action.pop("active", None)
                action["resumed"] = now
        return await self.jobs.resume(job_id, params, f"Job resumed by {who}.")


def _settle(job: dict[str, Any]) -> None:
    """A suspend action still marked active on a job that is no longer suspended (aborted) is over."""
    for action in job.get("actions") or []:
        if isinstance(action, dict) and action.get("type") == "suspend" and action.get("active"):
            action.pop("active", None)


def _field(doc: dict[str, Any], outer: str, inner: str) -> Any:
    value = doc.get(outer)
    return value.get(inner) if isinstance(value, dict) else None
