"""The user-manager namespace (`/api/user/*`) and the account verbs of the app namespace.

`/api/user/*` errors are always HTTP 200 and accept sessions only, as in xyOps.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints

from sundial.actions.email import password_changed_message
from sundial.api.call import Call
from sundial.api.dispatch import principal_for, require_admin_session
from sundial.api.errors import ApiError
from sundial.api.params import Params, StrList, strip_html
from sundial.api.registry import ADMIN, PUBLIC, SESSION, USER, VerbRouter
from sundial.api.usermail import mail_later
from sundial.auth.accounts import AccountError
from sundial.auth.apikeys import redacted
from sundial.auth.users import LoginError, sanitized
from sundial.internal_jobs import InternalJobHandle

router = VerbRouter()


def _check_username(value: str) -> str:
    import re

    if not re.fullmatch(r"[\w\-\.]+", value) or not re.sub(r"\W", "", value):
        raise ValueError("Malformed parameter: username")
    return value


def _check_email(value: str) -> str:
    import re

    value = strip_html(value).strip()
    if not re.fullmatch(r"\S+@\S+", value):
        raise ValueError("Malformed parameter: email")
    return value


def _check_full_name(value: str) -> str:
    value = strip_html(value).strip()
    if not value:
        raise ValueError("Malformed parameter: full_name")
    return value


Username = Annotated[str, StringConstraints(max_length=128), AfterValidator(_check_username)]
Email = Annotated[str, StringConstraints(max_length=512), AfterValidator(_check_email)]
FullName = Annotated[str, StringConstraints(max_length=512), AfterValidator(_check_full_name)]
Password = Annotated[str, StringConstraints(max_length=4096)]


class LoginParams(Params):
    username: Annotated[str, StringConstraints(max_length=128)]
    password: Password


class AdminCreateParams(Params):
    username: Username
    email: Email
    full_name: FullName
    password: Password
    privileges: dict[str, Any] = Field(default_factory=dict)
    roles: StrList = Field(default_factory=list)
    categories: StrList = Field(default_factory=list)
    groups: StrList = Field(default_factory=list)


class AdminUpdateParams(Params):
    username: Username
    email: Email | None = None
    full_name: FullName | None = None
    new_password: Password | None = None
    unlock: bool | int | None = None
    active: bool | int | None = None
    privileges: dict[str, Any] | None = None
    roles: StrList | None = None
    categories: StrList | None = None
    groups: StrList | None = None


class UsernameParams(Params):
    """A target user named by an admin verb: an ill-formed name is an `api` error, not a lookup."""
    username: Username


class SelfUpdateParams(Params):
    username: Annotated[str, StringConstraints(max_length=128)] | None = None
    old_password: Password | None = None
    new_password: Password | None = None
    email: Email | None = None
    full_name: FullName | None = None


class PagingParams(Params):
    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=50, ge=1, le=1000)


def _account_error(exc: AccountError | LoginError) -> ApiError:
    return ApiError(exc.code, exc.description)


def _session_cookie(call: Call, session_id: str, max_age: int) -> str:
    settings = call.services.config.get("User.cookie_settings") or {}
    parts = [f"session_id={session_id}", f"Path={settings.get('path', '/')}", f"Max-Age={max_age}"]
    if max_age == 0:
        parts.append("Expires=Thu, 01 Jan 1970 00:00:00 GMT")
    if settings.get("httpOnly", True):
        parts.append("HttpOnly")
    parts.append(f"SameSite={settings.get('sameSite', 'Lax')}")
    secure = settings.get("secure", "auto")
    https = call.request.url.scheme == "https" or \
        call.request.headers.get("x-forwarded-proto", "").lower() == "https"
    if secure is True or (secure == "auto" and https):
        parts.append("Secure")
    return "; ".join(parts)


def bootstrap(call: Call, user: dict[str, Any], session: dict[str, Any]) -> dict[str, Any]:
    """Login/resume reply: the user plus the lists the UI needs, filtered by the user's limits."""
    services = call.services
    principal = principal_for(services, "user", user)
    data: dict[str, Any] = {"code": 0, "username": user["username"], "user": sanitized(user),
                            "privileges": principal.privileges}
    if session.get("csrf_token"):
        data["csrf_token"] = session["csrf_token"]
    data["api_keys"] = [redacted(k) for k in services.list("api_keys").all()]
    data["users"] = [{"username": u["username"], "full_name": u.get("full_name", ""),
                      "roles": u.get("roles", [])} for u in services.users.roster()]
    data["categories"] = [c for c in services.list("categories").all() if principal.can_category(c["id"])]
    data["groups"] = [g for g in services.list("groups").all() if principal.can_group(g["id"])]
    for name in ("roles", "tags"):
        data[name] = services.list(name).all()
    return data


