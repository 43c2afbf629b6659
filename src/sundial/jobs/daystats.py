"""Daily job stats and `day` limits (events-and-jobs.md sec. 7 and 8).

Every plain-word condition a job fires (`start`, `complete`, `success`, `error`, `abort`, ...)
adds one to `job_<condition>` overall and under the job's event, server, category, plugin and
each of its groups; `tag:<id>` conditions are not counted. A `day` limit refuses a launch once
today's `events.<event>.job_<condition>` has reached its amount, except for manual runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Protocol

from sundial.jobs.build import LaunchError

SCOPES = (("events", "event"), ("servers", "server"), ("categories", "category"), ("plugins", "plugin"))
MANUAL_SOURCES = ("user", "key")


class DayCounters(Protocol):
    """What the job manager and the launcher need of `sundial.actions.daily.DailyCounters`."""

    async def load(self) -> None: ...

    async def close(self) -> None: ...

    def count(self, name: str) -> int: ...

    def add(self, names: Iterable[str], delta: int = 1, day: str | None = None) -> None: ...


def local_day(epoch: float) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(epoch))


def _usable(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and "." not in value  # a dot would split the path


def stat_names(job: dict[str, Any], conditions: Iterable[str]) -> list[str]:
    """The counters a job's conditions move, e.g. `job_complete`, `events.e1.job_complete`."""
    scopes = [f"{kind}.{job[key]}." for kind, key in SCOPES if _usable(job.get(key))]
    scopes += [f"groups.{group}." for group in dict.fromkeys(job.get("groups") or []) if _usable(group)]
    return [f"{scope}job_{condition}" for condition in conditions if ":" not in condition
            for scope in ("", *scopes)]


def check_day_limits(job: dict[str, Any], counters: DayCounters) -> None:
    """Raise when an enabled `day` limit of a non-manual job is used up for today."""
    if job.get("source") in MANUAL_SOURCES:
        return
    for limit in job.get("limits") or []:
        if not isinstance(limit, dict) or limit.get("type") != "day" or not limit.get("enabled"):
            continue
        amount, condition = limit.get("amount"), str(limit.get("condition") or "")
        if not isinstance(amount, int | float) or amount <= 0 or not condition:
            continue
        if counters.count(f"events.{job.get('event')}.job_{condition}") >= amount:
            raise LaunchError(f"Daily limit has been reached for event: {condition} ({amount:g}/day)", "event")
