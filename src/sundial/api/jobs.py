"""Job verbs: run, follow, abort, search, logs; and the satellite's `finish_job`."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import shutil
from pathlib import Path
from typing import Any

from pydantic import Field
from sqlalchemy import or_
from starlette.responses import Response

from sundial.api.call import Call
from sundial.api.errors import ApiError
from sundial.api.events import check_access
from sundial.api.jobtools import purge_job
from sundial.api.params import CsvList, Flag, ObjectId, Params, SearchLimit, StrList
from sundial.api.registry import ADMIN, TOKEN, USER, VerbRouter
from sundial.api.uploads import store_uploads
from sundial.events.runparams import job_params
from sundial.jobs.build import LaunchError, log_token, meta_line
from sundial.jobs.launch import allows_manual_runs
from sundial.plugins.params import ParamError
from sundial.storage.schema import jobs as jobs_table
from sundial.storage.search import MAX_QUERY_LENGTH, QueryError

router = VerbRouter()
LIGHT_REMOVE = ("actions", "activity", "html", "limits", "procs", "conns", "table", "timelines", "input", "data",
                "files")
MAX_WAIT_SECONDS = 3600


class RunParams(Params):
    id: str | None = Field(default=None, max_length=128)
    title: str | None = Field(default=None, max_length=512)
    params: dict[str, Any] | None = None
    input: dict[str, Any] | None = None
    test: Flag | None = None
    tags: StrList | None = None
    priority: Flag | None = None
    targets: StrList | None = None


class JobIdParams(Params):
    id: ObjectId


class GetJobParams(JobIdParams):
    remove: CsvList | None = None


class GetJobsParams(Params):
    ids: CsvList
    verbose: Flag | None = None


class ActiveParams(Params):
    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=0, ge=0)
    sort_by: str = "started"
    sort_dir: int = -1


class SearchJobsParams(Params):
    query: str = Field(default="*", max_length=MAX_QUERY_LENGTH)
    offset: int = Field(default=0, ge=0)
    limit: SearchLimit = Field(default=1, ge=1, le=100000)
    sort_by: str = "_id"
    sort_dir: int = -1
    verbose: Flag | None = None
    select: CsvList | None = None


def _job_visible(call: Call, job: dict[str, Any]) -> bool:
    user = call.user
    return user.can_category(job.get("category")) and (job.get("type") == "workflow"
                                                        or user.can_targets(job.get("targets") or []))


@router.verb("run_event", RunParams, privilege="run_jobs")
async def run_event(call: Call, p: RunParams) -> dict[str, Any]:
    """Start a job now; `/wait` answers with the finished job instead of its id."""
    services = call.services
    key = p.id or p.title
    if not key:
        raise ApiError("api", "Missing parameter: id")
    event = services.events.find(key)
    if event is None:
        raise ApiError("event", f"Event not found: {key}")
    check_access(call, event)
    if not p.test and not allows_manual_runs(event):
        raise ApiError("event", f"Event does not allow manual job runs: {key}")
    if not p.test and not event.get("enabled"):
        raise ApiError("event", f"Event is disabled: {key}")
    overrides = {k: v for k, v in p.fields_set().items() if k not in ("id", "title")}
    if event.get("type") != "workflow":
        plugin = services.lists["plugins"].get(str(event.get("plugin") or ""))
        try:
            overrides["params"] = job_params(dict(p.params or {}), event, plugin,
                                             force_locked=not call.user.is_admin)
        except ParamError as exc:
            raise ApiError("api", str(exc)) from None
    if call.files:  # multipart: posted files join the job's input files
        owner = call.user.username or call.user.actor
        files = await store_uploads(call, f"files/{owner}", {"username": owner})
        given = dict(p.input or {})
        earlier = given.get("files")
        given["files"] = [*(earlier if isinstance(earlier, list) else []), *files]
        overrides["input"] = given
    if p.targets is not None:
        call.require_targets(list(p.targets))
    if p.tags is not None:
        overrides["tags"] = list(dict.fromkeys([*(event.get("tags") or []), *p.tags]))
    principal = call.user
    try:
        job = await services.launcher.launch(
            event, overrides, source="key" if principal.kind == "api_key" else "user", manual=True,
            username=principal.username if principal.kind == "user" else "",
            api_key=principal.actor if principal.kind == "api_key" else "")
    except LaunchError as exc:
        raise ApiError("event", f"Failed to launch job: {exc.description}") from None
    if call.path_rest.rstrip("/").endswith("wait"):
        record = await services.jobs.wait(job["id"], MAX_WAIT_SECONDS)
        return {"code": 0, "job": record or services.jobs.get_active(job["id"])}
    return {"code": 0, "id": job["id"]}


@router.verb("get_job", GetJobParams, auth=USER)
async def get_job(call: Call, p: GetJobParams) -> dict[str, Any]:
    """A job, running or finished, plus the token for its log download links."""
    job = await call.services.jobs.get(p.id)
    if job is None:
        raise ApiError("notfound", f"Failed to locate job: {p.id}")
    if not _job_visible(call, job):
        raise ApiError("access", "You do not have the required account privileges to access this job.")
    for key in p.remove or []:
        job.pop(key, None)
    return {"code": 0, "job": job, "token": log_token(p.id, str(call.services.config.get("secret_key")))}


@router.verb("get_jobs", GetJobsParams, auth=USER)
async def get_jobs(call: Call, p: GetJobsParams) -> dict[str, Any]:
    """Several jobs by id, in the order asked; failures in place as `{err}`."""
    out: list[dict[str, Any]] = []
    for job_id in p.ids[:1000]:
        job = await call.services.jobs.get(job_id)
        if job is None or not _job_visible(call, job):
            out.append({"err": f"Failed to locate job: {job_id}"})
            continue
        if not p.verbose:
            job = {k: v for k, v in job.items() if k not in LIGHT_REMOVE}
        out.append(job)
    return {"code": 0, "jobs": out}


@router.verb("get_active_jobs", ActiveParams, auth=USER)
async def get_active_jobs(call: Call, p: ActiveParams) -> dict[str, Any]:
    """Running, queued and delayed jobs visible to the caller; other keys filter exactly."""
    declared = {"offset", "limit", "sort_by", "sort_dir"}
    filters = {k: v for k, v in p.fields_set().items() if k not in declared}
    rows = [j for j in call.services.jobs.active_jobs() if _job_visible(call, j)
            and all(str(j.get(k)) == str(v) for k, v in filters.items())]
    rows.sort(key=lambda j: (j.get(p.sort_by) is None, j.get(p.sort_by) or 0) if p.sort_by in ("started", "now")
              else str(j.get(p.sort_by, "")), reverse=p.sort_dir < 0)
    total = len(rows)
    rows = rows[p.offset:p.offset + p.limit] if p.limit else rows[p.offset:]
    return {"code": 0, "rows": rows, "list": {"length": total}}


@router.verb("abort_job", JobIdParams, privilege="abort_jobs")
async def abort_job(call: Call, p: JobIdParams) -> dict[str, Any]:
    """Abort an active job (its process tree is stopped on the satellite)."""
    job = call.services.jobs.active.get(p.id)
    if job is None:
        raise ApiError("job", f"Job not found or is no longer active: {p.id}")
    if not _job_visible(call, job):
        raise ApiError("access", "You do not have the required account privileges to access this job.")
    who = (f"API Key: {call.user.record.get('title', '')}" if call.user.kind == "api_key"
           else f"user: {call.user.username}")
    await call.services.jobs.abort(p.id, f"Manually aborted by {who}")
    return {"code": 0}


class ResumeParams(JobIdParams):
    params: dict[str, Any] | None = None
    redirect: str | None = Field(default=None, max_length=128, pattern=r"^\w+$")


@router.verb("resume_job", ResumeParams, privilege="run_jobs")
async def resume_job(call: Call, p: ResumeParams) -> dict[str, Any]:
    """Let a job held by a suspend action go on; `params` are merged into the job's params."""
    services = call.services
    job = services.jobs.active.get(p.id)
    if job is None:
        raise ApiError("job", f"Job not found or is no longer active: {p.id}")
    if not _job_visible(call, job):
        raise ApiError("access", "You do not have the required account privileges to access this job.")
    if not job.get("suspended"):
        raise ApiError("job", f"Job is not currently suspended: {p.id}")
    if p.redirect and not isinstance(job.get("workflow"), dict):
        raise ApiError("api", f"Job is not part of a workflow, so it cannot be redirected: {p.id}")
    params = dict(p.params or {})
    if params and not call.user.is_admin:
        plugin = services.lists["plugins"].get(str(job.get("plugin") or "")) or {}
        locked = {d.get("id") for d in plugin.get("params") or [] if isinstance(d, dict) and d.get("locked")}
        params = {k: v for k, v in params.items() if k not in locked}  # locked: admins only (plugins spec §3)
    who = (f"API Key: {call.user.record.get('title', '')}" if call.user.kind == "api_key"
           else f"user: {call.user.username}")
    if services.actions is None or not await services.actions.runner.suspender.resume(p.id, params,
                                                                                      p.redirect or "", who):
        raise ApiError("job", f"Job is not suspended: {p.id}")
    return {"code": 0}


