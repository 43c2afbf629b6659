"""Notification channel verbs (events-and-jobs.md §13).

Like xyOps, create fills in no defaults; unlike xyOps, the declared fields are type-checked
when present, and a channel without `users`/`email` is read as having none.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from sundial.actions.records import CHANNEL
from sundial.api.call import Call
from sundial.api.errors import ApiError
from sundial.api.listing import Rendered, list_reply
from sundial.api.params import Flag, Icon, IdParams, Notes, ObjectId, Params, StrList, Title
from sundial.api.registry import USER, VerbRouter
from sundial.objects import ObjectError

router = VerbRouter()


class ChannelFields(Params):
    enabled: Flag | None = None
    icon: Icon | None = None
    notes: Notes | None = None
    users: StrList | None = None
    email: str | None = Field(default=None, max_length=4096)
    web_hook: str | None = Field(default=None, max_length=64, pattern=r"^\w*$")
    run_event: str | None = Field(default=None, max_length=64, pattern=r"^\w*$")
    sound: str | None = Field(default=None, max_length=256)
    max_per_day: int | None = Field(default=None, ge=0)


class CreateChannelParams(ChannelFields):
    id: ObjectId | None = None
    title: Title


class UpdateChannelParams(ChannelFields):
    id: ObjectId
    title: Title | None = None


@router.verb("get_channels", auth=USER)
async def get_channels(call: Call, p: Params) -> Rendered:
    """All notification channels."""
    return list_reply(call.services.list("channels"))


@router.verb("get_channel", IdParams, auth=USER)
async def get_channel(call: Call, p: IdParams) -> dict[str, Any]:
    """One channel by id."""
    channel = call.services.list("channels").get(p.id)
    if channel is None:
        raise ApiError("notfound", f"Failed to locate channel: {p.id}")
    return {"code": 0, "channel": channel}


@router.verb("create_channel", CreateChannelParams, privilege="create_channels")
async def create_channel(call: Call, p: CreateChannelParams) -> dict[str, Any]:
    """Create a channel (no defaults are filled in, as in xyOps)."""
    try:
        channel = await call.services.objects.create(CHANNEL, call.services.list("channels"), p.fields_set(),
                                                     username=call.user.username, actor=call.user.actor,
                                                     client=call.client)
    except ObjectError as exc:
        raise ApiError(exc.code, exc.description) from None
    return {"code": 0, "channel": channel}


@router.verb("update_channel", UpdateChannelParams, privilege="edit_channels")
async def update_channel(call: Call, p: UpdateChannelParams) -> dict[str, Any]:
    """Shallow-update a channel (revision +1)."""
    try:
        await call.services.objects.update(CHANNEL, call.services.list("channels"), p.id, p.fields_set(),
                                           actor=call.user.actor, client=call.client)
    except ObjectError as exc:
        raise ApiError(exc.code, exc.description) from None
    return {"code": 0}


@router.verb("delete_channel", IdParams, privilege="delete_channels")
async def delete_channel(call: Call, p: IdParams) -> dict[str, Any]:
    """Delete a channel."""
    try:
        await call.services.objects.delete(CHANNEL, call.services.list("channels"), p.id,
                                           actor=call.user.actor, client=call.client)
    except ObjectError as exc:
        raise ApiError(exc.code, exc.description) from None
    return {"code": 0}
