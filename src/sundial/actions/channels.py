"""Notification channels as an action (events-and-jobs.md §13).

A channel bundles recipients, a web hook and an event to run; invoking it runs those in
parallel. A channel saved without `users` or `email` (xyOps allows that) counts as having
none, instead of failing as xyOps 1.0.88 does.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from sundial.actions.records import channel_email, channel_users

if TYPE_CHECKING:
    from sundial.actions.runner import ActionRunner, Outcome

SECTIONS = {"email": "Email Details", "web_hook": "Web Hook Details", "run_event": "Event Details"}


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def sub_actions(channel: dict[str, Any], action: dict[str, Any]) -> list[dict[str, Any]]:
    """The actions a channel stands for, keeping the firing condition for the message templates."""
    base = {"enabled": True, "condition": action.get("condition", ""), "text": action.get("text", "")}
    subs: list[dict[str, Any]] = []
    users, email = channel_users(channel), channel_email(channel)
    if users or email.strip():
        subs.append({**base, "type": "email", "users": users, "email": email})
    if channel.get("web_hook"):
        subs.append({**base, "type": "web_hook", "web_hook": channel["web_hook"]})
    if channel.get("run_event"):
        subs.append({**base, "type": "run_event", "event_id": channel["run_event"]})
    return subs


async def notify(runner: ActionRunner, job: dict[str, Any], action: dict[str, Any]) -> Outcome:
    from sundial.actions.runner import Outcome

    channel_id = str(action.get("channel_id") or "")
    channel = runner.services.lists["channels"].get(channel_id)
    if channel is None:
        return Outcome("channel", f"Notification Channel not found: {channel_id}")
    if not channel.get("enabled", True):
        return Outcome("channel", f"Notification Channel is disabled: {channel_id}")
    limit = _int(channel.get("max_per_day"))
    if await runner.svc.counters.take(f"channels.{channel_id}.invocations", limit) is None:
        return Outcome("channel", f"Notification Channel has reached maximum daily limit: {channel_id} ({limit}/day)")
    return await fan_out(runner, job, sub_actions(channel, action),
                         Outcome(0, f"Successfully notified channel: {channel_id}"))


async def fan_out(runner: ActionRunner, job: dict[str, Any], subs: list[dict[str, Any]], outcome: Outcome) -> Outcome:
    """Run notification sub-actions side by side and fold them into one outcome: the last failure
    wins the code and description, and each sub-action gets its own section of the details."""
    results = await asyncio.gather(*(runner.dispatch(job, sub) for sub in subs))
    sections: list[str] = []
    for sub, result in zip(subs, results, strict=True):
        if result.code != 0:
            outcome.code, outcome.description = result.code, result.description
        body = result.description + (f"\n\n{result.details}" if result.details else "")
        sections.append(f"### {SECTIONS[sub['type']]}\n\n{body}")
        outcome.parts.extend(result.patches())
        if result.loc and not outcome.loc:
            outcome.loc = result.loc
    outcome.details = "\n\n".join(sections)
    return outcome
