"""`/api/user/forgot_password` and `/api/user/reset_password` (users-and-privileges.md §6).

forgot_password answers `{code:0}` whatever happened, after a random 0-250 ms pause, and
sends the e-mail in the background: neither the reply nor its timing tells a caller whether
the name and address matched. Neither the key nor the new password is ever logged.
"""

from __future__ import annotations

import asyncio
import random
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from pydantic import StringConstraints

from sundial.actions.email import Message, password_reset_message
from sundial.api.call import Call
from sundial.api.errors import ApiError
from sundial.api.params import Params
from sundial.api.registry import PUBLIC, VerbRouter
from sundial.api.usermail import mail_later
from sundial.auth.recovery import PasswordRecovery, RecoveryError
from sundial.services import Services

router = VerbRouter()

Name = Annotated[str, StringConstraints(max_length=128, min_length=1)]


class ForgotParams(Params):
    username: Name
    email: Annotated[str, StringConstraints(max_length=512, min_length=1)]


class ResetParams(Params):
    username: Name
    new_password: Annotated[str, StringConstraints(max_length=4096, min_length=1)]
    key: Annotated[str, StringConstraints(pattern=r"^[A-Fa-f0-9]{64}$")]


def reset_link(base_url: str, username: str, key: str) -> str:
    """The key travels in the fragment, which browsers never send, so no proxy or log sees it."""
    return f"{base_url.rstrip('/')}/reset-password?u={quote(username, safe='')}#h={key}"


@router.verb("forgot_password", ForgotParams, ns="user", auth=PUBLIC, primary_only=True)
async def forgot_password(call: Call, p: ForgotParams) -> dict[str, Any]:
    """E-mail a one-time password reset link when username and e-mail match; always `{code:0}`."""
    await asyncio.sleep(random.uniform(0, 0.25))
    issued = await PasswordRecovery(call.services.users, call.services.activity).request(
        p.username, p.email, call.client)
    if issued is not None:
        user, record = issued
        mail_later(call.services, _reset_message(call.services, user, record["key"], float(record["expires"])),
                   "password reset", user["username"])
    return {"code": 0}


def _reset_message(services: Services, user: dict[str, Any], key: str, expires: float) -> Message:
    """The reset e-mail; the key appears only in its link, never in a log line."""
    config = services.config
    link = reset_link(str(config.get("base_app_url") or ""), user["username"], key)
    when = datetime.fromtimestamp(expires).strftime("%Y-%m-%d %H:%M %Z").strip()
    return password_reset_message(user, link, when, str(config.get("client.name") or "Sundial"))


@router.verb("reset_password", ResetParams, ns="user", auth=PUBLIC, primary_only=True)
async def reset_password(call: Call, p: ResetParams) -> dict[str, Any]:
    """Set a new password with a key from forgot_password; the key then stops working."""
    try:
        await PasswordRecovery(call.services.users, call.services.activity).reset(
            p.username, p.key.lower(), p.new_password, call.client)
    except RecoveryError as exc:
        raise ApiError(exc.code, exc.description) from None
    return {"code": 0}
