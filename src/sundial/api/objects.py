"""Verbs for categories, tags, roles and groups: one declaration per kind, one code path.

Category verbs check the caller's category limits, group verbs the group limits, as xyOps does.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, ValidationError, field_validator

from sundial.api.call import Call
from sundial.api.errors import ApiError, validation_error
from sundial.api.listing import Rendered, list_reply
from sundial.api.params import Flag, Icon, IdParams, Notes, ObjectId, Params, StrList, Title
from sundial.api.registry import USER, VerbRouter
from sundial.events.validation import EventError, validate_actions, validate_limits
from sundial.ids import generate_id
from sundial.objects import CATEGORY, GROUP, ROLE, TAG, ObjectError, ObjectKind

router = VerbRouter()


class ObjectParams(Params):
    """Fields common to every kind; kinds add their own below."""

    id: ObjectId | None = None
    title: Title
    icon: Icon | None = None
    notes: Notes | None = None


class ObjectUpdate(Params):
    id: ObjectId
    title: Title | None = None
    icon: Icon | None = None
    notes: Notes | None = None


class CategoryParams(ObjectParams):
    enabled: Flag | None = None
    color: str | None = None
    limits: list[Any] | None = None
    actions: list[Any] | None = None
    sort_order: int | None = None


class CategoryUpdate(ObjectUpdate):
    enabled: Flag | None = None
    color: str | None = None
    limits: list[Any] | None = None
    actions: list[Any] | None = None
    sort_order: int | None = None


class RoleParams(ObjectParams):
    enabled: Flag | None = None
    privileges: dict[str, Any] | None = None
    categories: StrList | None = None
    groups: StrList | None = None


class RoleUpdate(ObjectUpdate):
    enabled: Flag | None = None
    privileges: dict[str, Any] | None = None
    categories: StrList | None = None
    groups: StrList | None = None


def _check_regex(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise ValueError("Malformed parameter: hostname_match")
    return value


def _check_group_fields(fields: dict[str, Any]) -> None:
    """A hostname pattern that does not compile is a `group` error in xyOps, not `api`."""
    pattern = fields.get("hostname_match")
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ApiError("group", f"Invalid hostname match: {exc}") from None
    if "alert_actions" in fields:
        _check_event_rules(actions=fields["alert_actions"])


def _check_category_fields(fields: dict[str, Any]) -> None:
    """Category limits and actions are applied to jobs, so they pass the event rules when saved."""
    _check_event_rules(limits=fields.get("limits"), actions=fields.get("actions"))


def _check_event_rules(limits: list[Any] | None = None, actions: list[Any] | None = None) -> None:
    try:
        validate_limits(limits or [])
        validate_actions(actions or [])
    except EventError as exc:
        raise ApiError(exc.code, exc.description) from None


_FIELD_CHECKS = {"categories": _check_category_fields, "groups": _check_group_fields}


class GroupParams(ObjectParams):
    hostname_match: str = Field(max_length=1024)
    alert_actions: list[Any] | None = None
    max_jobs_per_server: int | None = None

    _regex = field_validator("hostname_match")(_check_regex)


class GroupUpdate(ObjectUpdate):
    hostname_match: str | None = Field(default=None, max_length=1024)
    alert_actions: list[Any] | None = None
    max_jobs_per_server: int | None = None

    _regex = field_validator("hostname_match")(_check_regex)


def _restrict(call: Call, kind: ObjectKind, item_id: str | None) -> None:
    if kind is CATEGORY:
        call.require_category(item_id)
    elif kind is GROUP:
        call.require_group(item_id)


def _visible(call: Call, kind: ObjectKind, item: dict[str, Any]) -> bool:
    if kind is CATEGORY:
        return call.user.can_category(item["id"])
    if kind is GROUP:
        return call.user.can_group(item["id"])
    return True


def _no_check(fields: dict[str, Any]) -> None:
    return None


def register_kind(kind: ObjectKind, create_model: type[Params], update_model: type[Params]) -> None:
    """Declare get_X(s), create_X, update_X and delete_X for one kind."""
    plural, single, suffix = kind.list_name, kind.singular, kind.privilege_suffix

    @router.verb(f"get_{plural}", auth=USER, summary=f"List {plural} visible to the caller.")
    async def get_all(call: Call, p: Params) -> dict[str, Any] | Rendered:
        items = call.services.list(plural)
        if kind not in (CATEGORY, GROUP) or not call.user.limited or call.user.is_admin:
            return list_reply(items)  # the caller sees the whole list: its cached body
        rows = [o for o in items.all() if _visible(call, kind, o)]
        return {"code": 0, "rows": rows, "list": {"length": len(rows)}}

    @router.verb(f"get_{single}", IdParams, auth=USER, summary=f"One {single} by id.")
    async def get_one(call: Call, p: IdParams) -> dict[str, Any]:
        item = call.services.list(plural).get(p.id)
        if item is None:
            raise ApiError("notfound", f"Failed to locate {kind.label.lower()}: {p.id}")
        _restrict(call, kind, p.id)
        return {"code": 0, single: item}

    @router.verb(f"create_{single}", create_model, privilege=f"create_{suffix}",
                 summary=f"Create a {single}.")
    async def create(call: Call, p: Params) -> dict[str, Any]:
        fields = p.fields_set()
        fields["id"] = fields.get("id") or generate_id(kind.prefix)  # the limit check names the new id
        _FIELD_CHECKS.get(plural, _no_check)(fields)
        _restrict(call, kind, fields["id"])
        try:
            item = await call.services.objects.create(kind, call.services.list(plural), fields,
                                                      username=call.user.username,
                                                      actor=call.user.actor, client=call.client)
        except ObjectError as exc:
            raise ApiError(exc.code, exc.description) from None
        return {"code": 0, single: item}

    @router.verb(f"update_{single}", update_model, privilege=f"edit_{suffix}",
                 summary=f"Shallow-update a {single} (bumps its revision).")
    async def update(call: Call, p: Params) -> dict[str, Any]:
        fields = p.fields_set()
        _FIELD_CHECKS.get(plural, _no_check)(fields)
        _restrict(call, kind, fields["id"])
        try:
            await call.services.objects.update(kind, call.services.list(plural), fields["id"], fields,
                                               actor=call.user.actor, client=call.client)
        except ObjectError as exc:
            raise ApiError(exc.code, exc.description) from None
        return {"code": 0}

    @router.verb(f"delete_{single}", IdParams, privilege=f"delete_{suffix}",
                 summary=f"Delete a {single}.")
    async def delete(call: Call, p: IdParams) -> dict[str, Any]:
        _restrict(call, kind, p.id)
        try:
            await call.services.objects.delete(kind, call.services.list(plural), p.id,
                                               actor=call.user.actor, client=call.client)
        except ObjectError as exc:
            raise ApiError(exc.code, exc.description) from None
        return {"code": 0}


class MultiUpdateParams(Params):
    items: list[dict[str, Any]] | None = Field(default=None, max_length=10000)


def register_multi_update(kind: ObjectKind, update_model: type[Params]) -> None:
    """Declare multi_update_X: several partial objects in one call, for callers without limits."""
    plural, single, suffix = kind.list_name, kind.singular, kind.privilege_suffix

    @router.verb(f"multi_update_{single}", MultiUpdateParams, privilege=f"edit_{suffix}",
                 summary=f"Merge several partial {plural} at once (e.g. `sort_order`); no revision bump.")
    async def multi_update(call: Call, p: MultiUpdateParams) -> dict[str, Any]:
        if not p.items:  # xyOps answers this with code `session`, and so must we
            raise ApiError("session", "Request missing 'items' parameter, or has zero length.")
        _restrict(call, kind, "*")  # only callers without category/group limits
        changes = [_checked_item(update_model, item) for item in p.items if item.get("id")]
        for change in changes:
            _FIELD_CHECKS.get(plural, _no_check)(change)
        await call.services.objects.multi_update(kind, call.services.list(plural), changes,
                                                 actor=call.user.actor, client=call.client)
        return {"code": 0}


def _checked_item(update_model: type[Params], item: dict[str, Any]) -> dict[str, Any]:
    """Each item passes the same field checks as `update_X` (types, title, icon, regex)."""
    try:
        return update_model.model_validate(item).fields_set()
    except ValidationError as exc:
        raise validation_error(exc) from None


register_kind(CATEGORY, CategoryParams, CategoryUpdate)
register_kind(TAG, ObjectParams, ObjectUpdate)
register_kind(ROLE, RoleParams, RoleUpdate)
register_kind(GROUP, GroupParams, GroupUpdate)
register_multi_update(CATEGORY, CategoryUpdate)
register_multi_update(GROUP, GroupUpdate)