def _session_max_age(call: Call) -> int:
    return int(float(call.services.config.get("User.session_expire_days", 365)) * 86400)


@router.verb("login", LoginParams, ns="user", auth=PUBLIC, primary_only=False)
async def login(call: Call, p: LoginParams) -> dict[str, Any]:
    """Log in with a password: sets the `session_id` cookie and returns the UI bootstrap data."""
    try:
        user, session = await call.services.accounts.login(p.username, p.password, call.client)
    except LoginError as exc:
        raise _account_error(exc) from None
    call.cookies.append(_session_cookie(call, session["id"], _session_max_age(call)))
    return bootstrap(call, user, session)


@router.verb("logout", ns="user", auth=PUBLIC, primary_only=False)
async def logout(call: Call, p: Params) -> dict[str, Any]:
    """End the current session (if any) and expire its cookie."""
    sid = _presented_session(call)
    if sid and call.services.users.get_session(sid):
        async with call.services.storage.transaction() as tx:
            await call.services.users.delete_session(tx, sid)
    call.cookies.append(_session_cookie(call, "", 0))
    return {"code": 0}


def _presented_session(call: Call) -> str:
    value = (call.request.cookies.get("session_id") or call.request.headers.get("x-session-id", "").strip()
             or call.params.get("session_id"))
    return value if isinstance(value, str) else ""


@router.verb("resume_session", ns="user", auth=PUBLIC, primary_only=False)
async def resume_session(call: Call, p: Params) -> dict[str, Any]:
    """Re-enter an existing session: same reply as login, or a `session` error."""
    sid = _presented_session(call)
    if not sid:
        return {"code": 0}
    users = call.services.users
    session = users.get_session(sid)
    if session is None:
        call.cookies.append(_session_cookie(call, "", 0))
        return {"code": "session", "description": "Session has expired or is invalid."}
    user = users.get(session["username"])
    # the user manager's order and codes: missing, then disabled, then locked out, all `login`
    if user is None:
        return {"code": "login", "description": f"User not found: {session['username']}"}
    if not user.get("active"):
        return {"code": "login", "description": f"User account is disabled: {user['username']}"}
    if user.get("force_password_reset"):
        return {"code": "login", "description": "Account is locked out.  Please reset your password to unlock it."}
    async with call.services.storage.transaction() as tx:
        session = await users.touch_session(tx, session)
    return bootstrap(call, user, session)


@router.verb("create", ns="user", auth=PUBLIC, primary_only=False)
async def self_register(call: Call, p: Params) -> dict[str, Any]:
    """Self-registration, off unless `User.free_accounts` is set."""
    if not call.services.config.get("User.free_accounts"):
        raise ApiError("user", "Only administrators can create new users.")
    fields = AdminCreateParams.model_validate(call.params)
    data = {k: v for k, v in fields.fields_set().items() if k not in ("privileges", "roles", "password")}
    try:
        await call.services.accounts.create(data, fields.password, actor=None, client=call.client)
    except AccountError as exc:
        raise _account_error(exc) from None
    return {"code": 0}


