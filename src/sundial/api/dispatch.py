"""HTTP entry of the verb API: parse params, authenticate, authorize, run, render the envelope.

Every failure path ends in an envelope; an unexpected exception is logged with a reference
and answered as `internal`, so no request can take the process down.
"""

from __future__ import annotations

import json
import re
import tempfile
import traceback
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from sundial.api.call import Call, require_privilege
from sundial.api.errors import ApiError, http_status, validation_error
from sundial.api.listing import Rendered
from sundial.api.params import find_reserved_key
from sundial.api.registry import ADMIN, PUBLIC, SESSION, TOKEN, Registry, Verb
from sundial.auth.privileges import Principal, effective
from sundial.ids import generate_id
from sundial.services import Services

_JSON_TYPES = ("text", "javascript", "js", "json")
CREDENTIAL_PARAMS = ("session_id", "api_key", "csrf_token")


def render(data: dict[str, Any], path: str, pretty: bool = False,
           headers: dict[str, str] | None = None, status: int | None = None) -> Response:
    if pretty:
        body = (json.dumps(data, indent="\t", default=str) + "\n").encode()
    else:
        body = orjson.dumps(data, default=str, option=orjson.OPT_APPEND_NEWLINE)
    code = data.get("code", 0)
    return Response(body, status_code=status or http_status(code, path),
                    media_type="application/json", headers=headers)


def error_response(exc: ApiError, path: str) -> Response:
    return render({"code": exc.code, "description": exc.description}, path)


class Dispatcher:
    def __init__(self, services: Services, registry: Registry) -> None:
        self.services = services
        self.registry = registry
        self.log = services.logger("API")
        self.error_log = services.logger("Error")

    async def __call__(self, request: Request) -> Response:
        ns, name = request.path_params["ns"], request.path_params["name"]
        path = request.url.path
        verb = self.registry.get(ns, name)
        if verb is None:
            return render({"code": 1, "description": f"Unsupported API: {ns}/api_{name}"}, path)
        try:
            return await self._run(verb, request, path)
        except ApiError as exc:
            return error_response(exc, path)
        except Exception:
            ref = generate_id("x")
            self.error_log.error("internal", f"Unhandled error in {ns}/{name} (ref {ref})",
                                 {"trace": traceback.format_exc(limit=20)})
            return render({"code": "internal",
                           "description": f"Internal error while running {name}; "
                                          f"details are in Error.log (ref {ref})."}, path)

    async def _run(self, verb: Verb, request: Request, path: str) -> Response:
        params, files = await read_params(request, self.services, verb.empty_files_ok)
        try:
            return await self._call(verb, request, path, params, files)
        finally:
            if files:  # handlers that keep an upload move it away first
                _discard_uploads(files)

    async def _call(self, verb: Verb, request: Request, path: str, params: dict[str, Any],
                    files: dict[str, dict[str, Any]]) -> Response:
        call = Call(services=self.services, request=request, params=params, files=files,
                    path_rest=request.path_params.get("rest", ""))
        bad_key = find_reserved_key(params)
        if bad_key is not None:
            raise ApiError("api", f"Invalid parameter: {bad_key} (illegal key)")
        model = None
        if verb.params_first:
            model = validate(verb, params)
        if verb.primary_only and not self.services.is_primary():
            raise ApiError("master", "This conductor is not the primary.")
        if verb.auth not in (PUBLIC, TOKEN):
            call.principal = await authenticate(self.services, call, verb)
            privilege = verb.required_privilege
            if privilege:
                require_privilege(call.principal, privilege)
        for key in CREDENTIAL_PARAMS:
            params.pop(key, None)
        if model is None:
            model = validate(verb, params)
        result = await verb.handler(call, model)
        if isinstance(result, Response):
            return result
        pretty = _truthy(params.get("pretty"))
        if isinstance(result, Rendered) and not pretty:
            response = Response(result.body, status_code=http_status(0, path), media_type="application/json",
                                headers=call.response_headers or None)
        else:
            if isinstance(result, Rendered):
                result = result.data()
            if "code" not in result:
                result = {"code": 0, **result}
            response = render(result, path, pretty=pretty, headers=call.response_headers or None)
        for cookie in call.cookies:
            response.headers.append("set-cookie", cookie)
        return response


