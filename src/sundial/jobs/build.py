"""Turning an event (plus run-time overrides) into a job, and the small rules jobs follow.

Pure functions: everything they need is passed in, so the launch rules can be read and
tested without a running conductor.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import re
import time
from dataclasses import dataclass, field
from typing import Any

from sundial.events.validation import LAUNCH_CONTEXT_KEYS
from sundial.ids import generate_id
from sundial.plugins.params import OVERRIDE_PREFIX, RESERVED_OVERRIDES, default_values
from sundial.templates import expand

EVENT_ONLY_KEYS = ("id", "title", "enabled", "triggers", "session_id", "modified", "created", "revision",
                   "username")
RUN_OVERRIDE_FORBIDDEN = ("type", "category", "id", "event", *LAUNCH_CONTEXT_KEYS)
SINGLE_INSTANCE_LIMITS = ("job", "retry", "queue", "file", "tag")


class LaunchError(Exception):
    """A launch refused before any job exists; `code` is the xyOps error code."""

    def __init__(self, description: str, code: str = "job") -> None:
        super().__init__(description)
        self.code = code
        self.description = description


def normalize_code(code: Any) -> int | float | str:
    """Falsy -> 0; strings -> lower-case words joined by `_` (`"HTTP Error"` -> `"http_error"`)."""
    if not code:
        return 0
    if isinstance(code, bool):
        return 1
    if isinstance(code, int | float):
        return code
    if isinstance(code, str):
        return re.sub(r"\W+", "_", code).lower()
    return "unknown"


def log_token(job_id: str, secret_key: str) -> str:
    digest = hashlib.sha256(f"download{job_id}{secret_key}".encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def meta_line(job: dict[str, Any], msg: str, server: str = "") -> None:
    """Append to the job's meta log (`activity`), capped as xyOps does."""
    rows = job.setdefault("activity", [])
    if len(rows) < 1000:
        rows.append({"id": generate_id("m"), "epoch": round(time.time(), 3), "msg": msg,
                     "server": server or "m:conductor"})


