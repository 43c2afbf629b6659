"""Job verbs around the main life cycle: the dashboard summary, skipping a delay, "notify me",
deleting one file of a job, and deleting finished jobs in bulk.

They read and change jobs only through the job manager's and job store's public calls, so
the manager's queue index and write ordering stay its own business.
"""

from __future__ import annotations

import asyncio
from pathlib import PurePosixPath
from typing import Any

from pydantic import Field

from sundial.api.call import Call
from sundial.api.errors import ApiError
from sundial.api.events import check_access
from sundial.api.params import ObjectId, Params
from sundial.api.registry import USER, VerbRouter
from sundial.api.uploads import delete_stored_file
from sundial.internal_jobs import InternalJobHandle
from sundial.jobs.build import meta_line
from sundial.services import Services
from sundial.storage.search import MAX_QUERY_LENGTH, QueryError

router = VerbRouter()
BULK_PAGE = 500


class JobIdParams(Params):
    id: ObjectId


def _who(call: Call) -> str:
    return call.user.username or call.user.actor


def _active_job(call: Call, job_id: str) -> dict[str, Any]:
    """A live job the caller may act on (category and target checks), else the xyOps errors."""
    job = call.services.jobs.active.get(job_id)
    if job is None:
        raise ApiError("job", f"Job not found: {job_id}")
    check_access(call, job)
    return job


@router.verb("get_active_job_summary", Params, auth=USER)
async def get_active_job_summary(call: Call, p: Params) -> dict[str, Any]:
    """Active jobs counted per event by state, source and target (dashboard); other keys filter exactly."""
    filters = p.fields_set()
    events: dict[str, dict[str, Any]] = {}
    user = call.user
    for job in call.services.jobs.active_jobs():
        if job.get("type") == "adhoc" or not all(str(job.get(k)) == str(v) for k, v in filters.items()):
            continue
        if not user.can_category(job.get("category")) or (
                job.get("type") != "workflow" and not user.can_targets(job.get("targets") or [])):
            continue
        event_id = str(job.get("event"))
        summary = events.setdefault(event_id, {"id": event_id, "states": {}, "sources": {}, "targets": {}})
        _bump(summary["states"], job.get("state"))
        _bump(summary["sources"], job.get("source"))
        for target in job.get("targets") or []:
            _bump(summary["targets"], target)
    return {"code": 0, "events": events}


@router.verb("get_workflow_job_summary", Params, auth=USER)
async def get_workflow_job_summary(call: Call, p: Params) -> dict[str, Any]:
    """Active workflow sub-jobs counted per node; filters may use dot paths (`workflow.job`)."""
    filters = p.fields_set()
    nodes: dict[str, int] = {}
    for job in call.services.jobs.active_jobs():
        workflow = job.get("workflow")
        if not isinstance(workflow, dict) or not workflow.get("node"):
            continue
        if all(str(_dot(job, k)) == str(v) for k, v in filters.items()):
            _bump(nodes, workflow["node"])
    return {"code": 0, "nodes": nodes}


def _dot(doc: Any, path: str) -> Any:
    for part in path.split("."):
        doc = doc.get(part) if isinstance(doc, dict) else None
    return doc


def _bump(counts: dict[str, int], key: Any) -> None:
    if isinstance(key, str) and key:
        counts[key] = counts.get(key, 0) + 1


@router.verb("job_skip_delay", JobIdParams, privilege="run_jobs")
async def job_skip_delay(call: Call, p: JobIdParams) -> dict[str, Any]:
    """A job in `start_delay` or `retry_delay` goes on now."""
    _active_job(call, p.id)
    if not await call.services.jobs.skip_delay(p.id, f"Job delay was manually skipped by user: {_who(call)}"):
        raise ApiError("job", f"Job is not in a delay state: {p.id}")
    return {"code": 0}


@router.verb("job_toggle_notify_me", JobIdParams, auth=USER)
async def job_toggle_notify_me(call: Call, p: JobIdParams) -> dict[str, Any]:
    """Add (or remove) a hidden e-mail action to the caller's address when this active job completes."""
    email = str(call.user.record.get("email") or "").strip()
    if not email:
        raise ApiError("job", "User has no email address set.")
    job = _active_job(call, p.id)
    actions = job.setdefault("actions", [])
    mine = [a for a in actions if isinstance(a, dict) and a.get("condition") == "complete"
            and a.get("type") == "email" and a.get("email") == email]
    if mine:
        job["actions"] = [a for a in actions if not any(a is m for m in mine)]
        meta_line(job, f"User removed from job notify list: {_who(call)}")
        return {"code": 0, "enabled": False}
    actions.append({"condition": "complete", "type": "email", "email": email, "users": [], "enabled": True,
                    "hidden": True})
    meta_line(job, f"User added to job notify list: {_who(call)}")
    return {"code": 0, "enabled": True}


