"""`stream_job`: one job's progress as Server-Sent Events, for magic-link pages and scripts.

The stream is `start {}`, then `update` events carrying the job keys that changed (with
`xy: 1`), then one last `update` with the outcome (`code`, `description`, `data`, `files`...)
and `end {}`. Updates come from the live bus (`live.feeds` publishes each change of the job),
so the stream costs nothing while the job is quiet; a comment line every few idle seconds
lets a vanished client be noticed. Auth: the `token` a magic launch returned
(`sha256_hex("stream" + id + secret_key)`), or a session/API key with access to the job.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from typing import Any

import orjson
from pydantic import Field
from starlette.responses import StreamingResponse

from sundial.api.call import Call
from sundial.api.dispatch import authenticate
from sundial.api.errors import ApiError
from sundial.api.events import check_access
from sundial.api.magic import stream_token
from sundial.api.params import ObjectId, Params
from sundial.api.registry import TOKEN, USER, Verb, VerbRouter
from sundial.auth.privileges import Principal
from sundial.live.bus import Subscriber
from sundial.live.feeds import JOB_KEYS, job_topic, pick
from sundial.services import Services

router = VerbRouter()
IDLE_SECONDS = 10.0
FINAL_KEYS = ("id", "code", "description", "completed", "elapsed", "table", "html", "data", "files")


class StreamParams(Params):
    id: ObjectId
    token: str | None = Field(default=None, max_length=128)


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data, default=str) + b"\n\n"


@router.verb("stream_job", StreamParams, auth=TOKEN)
async def stream_job(call: Call, p: StreamParams) -> StreamingResponse:
    """A job's updates as Server-Sent Events until it completes."""
    principal = await _principal(call, p)
    services = call.services
    job = services.jobs.active.get(p.id)
    if job is None:
        record = await services.jobs.store.get(p.id)
        if record is None:
            raise ApiError("notfound", f"Failed to load job details: {p.id}")
        job = record
    if principal.kind != "token":
        call.principal = principal
        check_access(call, job)
    sub = Subscriber(principal)
    if p.id in services.jobs.active:  # before any await: no change can slip between; a finished
        services.live.subscribe(sub, job_topic(p.id))  # job's topic would never end, so none then
    return StreamingResponse(_frames(services, sub, p.id), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _principal(call: Call, p: StreamParams) -> Principal:
    if p.token is not None:
        expected = stream_token(p.id, str(call.services.config.get("secret_key")))
        if not hmac.compare_digest(p.token, expected):
            raise ApiError("api", "Authentication failed.")
        return Principal(kind="token", record={})
    verb = Verb(ns="app", name="stream_job", handler=stream_job, params=StreamParams, auth=USER)
    return await authenticate(call.services, call, verb)


async def _frames(services: Services, sub: Subscriber, job_id: str) -> AsyncIterator[bytes]:
    """start, the changes, the outcome, end; the subscription is dropped however the stream stops."""
    try:
        yield _event("start", {})
        sent: dict[str, Any] = {}
        live = services.jobs.active.get(job_id)
        if live is not None:
            yield _event("update", _changes(pick(live, JOB_KEYS), sent, first=True))
        while job_id in services.jobs.active:
            text = await sub.next(IDLE_SECONDS)
            if text is None:
                if sub.overflowed:
                    break
                yield b": idle\n\n"
                continue
            message = orjson.loads(text)
            if message.get("type") == "final":
                break
            if message.get("type") == "job":
                update = _changes(message.get("job") or {}, sent, first=not sent)
                if len(update) > 1:
                    yield _event("update", update)
        yield _event("update", await _outcome(services, job_id))
        yield _event("end", {})
    finally:
        services.live.drop(sub)


def _changes(job: dict[str, Any], sent: dict[str, Any], first: bool) -> dict[str, Any]:
    """The keys whose values differ from what this stream already sent (all of them at first)."""
    update: dict[str, Any] = {"xy": 1}
    for key, value in job.items():
        if first or sent.get(key) != value:
            update[key] = value
            sent[key] = value
    if first:
        update.setdefault("progress", job.get("progress") or 0)
    return update


async def _outcome(services: Services, job_id: str) -> dict[str, Any]:
    record = await services.jobs.store.get(job_id)
    if record is None or not record.get("final"):
        return {"xy": 1, "id": job_id, "error": True, "code": 1,
                "description": f"Failed to load job data: {job_id}"}
    return {"xy": 1, **{k: record[k] for k in FINAL_KEYS if k in record}}
