"""Logging in and the viewer's own account (password change, profile)."""

from __future__ import annotations

from typing import Any

from starlette.responses import RedirectResponse, Response

from sundial.web.framework import PageContext, PageSet
from sundial.web.viewer import safe_next

pages = PageSet()


@pages.page("/login", title="Log in", template="login.html", public=True)
async def login(ctx: PageContext) -> dict[str, Any] | Response:
    """The form posts to `/api/user/login` from JS; a logged-in visitor goes straight on."""
    target = safe_next(ctx.query.get("next"))
    if ctx.viewer is not None:
        return RedirectResponse(target, status_code=303)
    return {"next": target}


@pages.page("/reset-password", title="Reset password", template="reset_password.html", public=True)
async def reset_password(ctx: PageContext) -> dict[str, Any]:
    """Forgot-password request, or (with the e-mailed `#h=<key>`) the new password form; both post
    from JS to the user API. The key never reaches the server in a page request."""
    return {"username": str(ctx.query.get("u") or "")[:128]}


@pages.page("/account", title="My account", template="account.html")
async def account(ctx: PageContext) -> dict[str, Any]:
    """Own profile and password; `first=1` (after a login that must change it) leads with the password."""
    return {"first": ctx.query.get("first") == "1"}
