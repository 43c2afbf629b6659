"""Maintenance endpoints: `get_internal_jobs` (a verb) and `POST /api/maintenance/rotate-key`.

The rotate-key route is ServOS's, not an xyOps verb: plain JSON in and out, a Bearer token
(admin API key, or an admin session id), and HTTP status codes that carry meaning
(spec key-rotation.md 4.2). It shares authentication with the verb API and the rotation
engine with `admin_rotate_secret_key`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sundial.api.call import Call
from sundial.api.dispatch import authenticate
from sundial.api.errors import ApiError
from sundial.api.params import Params
from sundial.api.registry import ADMIN, Verb, VerbRouter
from sundial.auth.privileges import Principal
from sundial.services import Services
from sundial.vault.crypto import SecretKey
from sundial.vault.errors import VaultError
from sundial.vault.keyring import parse_rotation_keys

router = VerbRouter()

MAX_BODY_BYTES = 4096
_STATUS = {"api": 400, "auth": 400, "session": 401, "access": 403, "admin": 409, "canary": 409, "master": 503,
           "rotate": 500}


@router.verb("get_internal_jobs", auth=ADMIN)
async def get_internal_jobs(call: Call, p: Params) -> dict[str, Any]:
    """Running internal jobs (key rotation, backups, maintenance) with their progress."""
    rows = call.services.internal_jobs.rows()
    return {"code": 0, "rows": rows, "list": {"length": len(rows)}}


def _error(code: str, description: str) -> Response:
    return JSONResponse({"code": code, "description": description}, status_code=_STATUS.get(code, 400))


async def _admin(services: Services, request: Request) -> Principal:
    """Bearer admin API key (or session id); 401 without valid credentials, 403 without admin."""
    call = Call(services=services, request=request, params={})
    verb = Verb(ns="maintenance", name="rotate-key", handler=rotate_key, params=Params, auth=ADMIN)
    try:
        principal = await authenticate(services, call, verb)
    except ApiError as exc:
        found = _session_from_bearer(services, request)
        if found is None:
            raise ApiError("session", exc.description) from None
        principal = found
    if not principal.is_admin:
        raise ApiError("access", "The admin privilege is required to rotate the master key.")
    return principal


def _session_from_bearer(services: Services, request: Request) -> Principal | None:
    from sundial.api.dispatch import principal_for

    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    session = services.users.get_session(token) if token else None
    user = services.users.get(session["username"]) if session else None
    if user is None or not user.get("active"):
        return None
    principal = principal_for(services, "user", user)
    principal.session = session
    return principal


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError("api", f"Request body is too large (limit {MAX_BODY_BYTES} bytes).")
    try:
        data = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise ApiError("api", "Malformed JSON in request body.") from None
    if not isinstance(data, dict):
        raise ApiError("api", "The JSON request body must be an object.")
    return data


def _keys(body: dict[str, Any]) -> tuple[SecretKey, SecretKey]:
    try:
        return parse_rotation_keys(body.get("old_key"), body.get("new_key"))
    except VaultError as exc:
        if "32-byte hex" not in exc.description:
            raise
        hint = ("A conductor whose secret key is not 64 hex characters cannot use this API: "
                "use admin_rotate_secret_key or `sundial key rotate`.")
        raise VaultError(exc.code, f"{exc.description}. {hint}") from None


async def rotate_key(request: Request, services: Services) -> Response:
    """`POST /api/maintenance/rotate-key` with `{old_key, new_key[, quiesce]}`."""
    try:
        if not services.is_primary():
            raise ApiError("master", "This conductor is not the primary.")
        principal = await _admin(services, request)
        body = await _body(request)
        old, new = _keys(body)
        call = Call(services=services, request=request, params={}, principal=principal)
        answer = await services.rotations.rotate_direct(old, new, username=principal.username,
                                                        actor=principal.actor, client=call.client,
                                                        quiesce=body.get("quiesce") is not False)
    except (ApiError, VaultError) as exc:
        return _error(str(exc.code), exc.description)
    return JSONResponse(answer)


def rotate_key_endpoint(services: Services) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint for `rotate_key`, bound to one conductor's services."""

    async def endpoint(request: Request) -> Response:
        return await rotate_key(request, services)

    return endpoint
