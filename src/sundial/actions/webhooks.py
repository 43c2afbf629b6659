"""Firing web hooks (secrets-and-webhooks.md §7.2): templates, secrets, retries, caps, details.

Secret values never pass through the template engine: each `{{ secrets.NAME }}` of the hook's
own template is first replaced by an opaque marker, the ordinary macros are expanded with no
secrets in the context, and the markers become the values only in the final request. A value
that looks like a macro is therefore sent verbatim, and job data that contains
`{{ secrets.X }}` cannot pull a secret into a request. Only the plain `{{ secrets.NAME }}` form
is recognised (not secrets inside larger expressions). Every text shown to users
or written to a log is scrubbed of the values (raw and URL-encoded).
"""

from __future__ import annotations

import asyncio
import secrets as pysecrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sundial.actions.daily import DailyCounters
from sundial.actions.hookdata import human_duration
from sundial.logs import Logger
from sundial.outbound import Outbound, OutboundResult
from sundial.storage.lists import ConfigList
from sundial.templates import expand
from sundial.vault.runtime import REDACTED, expand_secret_macros, redact

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
NO_BODY_METHODS = frozenset({"GET", "HEAD"})
MAX_SHOWN_BODY = 32 * 1024
RETRY_BASE_DELAY = 0.25
RETRY_MAX_DELAY = 5.0
LOG_COMPONENT = "WebHook"

# Looks up the decrypted secrets assigned to a saved hook: name -> value.
SecretSource = Callable[[str], Awaitable[dict[str, str]]]


async def no_secrets(hook_id: str) -> dict[str, str]:
    return {}