class JobFileParams(JobIdParams):
    path: str = Field(min_length=1, max_length=2048)


@router.verb("delete_job_file", JobFileParams, privilege="delete_jobs")
async def delete_job_file(call: Call, p: JobFileParams) -> dict[str, Any]:
    """Remove one output (or uploaded input) file from a finished job, and the stored file."""
    services = call.services
    if p.id in services.jobs.active:
        raise ApiError("job", f"Cannot delete a file of a job that is still active: {p.id}")
    record = await services.jobs.store.get(p.id)
    if record is None:
        raise ApiError("job", f"Failed to load job details: {p.id}")
    check_access(call, record)
    _remove_file_entry(record, p.path)
    await services.jobs.store.save(record)
    await asyncio.to_thread(delete_stored_file, services.config, p.path)
    async with services.storage.transaction() as tx:
        await services.activity.record(tx, "job_delete_file", f"File {p.path} deleted from job {p.id}",
                                       client=call.client, username=call.user.actor, keywords=[p.id],
                                       job={"id": p.id, "path": p.path})
    return {"code": 0}


def _remove_file_entry(record: dict[str, Any], path: str) -> None:
    """Drop the File object with this path from `files`, else from `input.files` (not bucket or
    ticket files: those belong to their bucket or ticket)."""
    name = PurePosixPath(path).name
    listed = record.get("files")
    outputs: list[Any] = listed if isinstance(listed, list) else []
    if any(isinstance(f, dict) and f.get("path") == path for f in outputs):
        record["files"] = [f for f in outputs if not (isinstance(f, dict) and f.get("path") == path)]
        return
    raw = record["input"].get("files") if isinstance(record.get("input"), dict) else None
    inputs: list[Any] = raw if isinstance(raw, list) else []
    found = next((f for f in inputs if isinstance(f, dict) and f.get("path") == path), None)
    if found is None:
        raise ApiError("job", f"Job file not found: {name}")
    if found.get("bucket"):
        raise ApiError("job", f"Bucket files cannot be deleted from job: {name}")
    if found.get("ticket"):
        raise ApiError("job", f"Ticket files cannot be deleted from job: {name}")
    record["input"]["files"] = [f for f in inputs if f is not found]


async def purge_job(services: Services, record: dict[str, Any]) -> None:
    """Delete a finished job: its record, today's stats for it, its log and its output files."""
    await services.jobs.store.delete(str(record["id"]))
    services.jobs.uncount(record)
    services.jobs.logs.delete(str(record["id"]))
    for item in record.get("files") or []:
        if isinstance(item, dict) and isinstance(item.get("path"), str):
            await asyncio.to_thread(delete_stored_file, services.config, item["path"])


class BulkDeleteParams(Params):
    query: str = Field(default="*", max_length=MAX_QUERY_LENGTH)


@router.verb("bulk_search_delete_jobs", BulkDeleteParams, privilege="delete_jobs")
async def bulk_search_delete_jobs(call: Call, p: BulkDeleteParams) -> dict[str, Any]:
    """Delete every finished job matching a `search_jobs` query, as a background internal job."""
    if call.user.limited and not call.user.is_admin:
        raise ApiError("access", "Category or group limited users may not use this API")
    services = call.services
    query = p.query.strip() or "*"
    try:
        await services.jobs.store.search(query, offset=0, limit=1, sort_by="_id", sort_dir=1)
    except QueryError as exc:
        raise ApiError("api", str(exc)) from None
    handle = services.internal_jobs.start("Custom bulk job deletion", "maint", _who(call))

    async def work(job: InternalJobHandle) -> None:
        deleted = await _delete_matching(services, query, job)
        await job.finish(description=f"{deleted} jobs deleted (query: {query})", counts={"count": deleted})

    services.internal_jobs.run_in_background(handle, work)
    return {"code": 0}


async def _delete_matching(services: Services, query: str, job: InternalJobHandle) -> int:
    """Page through the matches oldest first, deleting each page, until none are left."""
    deleted, total, last_ids = 0, 0, None
    while True:
        rows, remaining = await services.jobs.store.search(query, offset=0, limit=BULK_PAGE, sort_by="_id",
                                                           sort_dir=1)
        ids = [r.get("id") for r in rows]
        if not rows or ids == last_ids:
            return deleted
        total = total or remaining
        for record in rows:
            await purge_job(services, record)
        deleted, last_ids = deleted + len(rows), ids
        job.progress(deleted / max(total, 1), f"{deleted} of {total} jobs deleted")
