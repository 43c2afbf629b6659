"""Plugin verbs. Saving validates every parameter definition, so events can trust them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from sundial.api.call import Call
from sundial.api.errors import ApiError
from sundial.api.listing import Rendered, list_reply
from sundial.api.params import Flag, Icon, IdParams, Notes, Number, ObjectId, Params, StrList, Title
from sundial.api.registry import USER, VerbRouter
from sundial.objects import ObjectError
from sundial.plugins.params import ParamError, validate_definitions
from sundial.plugins.stock import PLUGIN

router = VerbRouter()
PLUGIN_TYPES = ("event", "monitor", "action", "scheduler")


class PluginFields(Params):
    icon: Icon | None = None
    notes: Notes | None = None
    enabled: Flag | None = None
    script: str | None = Field(default=None, max_length=4 * 1024 * 1024)
    params: Any = None  # checked by validate_definitions, which words its errors as xyOps does
    kill: Literal["none", "parent", "all"] | None = None
    runner: Flag | None = None
    timeout: Number | None = None
    groups: StrList | None = None
    format: Literal["text", "json", "xml"] | None = None
    quick: Flag | None = None
    cwd: str | None = None


class CreatePluginParams(PluginFields):
    id: ObjectId | None = None
    title: Title
    type: str = Field(min_length=1, max_length=32)  # a wrong value is "Malformed parameter: type"
    command: str = Field(min_length=1, max_length=4096)


class UpdatePluginParams(PluginFields):
    id: ObjectId
    title: Title | None = None
    type: str | None = Field(default=None, min_length=1, max_length=32)
    command: str | None = Field(default=None, min_length=1, max_length=4096)


def _check_params(fields: dict[str, Any]) -> None:
    if "type" in fields and fields["type"] not in PLUGIN_TYPES:
        raise ApiError("api", "Malformed parameter: type")
    if "params" in fields:
        try:
            validate_definitions(fields["params"])
        except ParamError as exc:
            raise ApiError("api", str(exc)) from None


@router.verb("get_plugins", auth=USER)
async def get_plugins(call: Call, p: Params) -> Rendered:
    """All plugins (event, monitor, action and scheduler)."""
    return list_reply(call.services.list("plugins"))


@router.verb("get_plugin", IdParams, auth=USER)
async def get_plugin(call: Call, p: IdParams) -> dict[str, Any]:
    """One plugin by id."""
    plugin = call.services.list("plugins").get(p.id)
    if plugin is None:
        raise ApiError("notfound", f"Failed to locate plugin: {p.id}")
    return {"code": 0, "plugin": plugin}


@router.verb("create_plugin", CreatePluginParams, privilege="create_plugins")
async def create_plugin(call: Call, p: CreatePluginParams) -> dict[str, Any]:
    """Create a plugin; its parameter definitions must be well-formed."""
    fields = p.fields_set()
    _check_params(fields)
    fields.pop("stock", None)
    try:
        plugin = await call.services.objects.create(PLUGIN, call.services.list("plugins"), fields,
                                                    username=call.user.username, actor=call.user.actor,
                                                    client=call.client)
    except ObjectError as exc:
        raise ApiError(exc.code, exc.description) from None
    return {"code": 0, "plugin": plugin}


@router.verb("update_plugin", UpdatePluginParams, privilege="edit_plugins")
async def update_plugin(call: Call, p: UpdatePluginParams) -> dict[str, Any]:
    """Shallow-update a plugin; returns the updated record."""
    plugins = call.services.list("plugins")
    if p.id not in plugins:
        raise ApiError("api", f"Plugin not found: {p.id}")
    fields = p.fields_set()
    _check_params(fields)
    try:
        plugin = await call.services.objects.update(PLUGIN, plugins, p.id, fields, actor=call.user.actor,
                                                    client=call.client)
    except ObjectError as exc:
        raise ApiError(exc.code, exc.description) from None
    return {"code": 0, "plugin": plugin}


@router.verb("delete_plugin", IdParams, privilege="delete_plugins")
async def delete_plugin(call: Call, p: IdParams) -> dict[str, Any]:
    """Delete a plugin."""
    try:
        await call.services.objects.delete(PLUGIN, call.services.list("plugins"), p.id,
                                           actor=call.user.actor, client=call.client)
    except ObjectError as exc:
        raise ApiError(exc.code, exc.description) from None
    return {"code": 0}