@router.verb("flush_event_queue", JobIdParams, privilege="abort_jobs")
async def flush_event_queue(call: Call, p: JobIdParams) -> dict[str, Any]:
    """Drop every queued job of an event."""
    return {"code": 0, "count": await call.services.jobs.flush_queue(p.id)}


@router.verb("delete_job", JobIdParams, privilege="delete_jobs")
async def delete_job(call: Call, p: JobIdParams) -> dict[str, Any]:
    """Delete a finished job: its record, its log and its output files."""
    services = call.services
    if p.id in services.jobs.active:
        raise ApiError("job", f"Cannot delete a job that is still active: {p.id}")
    record = await services.jobs.store.get(p.id)
    if record is None:
        raise ApiError("job", f"Failed to locate job: {p.id}")
    if not _job_visible(call, record):
        raise ApiError("access", "You do not have the required account privileges to access this job.")
    await purge_job(services, record)  # record, today's stats, log, output files
    async with services.storage.transaction() as tx:
        await services.activity.record(tx, "job_delete", f"Job {p.id} deleted", client=call.client,
                                       username=call.user.actor, keywords=[p.id, str(record.get("event", ""))])
    return {"code": 0}


@router.verb("search_jobs", SearchJobsParams, auth=USER)
async def search_jobs(call: Call, p: SearchJobsParams) -> dict[str, Any]:
    """Search finished jobs (`event:ID code:0 tags:x date:today`, PxQL too)."""
    limit_clause: Any = None
    user = call.user
    if user.categories:
        limit_clause = jobs_table.c.category.in_(user.categories)
    if user.groups:
        groups = or_(*[jobs_table.c.groups.like(f"% {g} %") for g in user.groups])
        limit_clause = groups if limit_clause is None else limit_clause & groups
    try:
        rows, total = await call.services.jobs.store.search(p.query, offset=p.offset, limit=p.limit,
                                                            sort_by=p.sort_by, sort_dir=p.sort_dir,
                                                            extra=limit_clause, fields=p.select or None)
    except QueryError as exc:
        raise ApiError("api", str(exc)) from None
    if p.select:
        rows = [{k: r.get(k) for k in p.select} for r in rows]
    elif not p.verbose:
        rows = [{k: v for k, v in r.items() if k not in (*LIGHT_REMOVE, "output")} for r in rows]
    ttl = call.params.get("ttl", call.services.config.get("ttl", 300))
    call.response_headers["Cache-Control"] = f"public, max-age={int(ttl) if str(ttl).isdigit() else 300}"
    return {"code": 0, "rows": rows, "list": {"length": total}}


