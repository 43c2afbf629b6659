"""What the job manager and the fleet publish on the live bus, shaped for subscribers.

Each method is called on the hot path (a satellite's frame, a job state change), so each
starts with a topic lookup and returns when nobody listens. Messages carry only the keys a
live view needs; the full records stay behind the REST verbs. Every message is filtered by
the same category/group rules as the REST verbs, with the subscriber's current principal.

The `jobs` topic (the active job list) is coalesced: changes are collected by job id and
sent together a quarter of a second later, so a thousand jobs reporting progress every
second cost a dashboard four messages a second, not a thousand.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sundial.auth.privileges import Principal
from sundial.live.bus import LiveBus

JOBS_TOPIC = "jobs"
JOBS_BATCH_SECONDS = 0.25
#: Keys of a running job that its live view needs (progress, status, resources, placement).
JOB_KEYS = ("id", "event", "category", "plugin", "state", "progress", "status", "server", "hostname", "started",
            "updated", "now", "position", "until", "suspended", "remote", "cpu", "mem", "log_file_size", "code",
            "description", "retry_count", "test", "source", "username")
#: Keys of a job in the active list (dashboards).
SUMMARY_KEYS = ("id", "event", "category", "plugin", "state", "progress", "status", "server", "started", "now",
                "position", "source", "test", "suspended")
#: Left out of the final record sent to subscribers (the log was streamed; `get_job` has the rest).
FINAL_DROP = ("output", "activity", "procs", "conns", "html", "table", "timelines", "input", "data", "files")


def job_topic(job_id: str) -> str:
    return f"job:{job_id}"


def server_topic(server_id: str) -> str:
    return f"server:{server_id}"


def job_visible(principal: Principal, job: dict[str, Any]) -> bool:
    """The REST verbs' rule: category limit, and group limit unless the job is a workflow."""
    if not principal.can_category(job.get("category")):
        return False
    return job.get("type") == "workflow" or principal.can_targets(job.get("targets") or [])


def server_visible(principal: Principal, groups: list[str]) -> bool:
    """Group-limited principals see servers in at least one of their groups."""
    return principal.is_admin or not principal.groups or any(g in principal.groups for g in groups)


def pick(job: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: job[k] for k in keys if k in job}


def final_view(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in FINAL_DROP}


class JobFeed:
    """The job manager's publisher: state and progress, log chunks, the final record, the list."""

    def __init__(self, bus: LiveBus, *, batch_seconds: float = JOBS_BATCH_SECONDS) -> None:
        self.bus = bus
        self.batch_seconds = batch_seconds
        self._pending: dict[str, tuple[dict[str, Any], bool]] = {}  # job id → (job, gone)
        self._timer: asyncio.TimerHandle | None = None

    # -- called by the job manager ---------------------------------------------------------------

    def job_changed(self, job: dict[str, Any]) -> None:
        """A state change or a satellite's progress report."""
        topic = job_topic(job["id"])
        if topic in self.bus.topics:
            self.bus.publish(topic, {"type": "job", "topic": topic, "job": pick(job, JOB_KEYS)},
                             lambda p: job_visible(p, job))
        if JOBS_TOPIC in self.bus.topics:
            self._queue(job, gone=False)

    def job_log(self, job: dict[str, Any], text: str) -> None:
        """A chunk of output, as the satellite sent it (already appended to the live log)."""
        topic = job_topic(job["id"])
        if topic in self.bus.topics:
            self.bus.publish(topic, {"type": "log", "topic": topic, "text": text}, lambda p: job_visible(p, job))

    def job_final(self, record: dict[str, Any]) -> None:
        """The stored final record; the job's topic ends with it."""
        topic = job_topic(record["id"])
        if topic in self.bus.topics:
            self.bus.publish(topic, {"type": "final", "topic": topic, "job": final_view(record)},
                             lambda p: job_visible(p, record))
            self.bus.end_topic(topic)

    def job_gone(self, job: dict[str, Any]) -> None:
        """The job left the active list (finished, flushed from its queue, or never stored)."""
        if JOBS_TOPIC in self.bus.topics:
            self._queue(job, gone=True)

    # -- the coalesced `jobs` topic --------------------------------------------------------------

    def _queue(self, job: dict[str, Any], gone: bool) -> None:
        self._pending[job["id"]] = (job, gone)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.batch_seconds, self.flush)

    def flush(self) -> None:
        """Send the collected changes, each subscriber only the jobs it may see."""
        self._timer = None
        pending, self._pending = self._pending, {}
        subs = self.bus.topics.get(JOBS_TOPIC)
        if not subs or not pending:
            return
        shared: dict[str, Any] | None = None
        for sub in tuple(subs):
            principal = sub.principal
            if not principal.limited:
                shared = shared or self._batch(pending, None)
                ok = sub.send(shared)
            else:
                ok = sub.send(self._batch(pending, principal))
            if not ok:
                self.bus.dropped += 1
                self.bus.drop(sub)

    @staticmethod
    def _batch(pending: dict[str, tuple[dict[str, Any], bool]], principal: Principal | None) -> dict[str, Any]:
        changed, gone = [], []
        for job_id, (job, is_gone) in pending.items():
            if principal is not None and not job_visible(principal, job):
                continue
            if is_gone:
                gone.append(job_id)
            else:
                changed.append(pick(job, SUMMARY_KEYS))
        return {"type": "jobs", "topic": JOBS_TOPIC, "changed": changed, "gone": gone}

    # -- snapshots for new subscribers -----------------------------------------------------------

    @staticmethod
    def snapshot(active: list[dict[str, Any]], principal: Principal) -> dict[str, Any]:
        rows = [pick(j, SUMMARY_KEYS) for j in active if job_visible(principal, j)]
        return {"type": "jobs", "topic": JOBS_TOPIC, "reset": True, "changed": rows, "gone": []}


class ServerFeed:
    """The fleet's publisher: each per-second QuickMon row, and the server going on or off line."""

    def __init__(self, bus: LiveBus) -> None:
        self.bus = bus

    def quickmon(self, server_id: str, row: dict[str, Any], record: dict[str, Any] | None) -> None:
        topic = server_topic(server_id)
        if topic in self.bus.topics:
            allowed = list((record or {}).get("groups") or [])
            self.bus.publish(topic, {"type": "quickmon", "topic": topic, "row": row},
                             lambda p: server_visible(p, allowed))

    def online(self, server_id: str, online: bool, groups: list[str]) -> None:
        topic = server_topic(server_id)
        if topic in self.bus.topics:
            self.bus.publish(topic, {"type": "server", "topic": topic, "online": online},
                             lambda p: server_visible(p, groups))
