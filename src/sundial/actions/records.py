"""Web hook and channel records: kinds, stock objects and save-time validation.

Validation lives here (not in the API module) so imports and the UI share one rule set.
"""

from __future__ import annotations

import re
from typing import Any

from sundial.expressions import ExpressionError, compile_check
from sundial.objects import ObjectError, ObjectKind

WEB_HOOK = ObjectKind("web_hooks", "web_hook", "Web Hook", "w", "web_hook",
                      defaults={"enabled": True, "body": "", "timeout": 30, "retries": 0, "follow": False,
                                "ssl_cert_bypass": False, "max_per_day": 0, "notes": "", "icon": ""},
                      exists_message="That Web Hook ID already exists: {id}")
# Channels default nothing on create (as xyOps); readers treat a missing users/email as empty.
# The label is "Channel" as in xyOps's verb messages ("That Channel ID already exists: X");
# the action messages say "Notification Channel" and spell it out themselves.
CHANNEL = ObjectKind("channels", "channel", "Channel", "ch", "channel")

URL_START = re.compile(r"^(https?://|\{\{)", re.IGNORECASE)
METHOD = re.compile(r"^\w+$")
HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_MACRO = re.compile(r"\{\{(.+?)\}\}")

EXAMPLE_HOOK: dict[str, Any] = {
    "id": "example_hook", "title": "Example Hook", "enabled": True, "icon": "", "method": "POST",
    "url": "https://httpbin.org/post",
    "headers": [{"name": "Content-Type", "value": "application/json"},
                {"name": "User-Agent", "value": "Sundial/WebHook"}],
    "body": '{\n\t"text": "{{text}}",\n\t"content": "{{text}}",\n\t"message": "{{text}}"\n}',
    "timeout": 30, "retries": 0, "follow": False, "ssl_cert_bypass": False, "max_per_day": 0,
    "notes": "An example web hook: posts the notification text as JSON to a public echo service.",
}
SEV1_CHANNEL: dict[str, Any] = {
    "id": "sev1", "title": "Severity 1", "enabled": True, "icon": "", "users": ["admin"], "email": "",
    "web_hook": "", "run_event": "", "sound": "attention-3.mp3", "max_per_day": 0,
    "notes": "For the most urgent problems: notifies the administrators.",
}


def check_headers(hook_id: str, headers: Any) -> None:
    """Headers are `[{name, value}]`; anything else is the xyOps `web_hook` error."""
    if not isinstance(headers, list) or not all(
            isinstance(h, dict) and isinstance(h.get("name"), str) and HEADER_NAME.match(h["name"])
            and isinstance(h.get("value", ""), str | int | float) for h in headers):
        raise ObjectError("web_hook", f"Invalid header format for web hook: {hook_id}")


def check_body(hook_id: str, body: Any) -> None:
    """Every `{{ … }}` of the body must compile, so a broken template fails at save, not at 3 a.m.

    The message names the hook as xyOps does: "Failed to compile macro in body: <id>: <error>".
    """
    if body is None:
        return
    if not isinstance(body, str):
        raise ObjectError("web_hook", f"Failed to compile macro in body: {hook_id}: body must be a string")
    for match in _MACRO.finditer(body):
        try:
            compile_check(match.group(1).strip())
        except ExpressionError as exc:
            raise ObjectError("web_hook", f"Failed to compile macro in body: {hook_id}: {exc}") from None


def check_web_hook(hook_id: str, fields: dict[str, Any]) -> None:
    """The `web_hook`-coded checks of create/update (the `api`-coded ones sit in the params model)."""
    if "headers" in fields:
        check_headers(hook_id, fields["headers"])
    if "body" in fields:
        check_body(hook_id, fields["body"])


def channel_users(channel: dict[str, Any]) -> list[str]:
    users = channel.get("users")
    return [u for u in users if isinstance(u, str)] if isinstance(users, list) else []


def channel_email(channel: dict[str, Any]) -> str:
    email = channel.get("email")
    return email if isinstance(email, str) else ""