def _discard_uploads(files: dict[str, dict[str, Any]]) -> None:
    for item in files.values():
        Path(str(item.get("path", ""))).unlink(missing_ok=True)


def _truthy(value: Any) -> bool:
    return value not in (None, "", "0", 0, False, "false")


def validate(verb: Verb, params: dict[str, Any]) -> Any:
    try:
        return verb.params.model_validate(params)
    except ValidationError as exc:
        raise validation_error(exc) from None


async def read_params(request: Request, services: Services, allow_empty_files: bool = False
                      ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Query merged with body (body wins), for every verb: a superset of xyOps's behaviour."""
    params: dict[str, Any] = {}
    for key, value in request.query_params.multi_items():
        if key in params:
            existing = params[key]
            params[key] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            params[key] = value
    params.pop("cachebust", None)
    files: dict[str, dict[str, Any]] = {}
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return params, files
    ctype = request.headers.get("content-type", "").lower()
    if ctype.startswith("multipart/form-data"):
        body, files = await _read_form(request, services, allow_empty_files)
    elif ctype.startswith("application/x-www-form-urlencoded"):
        raw = await _read_limited(request, int(services.config.get("WebServer.max_json_size")))
        body = _parse_urlencoded(raw)
    else:
        raw = await _read_limited(request, int(services.config.get("WebServer.max_json_size")))
        body = _parse_body(raw, ctype)
    params.update(body)
    return params, files


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError("api", f"Request body is too large (limit {limit} bytes).")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError("api", f"Request body is too large (limit {limit} bytes).")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_body(raw: bytes, ctype: str) -> dict[str, Any]:
    if not raw.strip():
        return {}
    if any(word in ctype for word in _JSON_TYPES) or not ctype:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ApiError("api", f"Malformed JSON in request body: {_short(str(exc))}") from None
        if not isinstance(data, dict):
            raise ApiError("api", "The JSON request body must be an object.")
        return data
    return {"raw": raw.decode("utf-8", "replace")}


def _parse_urlencoded(raw: bytes) -> dict[str, Any]:
    """Form fields; a body that is plainly a JSON object (`curl -d '{...}'`) is read as JSON."""
    if raw.lstrip().startswith(b"{"):
        return _parse_body(raw, "application/json")
    from urllib.parse import parse_qsl

    params: dict[str, Any] = {}
    for key, value in parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True):
        params[key] = [*params[key], value] if isinstance(params.get(key), list) else \
            ([params[key], value] if key in params else value)
    return params


def _short(message: str) -> str:
    return message.split(":", 1)[0][:120]


