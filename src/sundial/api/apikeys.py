"""API key verbs (admin only). The plain key is returned once, by `create_api_key`."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from sundial.api.call import Call
from sundial.api.errors import ApiError
from sundial.api.params import Flag, Icon, IdParams, Notes, Number, ObjectId, Params, StrList, Title
from sundial.api.registry import ADMIN, VerbRouter
from sundial.api.users import list_header
from sundial.auth.apikeys import generate_plain_key, key_hash, key_mask
from sundial.ids import generate_id
from sundial.objects import API_KEY, ObjectError

router = VerbRouter()


class CreateKeyParams(Params):
    title: Title
    description: Notes = ""
    active: Flag | None = None
    expires: Number | None = None
    privileges: dict[str, Any] = Field(default_factory=dict)
    roles: StrList = Field(default_factory=list)
    max_per_sec: Number | None = None
    icon: Icon | None = None


class UpdateKeyParams(Params):
    id: ObjectId
    title: Title | None = None
    description: Notes | None = None
    active: Flag | None = None
    expires: Number | None = None
    privileges: dict[str, Any] | None = None
    roles: StrList | None = None
    max_per_sec: Number | None = None


def _error(exc: ObjectError) -> ApiError:
    return ApiError(exc.code, exc.description)


@router.verb("get_api_keys", auth=ADMIN)
async def get_api_keys(call: Call, p: Params) -> dict[str, Any]:
    """All API keys (hashes and masks only), newest first as xyOps lists them."""
    rows = call.services.list("api_keys").all()[::-1]
    return {"code": 0, "rows": rows, "list": list_header(len(rows), 100)}


@router.verb("get_api_key", IdParams, auth=ADMIN)
async def get_api_key(call: Call, p: IdParams) -> dict[str, Any]:
    """One API key record."""
    record = call.services.list("api_keys").get(p.id)
    if record is None:
        raise ApiError("notfound", f"Failed to locate API Key: {p.id}")
    return {"code": 0, "api_key": record}


@router.verb("create_api_key", CreateKeyParams, auth=ADMIN)
async def create_api_key(call: Call, p: CreateKeyParams) -> dict[str, Any]:
    """Create a key; the reply's `plain_key` is the only time the key is shown."""
    plain = generate_plain_key()
    key_id = generate_id("k")
    fields = {k: v for k, v in p.fields_set().items() if k not in ("key", "id", "mask")}
    fields.update(id=key_id, key=key_hash(plain, key_id), mask=key_mask(plain),
                  active=p.active if p.active else 1)
    fields.setdefault("description", "")
    fields.setdefault("privileges", {})
    fields.setdefault("roles", [])
    record = await call.services.objects.create(API_KEY, call.services.list("api_keys"), fields,
                                                username=call.user.username, actor=call.user.actor,
                                                client=call.client)
    return {"code": 0, "api_key": record, "plain_key": plain}


@router.verb("update_api_key", UpdateKeyParams, auth=ADMIN)
async def update_api_key(call: Call, p: UpdateKeyParams) -> dict[str, Any]:
    """Change a key's title, privileges, roles, expiry or active flag (never the key itself)."""
    fields = {k: v for k, v in p.fields_set().items() if k not in ("key", "mask", "id")}
    try:
        await call.services.objects.update(API_KEY, call.services.list("api_keys"), p.id, fields,
                                           actor=call.user.actor, client=call.client)
    except ObjectError as exc:
        raise _error(exc) from None
    return {"code": 0}


@router.verb("delete_api_key", IdParams, auth=ADMIN)
async def delete_api_key(call: Call, p: IdParams) -> dict[str, Any]:
    """Delete a key; it stops working at once."""
    try:
        await call.services.objects.delete(API_KEY, call.services.list("api_keys"), p.id,
                                           actor=call.user.actor, client=call.client)
    except ObjectError as exc:
        raise _error(exc) from None
    call.services.api_keys.forget(p.id)
    return {"code": 0}