class TailParams(JobIdParams):
    bytes: int = Field(default=32768, ge=1, le=1048576)


@router.verb("tail_live_job_log", TailParams, auth=USER)
async def tail_live_job_log(call: Call, p: TailParams) -> dict[str, Any]:
    """The last bytes of a running job's output."""
    job = call.services.jobs.active.get(p.id)
    if job is None:
        return {"code": 0, "text": ""}
    if not _job_visible(call, job):
        raise ApiError("access", "You do not have the required account privileges to access this job.")
    return {"code": 0, "text": call.services.jobs.logs.tail(p.id, p.bytes)}


async def _log_response(call: Call, job_id: str, attachment: bool) -> Response:
    jobs = call.services.jobs
    live = jobs.active.get(job_id)
    headers: dict[str, str] = {}
    if attachment:
        prefix = "xyOps-Partial-Job-Log" if live else "xyOps-Job-Log"  # the names xyOps clients expect
        headers["Content-Disposition"] = f"attachment; filename={prefix}-{job_id}.txt"
    if live is not None:
        return Response(jobs.logs.tail(job_id, 1 << 30), media_type="text/plain", headers=headers)
    record = await jobs.store.get(job_id)
    if record is None:
        return Response("Job not found.\n", status_code=404, media_type="text/plain")
    if record.get("output"):
        return Response(record["output"], media_type="text/plain", headers=headers)
    archived = jobs.logs.read_archived(job_id)
    if archived is None:
        return Response(status_code=204)
    return Response(archived, media_type="text/plain", headers={**headers, "Content-Encoding": "gzip"})


