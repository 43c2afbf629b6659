"""Fire Web Hook plugin (``[hook-plugin]``): ask the conductor to fire a web hook for this job.

The hook itself (URL, headers, secrets, retries) lives on the conductor, so the plugin only posts
``{job, server, web_hook, text}`` to the ``fire_job_web_hook`` verb; the live job and server ids are
the credential. The job ends with the hook's own code and description.
"""

from __future__ import annotations

from typing import Any

import httpx

from sundial.satellite.plugins.wire import PluginError, finish

__all__ = ["TITLE", "run"]

TITLE = "Fire Web Hook"
VERB = "/api/app/fire_job_web_hook/v1"
TIMEOUT = httpx.Timeout(300.0, connect=10.0)


def _verify(job: dict[str, Any]) -> bool:
    opts = job.get("socket_opts")
    return not (isinstance(opts, dict) and opts.get("rejectUnauthorized") is False)


def _post(job: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    base = str(job.get("base_url") or "").rstrip("/")
    if not base:
        raise PluginError("Fire Web Hook Error: the job does not say which conductor to ask (no base_url).")
    try:  # the conductor is reached as the agent reaches it: never through the job's proxy variables
        response = httpx.post(base + VERB, json=payload, verify=_verify(job), timeout=TIMEOUT, trust_env=False)
    except httpx.HTTPError as exc:
        raise PluginError(f"Fire Web Hook Error: {exc or type(exc).__name__}") from None
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise PluginError(f"Fire Web Hook Error: unexpected reply from the conductor "
                          f"(HTTP {response.status_code} {response.reason_phrase}).")
    return answer


def run(job: dict[str, Any]) -> None:
    """Entry point used by ``python -m sundial.satellite.plugins hook-plugin``."""
    params = job.get("params") if isinstance(job.get("params"), dict) else {}
    hook = str((params or {}).get("web_hook") or "").strip()
    if not hook:
        raise PluginError("Fire Web Hook Error: no web hook was selected.")
    payload = {"job": job.get("id"), "server": job.get("server"), "web_hook": hook,
               "text": str((params or {}).get("text") or "")}
    answer = _post(job, payload)
    code = answer.get("code", 1)
    description = str(answer.get("description") or "")
    if code != 0 and description.startswith("Unsupported API"):
        raise PluginError("Fire Web Hook: this conductor does not support fire_job_web_hook yet, so the "
                          "web hook was not fired.")
    extra: dict[str, Any] = {}
    details = answer.get("details")
    if isinstance(details, str) and details.strip():
        extra["markdown"] = {"title": "Web Hook Details", "content": details}
    if code in (0, None, ""):
        return finish(0, description or f"Fired web hook: {hook}", **extra)
    finish(code if isinstance(code, int | str) else 1, description or f"Web hook failed: {hook}", **extra)
