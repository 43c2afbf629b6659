"""JobHookData: the context that web hook, e-mail and label templates see for a job.

Pure functions over plain dicts, so the shape (secrets-and-webhooks.md §7.3) is testable
without a conductor. `env` is the conductor's environment minus `XYOPS_*`, as in xyOps, and
minus `SUNDIAL_*` too (a Sundial deviation, docs/compatibility.md): those variables configure
the conductor and can hold the secret key and the database URL, which must never reach a
template that anyone allowed to edit a web hook can write.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sundial.templates import expand

HOOK_TEXT_TEMPLATES: dict[str, str] = {
    "job_start": "Job started on {{nice_server}}: {{event.title}}: {{links.job_details}}",
    "job_success": "Job completed successfully on {{nice_server}}: {{event.title}}: {{links.job_details}}",
    "job_error": "Job failed on {{nice_server}}: {{event.title}}: Error ({{job.code}}): {{job.description}}: "
                 "{{links.job_details}}",
    "job_progress": "Job is in progress on {{nice_server}} ({{event.title}}): {{links.job_details}}",
    "job_suspended": "Job is suspended and requires human intervention: {{event.title}}: "
                     "{{links.job_details}}&resume=1",
    "job_limited": "{{action.msg}}: {{links.job_details}}",
}
DEFAULT_HOSTNAME_STRIP = r"\.[\w\-]+\.\w+$"
# Configuration variables of the conductor (xyOps's and Sundial's own), never shown to templates.
HIDDEN_ENV_PREFIXES = ("XYOPS_", "SUNDIAL_")


@dataclass(frozen=True)
class SiteInfo:
    """The conductor facts that links and names need."""

    base_url: str
    product: str
    host_id: str
    hostname_strip: str = DEFAULT_HOSTNAME_STRIP
    log_token: Any = None  # Callable[[str], str]: the download token of a job's log
    text_templates: Mapping[str, str] | None = None


def human_duration(seconds: float) -> str:
    """`95` -> "1 minute, 35 seconds"; under a second -> "0 seconds"."""
    remaining = int(round(seconds or 0))
    parts: list[str] = []
    for name, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        amount, remaining = divmod(remaining, size)
        if amount:
            parts.append(f"{amount} {name}{'' if amount == 1 else 's'}")
    return ", ".join(parts[:2]) or "0 seconds"


def human_bytes(size: float) -> str:
    value = float(size or 0)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def _usage(sample: Any, fmt: Any) -> str:
    if not isinstance(sample, dict) or not sample.get("count"):
        return "n/a"
    average = float(sample.get("total") or 0) / float(sample["count"])
    return f"{fmt(average)} (Peak: {fmt(float(sample.get('max') or 0))})"


def display_fields(job: Mapping[str, Any]) -> dict[str, str]:
    perf = job.get("perf")
    elapsed = float(job.get("elapsed") or (time.time() - float(job.get("started") or time.time())))
    return {
        "elapsed": human_duration(elapsed),
        "log_size": human_bytes(float(job.get("log_file_size") or 0)),
        "perf": _json(perf) if isinstance(perf, dict) and perf else "(No metrics provided)",
        "mem": _usage(job.get("mem"), human_bytes),
        "cpu": _usage(job.get("cpu"), lambda v: f"{v:.1f}%"),
        "date_time": time.strftime("%Y-%m-%d %H:%M:%S %Z",
                                   time.localtime(float(job.get("completed") or job.get("started") or time.time()))),
    }


def _json(value: Any) -> str:
    import orjson

    return orjson.dumps(value, default=str).decode()


def template_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The conductor's environment as templates see it: configuration variables removed.

    Read at each call, so a variable set after start shows up as it would in xyOps. The
    prefixes are matched without regard to case so `sundial_secret_key` is hidden as well.
    """
    source = os.environ if environ is None else environ
    return {name: value for name, value in source.items()
            if not name.upper().startswith(HIDDEN_ENV_PREFIXES)}


def links(job: Mapping[str, Any], site: SiteInfo) -> dict[str, str]:
    base = site.base_url.rstrip("/")
    job_id = str(job.get("id", ""))
    token = site.log_token(job_id) if site.log_token else ""
    files = [f for f in job.get("files") or [] if isinstance(f, dict) and f.get("path")]
    return {
        "job_details": f"{base}/#Job?id={job_id}",
        "job_log": f"{base}/api/app/download_job_log?id={job_id}&t={token}",
        "job_files": "\n".join(f"- {base}/{str(f['path']).lstrip('/')}" for f in files) or "(None)",
    }


def nice_names(server: Mapping[str, Any] | None, job: Mapping[str, Any], site: SiteInfo) -> tuple[str, str]:
    """(nice_server, nice_hostname): "title (hostname)", the hostname, or the conductor's id."""
    hostname = str((server or {}).get("hostname") or job.get("hostname") or job.get("server") or site.host_id)
    try:
        short = re.sub(site.hostname_strip, "", hostname)
    except re.error:
        short = hostname
    title = str((server or {}).get("title") or "")
    return (f"{title} ({hostname})" if title else hostname), short


def template_key(action: Mapping[str, Any], job: Mapping[str, Any]) -> str:
    """Which text template a job notification uses (spec §7.3, "Text template choice")."""
    templates = HOOK_TEXT_TEMPLATES
    if action.get("template"):
        return str(action["template"])
    condition = str(action.get("condition") or "")
    if f"job_{condition}" in templates:
        return f"job_{condition}"
    if not job.get("complete") and not job.get("final"):
        return "job_progress"
    return "job_error" if job.get("code") else "job_success"


def job_hook_data(job: dict[str, Any], action: dict[str, Any], *, site: SiteInfo,
                  event: dict[str, Any] | None, category: dict[str, Any] | None,
                  plugin: dict[str, Any] | None, server: dict[str, Any] | None) -> dict[str, Any]:
    """The full template context; `text` is rendered last, from everything else."""
    nice_server, nice_hostname = nice_names(server, job, site)
    data: dict[str, Any] = {
        "job": job, "action": action, "event": event, "category": category, "plugin": plugin,
        "nice_server": nice_server, "nice_hostname": nice_hostname,
        "links": links(job, site), "display": display_fields(job), "env": template_env(),
    }
    if server is not None:  # spec §7.3: only when the job has one (absent prints the fallback)
        data["server"] = server
    templates = {**HOOK_TEXT_TEMPLATES, **(site.text_templates or {})}
    template = templates.get(template_key(action, job)) or templates["job_success"]
    data["text"] = f"{site.product} " + expand(template, data, "n/a")
    return data
