"""Who is looking at a page: the cookie session resolved the same way the API resolves it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from sundial.api.dispatch import principal_for
from sundial.auth.privileges import Principal
from sundial.auth.users import sanitized
from sundial.services import Services


@dataclass(frozen=True)
class Viewer:
    """A logged-in user with merged privileges; pages never see the password hash."""

    user: dict[str, Any]
    principal: Principal
    session: dict[str, Any]

    @property
    def username(self) -> str:
        return str(self.user.get("username", ""))

    @property
    def csrf_token(self) -> str:
        return str(self.session.get("csrf_token") or "")

    @property
    def is_admin(self) -> bool:
        return self.principal.is_admin

    def can(self, privilege: str) -> bool:
        return self.principal.has(privilege)


def resolve_viewer(services: Services, request: Request) -> Viewer | None:
    """The cookie session's user, or None when absent, expired, disabled or locked out.

    Only the cookie counts: a page is opened by a browser, and the cookie is what the
    login verb set. Locked-out users are treated as logged out so they see the login error.
    """
    session_id = request.cookies.get("session_id", "")
    session = services.users.get_session(session_id) if session_id else None
    if session is None:
        return None
    user = services.users.get(session["username"])
    if user is None or not user.get("active") or user.get("force_password_reset"):
        return None
    return Viewer(user=sanitized(user), principal=principal_for(services, "user", user), session=session)


def safe_next(target: str | None, default: str = "/") -> str:
    """A post-login destination limited to this site (no `//host` or `\\host` open redirects)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    if any(ch in target for ch in "\\\r\n\t"):
        return default
    return target