@router.verb("get_job_log", JobIdParams, auth=USER)
async def get_job_log(call: Call, p: JobIdParams) -> Response:
    """The job's output as text (204 when it printed nothing)."""
    job = await call.services.jobs.get(p.id)
    if job is not None and not _job_visible(call, job):
        raise ApiError("access", "You do not have the required account privileges to access this job.")
    return await _log_response(call, p.id, attachment=False)


class TokenLogParams(JobIdParams):
    t: str = Field(max_length=64)


def _check_log_token(call: Call, p: TokenLogParams) -> None:
    if not hmac.compare_digest(p.t, log_token(p.id, str(call.services.config.get("secret_key")))):
        raise ApiError("access", "Invalid job log token.")


@router.verb("view_job_log", TokenLogParams, auth=TOKEN)
async def view_job_log(call: Call, p: TokenLogParams) -> Response:
    """The job's output, authorised by the token from `get_job`."""
    _check_log_token(call, p)
    return await _log_response(call, p.id, attachment=False)


@router.verb("download_job_log", TokenLogParams, auth=TOKEN)
async def download_job_log(call: Call, p: TokenLogParams) -> Response:
    """The job's output as a file download, authorised by the token from `get_job`."""
    _check_log_token(call, p)
    return await _log_response(call, p.id, attachment=True)


class FinishParams(JobIdParams):
    auth: str = Field(max_length=128)
    job: dict[str, Any]
    server: str | None = Field(default=None, max_length=64)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def satellite_auth_ok(call: Call, job_id: str, auth: str, server: str | None) -> bool:
    """A job-scoped or server-scoped satellite credential, or an API key (spec satellite §7.6)."""
    key = str(call.services.config.get("secret_key"))
    accepted = [_sha(job_id + key)]
    if server and re.fullmatch(r"\w+", server):
        server_token = _sha(server + key)
        accepted += [server_token, _sha(job_id + server_token)]
    if any(hmac.compare_digest(auth, candidate) for candidate in accepted):
        return True
    return call.services.api_keys.match(auth) is not None


@router.verb("finish_job", FinishParams, auth=TOKEN)
async def finish_job(call: Call, p: FinishParams) -> dict[str, Any]:
    """The satellite's final report of a job (internal)."""
    if not satellite_auth_ok(call, p.id, p.auth, p.server):
        raise ApiError("session", "Invalid authentication token.")
    job = call.services.jobs.active.get(p.id)
    server = p.server or (job or {}).get("server")
    await call.services.jobs.finish_from_api(p.id, {**p.job, "state": "complete"}, server)
    return {"code": 0}