@router.verb("update", SelfUpdateParams, ns="user", auth=SESSION)
async def self_update(call: Call, p: SelfUpdateParams) -> dict[str, Any]:
    """Change your own profile or password (needs `old_password`)."""
    me = call.user.record
    if p.username != me["username"]:
        raise ApiError("user", "Username mismatch.")
    try:
        user = await call.services.accounts.self_update(me, p.fields_set(), call.client)
    except AccountError as exc:
        raise _account_error(exc) from None
    if p.new_password:
        _notify_password_changed(call, user)
    return {"code": 0, "user": sanitized(user)}


def _notify_password_changed(call: Call, user: dict[str, Any]) -> None:
    """The `changed_password` notice (core-api `update`): tells the owner when and from where."""
    if not user.get("email"):
        return
    when = time.strftime("%Y-%m-%d %H:%M %Z", time.localtime()).strip()
    product = str(call.services.config.get("client.name") or "Sundial")
    message = password_changed_message(user, when, call.client.ip, product)
    mail_later(call.services, message, "password changed", user["username"])


@router.verb("delete", ns="user", auth=SESSION)
async def self_delete(call: Call, p: Params) -> dict[str, Any]:
    """Delete your own account (needs your password; `User.self_delete` must allow it)."""
    from sundial.auth import passwords

    me = call.user.record
    if not call.services.config.get("User.self_delete", True):
        raise ApiError("user", "User account deletion has been disabled by your administrator.")
    if call.params.get("username") != me["username"]:
        raise ApiError("user", "Username mismatch.")
    password = call.params.get("password")
    if not isinstance(password, str) or not await passwords.verify_password_async(
            password, me.get("salt", ""), me.get("password", "")):
        raise ApiError("login", "Your password is incorrect.")
    await call.services.accounts.delete(me["username"], actor=me["username"], client=call.client)
    return {"code": 0}


@router.verb("admin_create", AdminCreateParams, ns="user", auth=SESSION, params_first=True)
async def admin_create(call: Call, p: AdminCreateParams) -> dict[str, Any]:
    """Create a user (active at once); `user_exists` when the name is taken."""
    admin = require_admin_session(call)
    fields = {k: v for k, v in p.fields_set().items() if k not in ("password", "send_email")}
    try:
        await call.services.accounts.create(fields, p.password, actor=admin.actor, client=call.client)
    except AccountError as exc:
        raise _account_error(exc) from None
    return {"code": 0}


@router.verb("admin_update", AdminUpdateParams, ns="user", auth=SESSION)
async def admin_update(call: Call, p: AdminUpdateParams) -> dict[str, Any]:
    """Change any field of a user; a new password or `unlock` lifts a lockout."""
    admin = require_admin_session(call)
    try:
        user = await call.services.accounts.admin_update(p.username, p.fields_set(), actor=admin.actor,
                                                         client=call.client)
    except AccountError as exc:
        raise _account_error(exc) from None
    return {"code": 0, "user": sanitized(user)}


@router.verb("admin_delete", UsernameParams, ns="user", auth=SESSION)
async def admin_delete(call: Call, p: UsernameParams) -> dict[str, Any]:
    """Delete a user, their sessions and their security log."""
    admin = require_admin_session(call)
    try:
        await call.services.accounts.delete(p.username, actor=admin.actor, client=call.client)
    except AccountError as exc:
        raise _account_error(exc) from None
    return {"code": 0}


@router.verb("admin_get_user", UsernameParams, ns="user", auth=SESSION)
async def admin_get_user(call: Call, p: UsernameParams) -> dict[str, Any]:
    """One user record (never the password hash or salt)."""
    require_admin_session(call)
    user = call.services.users.get(p.username)
    if user is None:
        raise ApiError("user", f"Failed to load user: {p.username}")
    return {"code": 0, "user": sanitized(user)}