class WebHookError(Exception):
    """A firing that failed; `str()` is the xyOps description (starts with `Error: `)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"Error: {message}")


@dataclass
class HookResult:
    code: int | str
    description: str
    details: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Prepared:
    method: str
    url: str
    headers: list[tuple[str, str]]
    body: str | None
    secret_values: list[str]

    def shown(self, text: str) -> str:
        return redact(text, self.secret_values)


class _Markers:
    """Stand-ins for secret values while the templates expand (private-use characters)."""

    def __init__(self, values: Mapping[str, str]) -> None:
        nonce = pysecrets.token_hex(6)
        self.values = dict(values)
        self.marker = {name: f"\ue000{nonce}:{name}\ue001" for name in values}

    def fill(self, text: str) -> str:
        for name, marker in self.marker.items():
            if marker in text:
                text = text.replace(marker, self.values[name])
        return text


class WebHooks:
    """Fires saved hooks (by id, with caps and secrets) and unsaved ones (`test_web_hook`)."""

    def __init__(self, items: ConfigList, outbound: Outbound, counters: DailyCounters, log: Logger,
                 custom_opts: Mapping[str, Any] | None = None) -> None:
        self.items = items
        self.outbound = outbound
        self.counters = counters
        self.log = log
        self.custom_opts = dict(custom_opts or {})
        self.secret_source: SecretSource = no_secrets

    async def fire(self, hook_or_id: str | dict[str, Any], data: dict[str, Any]) -> HookResult:
        """Fire and describe the outcome; never raises for request problems."""
        try:
            hook = await self._resolve(hook_or_id)
        except WebHookError as exc:
            self.log.debug(3, f"Web hook not fired: {exc}")
            return HookResult("webhook", str(exc))
        return await self._fire(hook, data, saved=hook.get("id") in self.items)

    async def _resolve(self, hook_or_id: str | dict[str, Any]) -> dict[str, Any]:
        if isinstance(hook_or_id, dict):
            return hook_or_id  # test mode: no enabled check, no daily cap
        hook = self.items.get(hook_or_id)
        if hook is None:
            raise WebHookError(f"Web Hook not found: {hook_or_id}")
        if not hook.get("enabled", True):
            raise WebHookError(f"Web Hook is disabled: {hook_or_id}")
        limit = _int(hook.get("max_per_day"))
        if await self.counters.take(f"web_hooks.{hook_or_id}.invocations", limit) is None:
            raise WebHookError(f"Web Hook has reached maximum daily limit: {hook_or_id} ({limit}/day)")
        return hook

    async def _fire(self, hook: dict[str, Any], data: dict[str, Any], saved: bool) -> HookResult:
        hook_id = str(hook.get("id") or "")
        values = await self.secret_source(hook_id) if saved and hook_id else {}
        prepared = self.prepare(hook, data, values)
        self.log.debug(5, f"Firing web hook {hook_id} ({hook.get('title', '')}): {prepared.method} "
                          f"{prepared.shown(prepared.url)}")
        started = time.perf_counter()
        try:
            result = await self._send(hook, prepared)
        except WebHookError as exc:
            message = prepared.shown(str(exc))
            self.log.debug(3, f"Web hook {hook_id} failed: {message}",
                           {"elapsed_ms": round((time.perf_counter() - started) * 1000, 1)})
            return HookResult("webhook", message)
        description = f"Success (HTTP {result.status} {result.reason})"
        self.log.debug(5, f"Web hook {hook_id} succeeded: HTTP {result.status} {result.reason}",
                       {"elapsed_ms": result.elapsed_ms, "redirects": result.redirects})
        return HookResult(0, description, prepared.shown(details_markdown(hook, prepared, result)))

    def prepare(self, hook: dict[str, Any], data: dict[str, Any], secret_values: Mapping[str, str]) -> _Prepared:
        """Expand URL, headers and body; secret values enter only at the end (see module doc)."""
        markers = _Markers(secret_values)
        context = {**data, "secrets": {}}
        fallback = str(context.setdefault("_fallback", "N/A"))

        def render(template: str) -> str:
            with_markers = expand_secret_macros(template, markers.marker, fallback)
            return markers.fill(expand(with_markers, context, fallback))

        url = render(str(hook.get("url") or ""))
        headers = [(str(h.get("name")), render(str(h.get("value", "")))) for h in self._headers(hook)]
        method = str(hook.get("method") or "GET").upper()
        body_template = str(hook.get("body") or "")
        body = render(body_template) if method not in NO_BODY_METHODS and body_template.strip() else None
        return _Prepared(method, url, headers, body, [v for v in secret_values.values() if v])

    def _headers(self, hook: dict[str, Any]) -> list[dict[str, Any]]:
        base = self.custom_opts.get("headers")
        merged = [{"name": k, "value": v} for k, v in base.items()] if isinstance(base, dict) else []
        own = [h for h in hook.get("headers") or [] if isinstance(h, dict) and h.get("name")]
        names = {str(h["name"]).lower() for h in own}
        return [h for h in merged if str(h["name"]).lower() not in names] + own

    async def _send(self, hook: dict[str, Any], prepared: _Prepared) -> OutboundResult:
        """One firing with its retries: transport errors and 408/425/429/5xx are retried."""
        import httpx  # loaded by the outbound client's first request anyway (see sundial.outbound)

        from sundial.netpolicy.rules import Refused

        retries = max(0, _int(hook.get("retries")))
        timeout = float(hook.get("timeout") or self.custom_opts.get("timeout") or 30)
        for attempt in range(retries + 1):
            last = attempt == retries
            try:
                result = await self.outbound.request(
                    prepared.method, prepared.url, headers=prepared.headers,
                    content=prepared.body.encode() if prepared.body is not None else None, timeout=timeout,
                    follow=bool(hook.get("follow")), verify=not hook.get("ssl_cert_bypass"))
            except Refused as exc:
                raise WebHookError(str(exc)) from None
            except httpx.InvalidURL as exc:
                raise WebHookError(f"Invalid URL: {exc}") from None
            except httpx.TimeoutException:
                if last:
                    raise WebHookError(f"Request timed out after {human_duration(timeout)}: {prepared.url}") from None
            except (httpx.HTTPError, ValueError) as exc:
                if last:
                    raise WebHookError(f"{exc or type(exc).__name__}: {prepared.url}") from None
            else:
                if 200 <= result.status < 300:
                    return result
                if last or result.status not in RETRY_STATUSES:
                    raise WebHookError(f"HTTP {result.status} {result.reason}: {prepared.url}")
            await asyncio.sleep(min(RETRY_BASE_DELAY * 2 ** attempt, RETRY_MAX_DELAY))
        raise WebHookError(f"Request failed: {prepared.url}")  # not reached: the last attempt returns or raises


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _fence(kind: str, text: str) -> list[str]:
    return ["```" + kind, text.replace("```", "`\u200b``"), "```"]


def details_markdown(hook: dict[str, Any], prepared: _Prepared, result: OutboundResult | None,
                     error: str = "") -> str:
    """The action `details` block (layout of spec §7.2; tests grep `**Method:** POST`)."""
    retries = _int(hook.get("retries"))
    lines = [f"- **Method:** {prepared.method}", f"- **URL:** {prepared.url}",
             f"- **Redirects:** {'Follow' if hook.get('follow') else 'n/a'}",
             f"- **Max Retries:** {retries if retries else 'None'}",
             f"- **Timeout:** {human_duration(float(hook.get('timeout') or 30))}"]
    if prepared.headers:
        lines += ["", "**Request Headers:**", "", *_fence("http", "\n".join(f"{k}: {v}" for k, v in prepared.headers))]
    if prepared.body is not None:
        lines += ["", "**Request Body:**", "", *_fence("", prepared.body)]
    if result is None:
        lines += ["", f"**Error:** {error}"]
        return "\n".join(lines)
    lines += ["", f"**Response:** HTTP {result.status} {result.reason}", "", "**Response Headers:**", "",
              *_fence("http", "\n".join(f"{k}: {v}" for k, v in result.headers))]
    text = result.body[:MAX_SHOWN_BODY].decode("utf-8", "replace")
    if text.strip():
        suffix = "\n(truncated)" if result.truncated or len(result.body) > MAX_SHOWN_BODY else ""
        lines += ["", "**Response Body:**", "", *_fence("", text + suffix)]
    metrics = {"redirects": result.redirects, **result.timing}
    lines += ["", "**Performance Metrics:**", "", *_fence("json", _pretty(metrics))]
    return "\n".join(lines)


def _pretty(value: Any) -> str:
    import json

    return json.dumps(value, indent=2)


__all__ = ["WebHooks", "HookResult", "WebHookError", "SecretSource", "REDACTED", "details_markdown"]
