"""Account e-mails (password reset link, password-changed notice) sent after the reply.

They go out in the background so neither the reply nor its timing depends on the mail server,
and a delivery failure is logged for the operator, never shown to the caller.
"""

from __future__ import annotations

import asyncio
import time

from sundial.actions.email import EmailError, Message
from sundial.services import Services

_background: set[asyncio.Task[None]] = set()


def mail_later(services: Services, message: Message, what: str, username: str) -> None:
    """Queue `message` (`what` names it in the log, e.g. "password reset") for `username`."""
    task = asyncio.create_task(_send(services, message, what, username))
    _background.add(task)
    task.add_done_callback(_background.discard)


async def _send(services: Services, message: Message, what: str, username: str) -> None:
    log = services.logger("User")
    if services.actions is None:
        return
    try:
        await services.actions.send_email(message)
    except EmailError as exc:
        log.error("email", f"Failed to send the {what} e-mail for user {username}: {exc}")
        return
    log.debug(5, f"Sent a {what} e-mail for user {username}", {"at": int(time.time())})