def first_enabled(items: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    """Single-instance limits: the first enabled one wins (event > category > universal)."""
    return next((i for i in items if isinstance(i, dict) and i.get("type") == kind and i.get("enabled")), None)


@dataclass(frozen=True)
class LaunchSettings:
    """The configuration a launch reads (config.md): read at each launch, so an
    `admin_update_config` change applies to the next job without a restart."""

    job_env: dict[str, Any] = field(default_factory=dict)
    universal_actions: dict[str, Any] = field(default_factory=dict)  # job_universal_actions
    universal_limits: dict[str, Any] = field(default_factory=dict)  # job_universal_limits
    credentials: dict[str, Any] = field(default_factory=dict)  # default_plugin_credentials.event


def job_from_event(event: dict[str, Any], overrides: dict[str, Any], *, category: dict[str, Any],
                   plugin: dict[str, Any] | None, settings: LaunchSettings) -> dict[str, Any]:
    """The launch copy of an event (spec: events-and-jobs §3 and §4.1 steps 1, 4, 8)."""
    job = {k: copy.deepcopy(v) for k, v in event.items() if k not in EVENT_ONLY_KEYS}
    for key, value in overrides.items():
        if key not in RUN_OVERRIDE_FORBIDDEN and key != "params":
            job[key] = copy.deepcopy(value)
    job["id"] = generate_id("j")
    job["event"] = event["id"]
    job["event_title"], job["event_revision"] = event.get("title", ""), event.get("revision", 0)
    job["params"] = _merged_params(event, overrides.get("params"), plugin)
    for key in ("limits", "actions", "tags"):
        job[key] = list(job.get(key) or [])
    _append_shared_items(job, category, settings)
    now = round(time.time(), 3)
    job.update(state="ready", started=now, log_file_size=0, progress=0, env=dict(settings.job_env or {}))
    job.setdefault("now", now)
    if plugin is not None:
        for key in ("command", "kill", "runner"):
            if plugin.get(key) not in (None, ""):
                job[key] = plugin[key]
        if plugin.get("script"):
            job["script"] = "(File)"
        job.update(run_as(plugin, job["params"], settings.credentials))
    return job


def _append_shared_items(job: dict[str, Any], category: dict[str, Any], settings: LaunchSettings) -> None:
    """Step 4: enabled category items, then enabled universal ones (`default` or `workflow` list).

    Test runs get them only when asked (`test_actions` / `test_limits`), as in xyOps.
    """
    flavour = "workflow" if job.get("type") == "workflow" else "default"
    for key, test_flag, universal in (("actions", "test_actions", settings.universal_actions),
                                      ("limits", "test_limits", settings.universal_limits)):
        if job.get("test") and not job.get(test_flag):
            continue
        extra = universal.get(flavour) if isinstance(universal, dict) else None
        for source, items in (("category", category.get(key)), ("universal", extra)):
            if isinstance(items, list):
                job[key] += [{**copy.deepcopy(item), "source": source} for item in items
                             if isinstance(item, dict) and item.get("enabled")]


def run_as(plugin: dict[str, Any], params: dict[str, Any], credentials: dict[str, Any]) -> dict[str, Any]:
    """Step 8: `uid`/`gid` from the plugin, else `default_plugin_credentials.event`; a *locked*
    plugin param named `uid`/`gid` with a non-empty value wins (the value is the event's, which
    only an administrator can set for a locked param)."""
    creds = credentials if isinstance(credentials, dict) else {}
    out = {key: plugin.get(key) or creds.get(key) or "" for key in ("uid", "gid")}
    for item in plugin.get("params") or []:
        key = item.get("id") if isinstance(item, dict) else None
        if key in ("uid", "gid") and item.get("locked"):
            value = params.get(key, item.get("value"))
            if value not in (None, "") and isinstance(value, str | int) and not isinstance(value, bool):
                out[key] = value
    return out


def _merged_params(event: dict[str, Any], sparse: Any, plugin: dict[str, Any] | None) -> dict[str, Any]:
    """Missing keys come from the event's params, then field and plugin defaults."""
    params = default_values(event.get("fields") or [])
    if plugin is not None:
        params = {**default_values(plugin.get("params") or []), **params}
    params.update(copy.deepcopy(event.get("params") or {}))
    if isinstance(sparse, dict):
        params.update(copy.deepcopy(sparse))
    return params


def expand_params(job: dict[str, Any], field_ids: list[str]) -> None:
    """`{{ }}` macros in string params (fields first), then `_xy_override_NAME` overrides."""
    params = job.get("params") or {}
    context = {**job, "data": (job.get("input") or {}).get("data", {}),
               "files": (job.get("input") or {}).get("files", [])}
    order = [k for k in field_ids if k in params] + [k for k in params if k not in field_ids]
    for key in order:
        if isinstance(params[key], str) and "{{" in params[key]:
            params[key] = expand(params[key], {**context, "params": params})
    for key, value in list(params.items()):
        if key.startswith(OVERRIDE_PREFIX) and value not in (None, ""):
            name = key[len(OVERRIDE_PREFIX):]
            if name not in RESERVED_OVERRIDES:
                job[name] = value


# Tags the finish step adds (events spec §4.5 step 7); they describe one attempt's outcome.
SYSTEM_TAGS = frozenset({"_success", "_error", "_retried", "_last", "_test", "_files"})


def final_tags(job: dict[str, Any], known: set[str]) -> list[str]:
    """Known tags (deduped, `tag` limit applied) plus the system tags of the outcome; system tags
    carried over from a failed attempt (a retry copies its tags) are dropped first."""
    tags = [t for t in dict.fromkeys(job.get("tags") or [])
            if isinstance(t, str) and t not in SYSTEM_TAGS and (t in known or t.startswith("_"))]
    tag_limit = first_enabled(job.get("limits") or [], "tag")
    if tag_limit and isinstance(tag_limit.get("amount"), int | float):
        tags = tags[:int(tag_limit["amount"])]
    tags.append("_error" if job.get("code") else "_success")
    if job.get("test"):
        tags.append("_test")
    if job.get("files") or (job.get("input") or {}).get("files"):
        tags.append("_files")
    return list(dict.fromkeys(tags))


def chain_tags(tags: list[str], retried: bool) -> list[str]:
    """`_retried` on an attempt that was retried, else `_last` (the chain's final answer, so a
    search for `tags:_last` counts each run once), placed right after `_success`/`_error`."""
    tag = "_retried" if retried else "_last"
    out = [t for t in tags if t not in ("_retried", "_last")]
    at = next((i + 1 for i, t in enumerate(out) if t in ("_success", "_error")), len(out))
    return [*out[:at], tag, *out[at:]]


def completion_conditions(job: dict[str, Any]) -> list[str]:
    """Which action conditions fire at the end (none when the job was retried). Conditions fire
    before the finish step adds the system tags (§4.5 steps 6-7), so `tag:_success` and the
    other system tags never fire, as in xyOps."""
    if job.get("retried"):
        return []
    conditions = ["complete"]
    code = job.get("code")
    if code:
        conditions.append("error")
        conditions.append(code if code in ("warning", "critical", "abort") else "user")
    else:
        conditions.append("success")
    conditions += [f"tag:{t}" for t in job.get("tags") or [] if isinstance(t, str) and t not in SYSTEM_TAGS]
    return conditions


RETRY_KEEP = ("type", "event", "category", "plugin", "targets", "algo", "workflow", "input", "params", "parent",
              "source", "username", "api_key", "actions", "limits", "icon", "label", "test", "retry_count", "tags",
              "invisible", "ephemeral", "command", "script", "uid", "gid", "kill", "runner", "env", "now")


def retry_copy(job: dict[str, Any]) -> dict[str, Any] | None:
    """The next attempt of a failed job, or None when no retry is due (spec §8.4)."""
    code = job.get("code")
    if not code or (code == "abort" and not job.get("retry_ok")) or job.get("retried"):
        return None
    limit = first_enabled(job.get("limits") or [], "retry")
    amount = limit.get("amount") if limit else 0
    if not isinstance(amount, int | float) or amount <= 0 or int(job.get("retry_count") or 0) >= amount:
        return None
    nxt = {k: copy.deepcopy(job[k]) for k in RETRY_KEEP if k in job}
    nxt.update(id=generate_id("j"), retry_count=int(job.get("retry_count") or 0) + 1, retry_prev=job["id"],
               state="ready", started=round(time.time(), 3), log_file_size=0, progress=0)
    delay = limit.get("duration") if limit else 0
    if isinstance(delay, int | float) and delay > 0:
        nxt.update(state="retry_delay", until=round(time.time() + delay, 3))
    return nxt


# Heavy fields kept beside the live job ("job details", events-and-jobs.md §3), not in it.
DETAIL_KEYS = ("input", "data", "files", "workflowData", "serverData", "wfJobData")
# What a satellite's update may never set on the conductor's copy of a job (§4.3).
NEVER_FROM_AGENT = ("activity", "log_file", "log_file_size", "actions", "limits", "tags", "id", "event",
                    "server", "started", "final")


def split_details(job: dict[str, Any]) -> dict[str, Any]:
    """Take the heavy detail fields out of a job, returned as its details."""
    return {k: job.pop(k) for k in DETAIL_KEYS if k in job}


def merge_agent_update(job: dict[str, Any], details: dict[str, Any], update: dict[str, Any]) -> None:
    """Apply a satellite's partial job: `push` appends (pushed actions marked `source: job`), detail
    fields go to `details`, fields the agent may not set are ignored, the rest overwrite."""
    job["updated"] = round(time.time(), 3)
    job["remote"] = True
    for key, value in update.items():
        if key in NEVER_FROM_AGENT:
            continue
        if key == "push" and isinstance(value, dict):
            _apply_push(job, value)
        elif key in DETAIL_KEYS:
            details[key] = value
        else:
            job[key] = value


def _apply_push(job: dict[str, Any], push: dict[str, Any]) -> None:
    for key, items in push.items():
        if not isinstance(items, list):
            continue
        if key == "actions":
            items = [{**a, "source": "job"} for a in items if isinstance(a, dict)]
        job[key] = list(job.get(key) or []) + items