async def _read_form(request: Request, services: Services, allow_empty: bool = False
                     ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    limit = int(services.config.get("WebServer.max_upload_size"))
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError("api", f"Upload is too large (limit {limit} bytes).")
    try:
        form = await request.form(max_files=1000, max_fields=1000)
    except Exception as exc:  # malformed multipart bodies raise several exception types
        raise ApiError("api", f"Malformed form data: {_short(str(exc))}") from None
    params: dict[str, Any] = {}
    files: dict[str, dict[str, Any]] = {}
    temp_dir = services.config.path("temp_dir")
    temp_dir.mkdir(parents=True, exist_ok=True)
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            files[key] = await _save_upload(value, temp_dir, allow_empty)
        elif key == "json":
            try:
                data = orjson.loads(value)
            except orjson.JSONDecodeError:
                raise ApiError("api", "Malformed JSON in the `json` form field.") from None
            if not isinstance(data, dict):
                raise ApiError("api", "The `json` form field must hold an object.")
            params.update(data)
        else:
            params[key] = value
    return params, files


async def _save_upload(upload: UploadFile, temp_dir: Any, allow_empty: bool = False) -> dict[str, Any]:
    name = upload.filename or ""
    if not name.strip(". "):
        raise ApiError("api", "Uploaded file has no usable name.")
    size = 0
    with tempfile.NamedTemporaryFile(dir=temp_dir, prefix="upload-", delete=False) as handle:
        while chunk := await upload.read(1 << 20):
            handle.write(chunk)
            size += len(chunk)
    if size == 0 and not allow_empty:
        _discard_uploads({"empty": {"path": handle.name}})
        raise ApiError("api", f"Uploaded file is empty: {name}")
    return {"path": handle.name, "type": upload.content_type or "", "name": name, "size": size}


async def authenticate(services: Services, call: Call, verb: Verb) -> Principal:
    """Session first (cookie, X-Session-ID, param), else API key (header, param, Bearer)."""
    request, params = call.request, call.params
    from_cookie = bool(request.cookies.get("session_id"))
    session_id = (request.cookies.get("session_id") or request.headers.get("x-session-id", "").strip()
                  or _str(params.get("session_id")))
    if session_id:
        return await _session_principal(services, call, session_id, from_cookie, verb)
    if verb.auth == SESSION:
        raise ApiError("session", "Session has expired or is invalid.")
    bearer = request.headers.get("authorization", "")
    presented = (request.headers.get("x-api-key") or _str(params.get("api_key"))
                 or (bearer[7:].strip() if bearer.lower().startswith("bearer ") else ""))
    if not presented:
        raise ApiError("session", "No Session ID or API Key could be found")
    record = services.api_keys.match(presented)
    if record is None:
        raise ApiError("session", "Invalid API Key")
    if services.api_keys.over_rate(record):
        raise ApiError("rate", f"API Key has exceeded rate limit ({_js_number(record.get('max_per_sec'))}/sec)")
    return principal_for(services, "api_key", record)


def _js_number(value: Any) -> str:
    """A number as JavaScript prints it (2, not 2.0)."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


async def _session_principal(services: Services, call: Call, session_id: str, from_cookie: bool,
                             verb: Verb) -> Principal:
    session = services.users.get_session(session_id)
    if session is None:
        raise ApiError("session", "Session has expired or is invalid.")
    user = services.users.get(session["username"])
    if user is None:
        raise ApiError("user", f"User not found: {session['username']}")
    if not user.get("active"):
        raise ApiError("session", f"User account is disabled: {user['username']}")
    if from_cookie and _csrf_required(services, call, session, verb):
        sent = call.request.headers.get("x-csrf-token") or _str(call.params.get("csrf_token"))
        if sent != session["csrf_token"]:
            raise ApiError("session", "Invalid session (CSRF token mismatch).")
    principal = principal_for(services, "user", user)
    principal.session = session
    return principal


def _csrf_required(services: Services, call: Call, session: dict[str, Any], verb: Verb) -> bool:
    """Only cookie sessions can be ridden cross-site, so only they need the token."""
    if not services.config.get("User.use_csrf", True) or not session.get("csrf_token"):
        return False
    return call.request.method not in ("GET", "HEAD") and verb.name != "resume_session"


def principal_for(services: Services, kind: str, record: dict[str, Any]) -> Principal:
    roles = services.list("roles")
    privileges, categories, groups = effective(record, roles.get)
    return Principal(kind=kind, record=record, privileges=privileges, categories=categories,
                     groups=groups)


def require_admin_session(call: Call) -> Principal:
    """The /api/user admin verbs word their refusal differently from the app API."""
    principal = call.user
    if not principal.is_admin:
        raise ApiError("user", f"User is not an administrator: {principal.record.get('username')}")
    return principal


__all__ = ["ADMIN", "Dispatcher", "render", "require_admin_session"]


_VERB_PATH = re.compile(r"^/api/(app|user)/(\w*)[^/]*(?:/(.*))?$")


class ApiFront:
    """ASGI front door: verb calls go straight to the dispatcher, everything else to the app.

    Verb calls are the hot path; skipping the router's linear scan over every UI route and
    the generic middleware stack keeps their per-request overhead flat as the UI grows.
    """

    def __init__(self, dispatcher: Dispatcher, app: Any) -> None:
        self.dispatcher = dispatcher
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] != "OPTIONS":
            match = _VERB_PATH.match(scope["path"])
            if match:
                scope["path_params"] = {"ns": match.group(1), "name": match.group(2), "rest": match.group(3) or ""}
                response = await self.dispatcher(Request(scope, receive))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