class UploadParams(JobIdParams):
    auth: str = Field(max_length=128)
    server: str | None = Field(default=None, max_length=64)


def _url_name(name: str) -> str:
    """Storage-key form of a file name: `[\\w\\-.]` only, lowercase, `.bin` when it has no extension."""
    base = re.sub(r"[^\w\-.]", "_", name.replace("\\", "/").rsplit("/", 1)[-1]).lower().strip(".") or "file"
    return base if "." in base else base + ".bin"


@router.verb("upload_job_file", UploadParams, auth=TOKEN, empty_files_ok=True)
async def upload_job_file(call: Call, p: UploadParams) -> dict[str, Any]:
    """A satellite's output file (`file1`) of a running job, kept at `files/jobs/<job>/<random>/<name>`
    under the data folder; the key is also the file's URL path."""
    upload = call.files.get("file1")
    if not satellite_auth_ok(call, p.id, p.auth, p.server):
        raise ApiError("session", "Invalid authentication token.")
    if upload is None:
        raise ApiError("api", "Missing parameter: file1")
    job = call.services.jobs.active.get(p.id)
    if job is None:
        raise ApiError("job", f"Job not found or not active: {p.id}")
    if p.server and job.get("server") not in (None, "", p.server):
        raise ApiError("job", f"Job {p.id} does not run on server {p.server}")
    key = f"files/jobs/{p.id}/{secrets.token_urlsafe(24)}/{_url_name(upload['name'])}"
    target = call.services.config.home / "data" / key
    await asyncio.to_thread(_move_into_place, Path(upload["path"]), target)  # the dispatcher cleans the rest
    return {"key": key, "size": upload["size"]}


def _move_into_place(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(source, target)


class TagsParams(JobIdParams):
    tags: StrList


@router.verb("manage_job_tags", TagsParams, privilege="tag_jobs")
async def manage_job_tags(call: Call, p: TagsParams) -> dict[str, Any]:
    """Replace the tags of a finished job with the full list given (system tags included)."""
    record = await _finished_job(call, p.id, "tags")
    record["tags"] = list(p.tags)
    shown = ", ".join(t for t in p.tags if not t.startswith("_")) or "(None)"
    meta_line(record, f"Updated job tags: {shown}")
    await call.services.jobs.store.save(record)
    return {"code": 0}


class TicketsParams(JobIdParams):
    tickets: StrList


@router.verb("manage_job_tickets", TicketsParams, privilege="edit_tickets")
async def manage_job_tickets(call: Call, p: TicketsParams) -> dict[str, Any]:
    """Replace the ticket ids linked to a finished job."""
    record = await _finished_job(call, p.id, "tickets")
    record["tickets"] = list(p.tickets)
    meta_line(record, f"Updated job tickets: {', '.join(p.tickets) or '(None)'}")
    await call.services.jobs.store.save(record)
    return {"code": 0}


async def _finished_job(call: Call, job_id: str, what: str) -> dict[str, Any]:
    """The stored record of a completed job the caller may edit (running jobs are refused)."""
    if job_id in call.services.jobs.active:
        raise ApiError("job", f"Cannot update {what} of running job.")
    record = await call.services.jobs.store.get(job_id)
    if record is None or not record.get("final"):
        raise ApiError("job", f"Failed to update job: {job_id}: Job not found")
    if not _job_visible(call, record):
        raise ApiError("access", "You do not have the required account privileges to access this job.")
    return record


@router.verb("update_job", JobIdParams, auth=ADMIN)
async def update_job(call: Call, p: JobIdParams) -> dict[str, Any]:
    """Admin: shallow-update a job record (running or finished)."""
    fields = {k: v for k, v in p.fields_set().items() if k not in ("id", "event", "state", "final")}
    if await call.services.jobs.update_fields(p.id, fields):
        return {"code": 0}
    record = await call.services.jobs.store.get(p.id)
    if record is None:
        raise ApiError("job", f"Failed to locate job: {p.id}")
    record.update(fields)
    await call.services.jobs.store.save(record)
    return {"code": 0}