@router.verb("admin_get_users", PagingParams, ns="user", auth=SESSION)
async def admin_get_users(call: Call, p: PagingParams) -> dict[str, Any]:
    """The user roster, newest first, one page at a time."""
    require_admin_session(call)
    roster = call.services.users.roster()
    rows = [sanitized(u) for u in roster[p.offset:p.offset + p.limit]]
    return {"code": 0, "rows": rows, "list": list_header(len(roster), 1000)}


def list_header(length: int, page_size: int) -> dict[str, Any]:
    """The xyOps storage-list header that paged list responses carry."""
    return {"type": "list", "length": length, "page_size": page_size, "first_page": 0,
            "last_page": max(0, (length - 1) // page_size)}


# -- app namespace: the caller's own account ----------------------------------------------

@router.verb("get_user_activity", PagingParams, auth=USER)
async def get_user_activity(call: Call, p: PagingParams) -> dict[str, Any]:
    """Your own security log (logins, password changes), newest first."""
    from sundial.activity import describe_useragent

    rows, total = await call.services.users.security_events(call.user.actor, p.offset, p.limit)
    for row in rows:
        row["useragent"] = describe_useragent(row.get("headers", {}).get("user-agent", ""))
    return {"code": 0, "rows": rows, "list": list_header(total, 100)}


@router.verb("user_settings", auth=USER)
async def user_settings(call: Call, p: Params) -> dict[str, Any]:
    """Save your UI preferences (privileges, roles and limits are ignored)."""
    if call.user.kind != "user":
        raise ApiError("session", "User settings need a user session, not an API key.")
    user = await call.services.accounts.settings(call.user.record, p.fields_set())
    return {"code": 0, "user": sanitized(user)}


class PasswordParams(Params):
    password: Password


@router.verb("logout_all", PasswordParams, auth=USER)
async def logout_all(call: Call, p: PasswordParams) -> dict[str, Any]:
    """End every other session of yours (needs your password)."""
    from sundial.auth import passwords

    principal = call.user
    if principal.kind != "user" or principal.session is None:
        raise ApiError("session", "Logging out all sessions needs a user session.")
    me = principal.record
    if not await passwords.verify_password_async(p.password, me.get("salt", ""), me.get("password", "")):
        raise ApiError("login", "Your password is incorrect.")  # `login`, unlike /api/user/update
    description = "Logged out all user sessions by request"
    async with call.services.storage.transaction() as tx:
        await call.services.users.delete_user_sessions(tx, me["username"], keep=principal.session["id"])
        await call.services.users.add_security_event(tx, me["username"], "warning", call.client,
                                                     description=description)
        # the system log gets a `notice` (admin-and-data.md §5.2: logout by request)
        await call.services.activity.record(tx, "notice", description, client=call.client,
                                            username=me["username"], user=sanitized(me))
    return {"code": 0}


@router.verb("admin_logout_all", UsernameParams, auth=ADMIN)
async def admin_logout_all(call: Call, p: UsernameParams) -> dict[str, Any]:
    """End every session of one user, as an internal job (`{id}`); their live sockets drop at the next ping."""
    services = call.services
    user = services.users.get(p.username)
    if user is None:
        raise ApiError("user", f"User not found: {p.username}")
    username, admin = user["username"], call.user
    client = call.client
    handle = services.internal_jobs.start(f"Logging out all sessions for user: {username}", "user",
                                          admin.username, email=str(admin.record.get("email") or ""))

    async def work(job: InternalJobHandle) -> None:
        async with services.storage.transaction() as tx:
            count = await services.users.delete_user_sessions(tx, username)
            await services.users.add_security_event(tx, username, "warning", client,
                                                    description=f"All sessions logged out by {admin.actor}")
        await job.finish(description=f"Logged out {count} session(s) of {username}.", counts={"sessions": count})

    services.internal_jobs.run_in_background(handle, work)
    return {"code": 0, "id": handle.id}
