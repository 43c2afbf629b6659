"""Web hook verbs (secrets-and-webhooks.md §7.4): thin shells over `sundial.actions`.

Parameter errors are `code:"api"`; record errors (headers, body macros, duplicate or unknown
id) are `code:"web_hook"`; firing errors from `test_web_hook` are `code:"webhook"`, as in xyOps.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints

from sundial.actions.records import METHOD, URL_START, WEB_HOOK, check_headers, check_web_hook
from sundial.actions.service import ActionService
from sundial.api.call import Call
from sundial.api.errors import ApiError
from sundial.api.listing import Rendered, list_reply
from sundial.api.params import Flag, Icon, IdParams, Notes, Number, ObjectId, Params, Title
from sundial.api.registry import TOKEN, USER, VerbRouter
from sundial.ids import generate_id
from sundial.objects import ObjectError

router = VerbRouter()


def _method(value: str) -> str:
    if not METHOD.match(value):
        raise ValueError("Malformed parameter: method")
    return value


def _url(value: str) -> str:
    if not URL_START.match(value):
        raise ValueError("Malformed parameter: url")
    return value


Method = Annotated[str, StringConstraints(max_length=32), AfterValidator(_method)]
Url = Annotated[str, StringConstraints(max_length=8192), AfterValidator(_url)]


class HookFields(Params):
    enabled: Flag | None = None
    icon: Icon | None = None
    notes: Notes | None = None
    headers: Any = None  # checked by check_headers (a `web_hook` error, as in xyOps)
    body: str | None = Field(default=None, max_length=1 << 20)
    timeout: Number | None = Field(default=None, gt=0, le=86400)
    retries: int | None = Field(default=None, ge=0, le=32)
    follow: Flag | None = None
    ssl_cert_bypass: Flag | None = None
    max_per_day: int | None = Field(default=None, ge=0)


class CreateHookParams(HookFields):
    id: ObjectId | None = None
    title: Title
    method: Method
    url: Url


class UpdateHookParams(HookFields):
    id: ObjectId
    title: Title | None = None
    method: Method | None = None
    url: Url | None = None


class TestHookParams(HookFields):
    id: ObjectId
    title: Title
    method: Method
    url: Url


class FireJobHookParams(Params):
    job: str = Field(max_length=64)
    server: str = Field(max_length=128)
    web_hook: str = Field(max_length=64)
    text: str | None = Field(default=None, max_length=65536)


def actions(call: Call) -> ActionService:
    service = call.services.actions
    if service is None:
        raise ApiError("internal", "Actions are not available on this conductor.")
    return service


def _object_error(exc: ObjectError) -> ApiError:
    return ApiError(exc.code, exc.description)


def _hook_fields(p: Params) -> dict[str, Any]:
    fields = p.fields_set()
    if isinstance(fields.get("method"), str):
        fields["method"] = fields["method"].upper()
    return fields


@router.verb("get_web_hooks", auth=USER)
async def get_web_hooks(call: Call, p: Params) -> Rendered:
    """All web hooks."""
    return list_reply(call.services.list("web_hooks"))


@router.verb("get_web_hook", IdParams, auth=USER)
async def get_web_hook(call: Call, p: IdParams) -> dict[str, Any]:
    """One web hook by id."""
    hook = call.services.list("web_hooks").get(p.id)
    if hook is None:
        raise ApiError("notfound", f"Failed to locate web hook: {p.id}")
    return {"code": 0, "web_hook": hook}


@router.verb("create_web_hook", CreateHookParams, privilege="create_web_hooks")
async def create_web_hook(call: Call, p: CreateHookParams) -> dict[str, Any]:
    """Create a web hook; defaults filled, headers and body macros checked.

    The id is generated before the checks (as xyOps does), so their messages can name it.
    """
    fields = _hook_fields(p)
    fields["id"] = fields.get("id") or generate_id(WEB_HOOK.prefix)
    try:
        check_web_hook(fields["id"], fields)
        hook = await call.services.objects.create(WEB_HOOK, call.services.list("web_hooks"), fields,
                                                  username=call.user.username, actor=call.user.actor,
                                                  client=call.client)
    except ObjectError as exc:
        raise _object_error(exc) from None
    return {"code": 0, "web_hook": hook}


@router.verb("update_web_hook", UpdateHookParams, privilege="edit_web_hooks")
async def update_web_hook(call: Call, p: UpdateHookParams) -> dict[str, Any]:
    """Shallow-update a web hook (revision +1)."""
    fields = _hook_fields(p)
    try:
        check_web_hook(p.id, fields)
        await call.services.objects.update(WEB_HOOK, call.services.list("web_hooks"), p.id, fields,
                                           actor=call.user.actor, client=call.client)
    except ObjectError as exc:
        raise _object_error(exc) from None
    return {"code": 0}


@router.verb("delete_web_hook", IdParams, privilege="delete_web_hooks")
async def delete_web_hook(call: Call, p: IdParams) -> dict[str, Any]:
    """Delete a web hook."""
    try:
        await call.services.objects.delete(WEB_HOOK, call.services.list("web_hooks"), p.id,
                                           actor=call.user.actor, client=call.client)
    except ObjectError as exc:
        raise _object_error(exc) from None
    return {"code": 0}


@router.verb("test_web_hook", TestHookParams, privilege="edit_web_hooks")
async def test_web_hook(call: Call, p: TestHookParams) -> dict[str, Any]:
    """Fire a hook (saved, overlaid with the request, or unsaved) with sample data; stores nothing."""
    fields = _hook_fields(p)
    stored = call.services.list("web_hooks").get(p.id) or {}
    hook = {**stored, **fields}
    hook.setdefault("body", "")
    try:
        check_headers(p.id, hook.get("headers") or [])
    except ObjectError as exc:
        raise _object_error(exc) from None
    sample = f"Web Hook Test: {hook['title']}"
    data = {"_fallback": sample, "text": sample, "content": sample, "message": sample}
    result = await actions(call).web_hooks.fire(hook, data)
    if result.code != 0:
        raise ApiError("webhook", re.sub(r"\s+", " ", result.description))
    return {"code": 0, "result": {"code": 0, "description": result.description, "details": result.details}}


@router.verb("fire_job_web_hook", FireJobHookParams, auth=TOKEN)
async def fire_job_web_hook(call: Call, p: FireJobHookParams) -> dict[str, Any]:
    """A running job fires a hook in its own context; the ids are the credentials, as in xyOps."""
    services = call.services
    job = services.jobs.get_active(p.job)
    online = {str(s.get("id")) for s in services.jobs.fleet.online_servers()}
    if job is None or job.get("server") != p.server or p.server not in online or p.web_hook not in \
            services.list("web_hooks"):
        raise ApiError("api", "Invalid.")
    action = {"enabled": True, "condition": "continue", "type": "web_hook", "web_hook": p.web_hook,
              "text": p.text or ""}
    fields, _ = await actions(call).runner.run_action(job, action)
    return {**action, **fields}
