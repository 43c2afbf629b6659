"""HTTP Request plugin (``[http-plugin]``): one request, judged by status and optional patterns.

URL, headers and body accept ``[path]`` placeholders resolved against the job (``[secrets.KEY]``,
``[params.x]``); ``{{ }}`` macros were already expanded by the conductor. The result carries the
response status, lower-cased headers and, for a JSON answer, the parsed body as output data, plus a
"HTTP Request Details" block in which every secret value of the job is masked, since the request
often carries them (tokens in headers or URLs). With ``download`` the body becomes an output file.
The air-gap lists and proxy variables apply (see :mod:`netclient`).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.message
import http
import mimetypes
import re
import time
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

import httpx
import orjson

from sundial.satellite.plugins.netclient import Refused, make_client
from sundial.satellite.plugins.wire import PluginError, finish, substitute, truthy

__all__ = ["TITLE", "download_name", "parse_headers", "run"]

TITLE = "HTTP Plugin"
MAX_BODY = 32 * 1024 * 1024
PREVIEW_CHARS = 4096
MASK = "********"
_URL = re.compile(r"^https?://\S+$", re.IGNORECASE)
_SAFE_NAME = re.compile(r"[^\w\-.]+")


def parse_headers(text: str) -> list[tuple[str, str]]:
    """``Name: value`` per line; lines without a colon or with an empty name are skipped."""
    headers = []
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() and re.fullmatch(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", name.strip()):
            headers.append((name.strip(), value.strip()))
    return headers


def _number(value: Any, default: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if number > 0 else default


def _pattern(value: Any, what: str) -> re.Pattern[str] | None:
    text = str(value or "")
    if not text:
        return None
    try:
        return re.compile(text)
    except re.error as exc:
        raise PluginError(f"Invalid {what} pattern: {exc}") from None


def download_name(response: httpx.Response) -> str:
    """Content-Disposition name, else the URL's last segment, else ``output``; an extension from
    the content type (or ``.bin``) when the name has none. Always a bare, safe file name."""
    name = ""
    disposition = response.headers.get("content-disposition", "")
    if disposition:
        msg = email.message.Message()
        msg["content-disposition"] = disposition
        name = str(msg.get_filename() or "")
    if not name:
        name = unquote(PurePosixPath(urlsplit(str(response.url)).path).name)
    name = _SAFE_NAME.sub("_", PurePosixPath(name.replace("\\", "/")).name).strip("._") or "output"
    if not PurePosixPath(name).suffix:
        ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
        name += mimetypes.guess_extension(ctype) or ".bin"
    return name


class _Timings:
    """First time each network phase happened, from httpcore's trace hook."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.marks: dict[str, float] = {}

    async def __call__(self, event: str, info: Mapping[str, Any]) -> None:
        self.marks.setdefault(event, time.perf_counter())

    def span(self, first: str, last: str) -> float | None:
        a, b = self.marks.get(first), self.marks.get(last)
        return round(b - a, 6) if a is not None and b is not None and b >= a else None

    def perf(self, end: float) -> dict[str, float]:
        phases = {
            "connect": self.span("connection.connect_tcp.started", "connection.connect_tcp.complete"),
            "tls": self.span("connection.start_tls.started", "connection.start_tls.complete"),
            "send": self.span("http11.send_request_headers.started", "http11.send_request_body.complete"),
            "wait": self.span("http11.send_request_body.complete", "http11.receive_response_headers.complete"),
        }
        headers_done = self.marks.get("http11.receive_response_headers.complete")
        if headers_done is not None:
            phases["receive"] = round(end - headers_done, 6)
        return {"total": round(end - self.start, 6), **{k: v for k, v in phases.items() if v is not None}}


class HttpRequest:
    """The request described by the job's params, and the job result it leads to."""

    def __init__(self, job: dict[str, Any]) -> None:
        params = job.get("params") if isinstance(job.get("params"), dict) else {}
        p: dict[str, Any] = params or {}
        self.job = job
        self.method = str(p.get("method") or "GET").strip().upper()
        self.url = substitute(str(p.get("url") or "").strip(), job)
        self.headers = parse_headers(substitute(str(p.get("headers") or ""), job))
        self.body = substitute(str(p.get("data") or ""), job)
        self.total = _number(p.get("timeout"), 30)
        self.timeout = httpx.Timeout(_number(p.get("idle_timeout"), 30),
                                     connect=_number(p.get("connect_timeout"), 10))
        self.follow, self.download = truthy(p.get("follow")), truthy(p.get("download"))
        self.verify = not truthy(p.get("ssl_cert_bypass"))
        self.success = _pattern(p.get("success_match"), "success match")
        self.error = _pattern(p.get("error_match"), "error match")
        secrets = job.get("secrets") if isinstance(job.get("secrets"), dict) else {}
        self.secrets = sorted({str(v) for v in (secrets or {}).values() if v not in (None, "")}, key=len,
                              reverse=True)
        self.timings = _Timings()
        self.saved: str | None = None

    def scrub(self, text: str) -> str:
        """Mask every secret value of the job (longest first, so overlapping values stay masked)."""
        for value in self.secrets:
            text = text.replace(value, MASK)
        return text

    async def main(self) -> None:
        if not _URL.match(self.url):
            raise PluginError("Malformed URL")
        try:
            async with asyncio.timeout(self.total):
                response, body, size = await self._fetch()
        except TimeoutError:
            raise PluginError(f"HTTP request timed out after {self.total:g} seconds.") from None
        except Refused as exc:
            raise PluginError(str(exc)) from None
        except httpx.TooManyRedirects:
            raise PluginError("HTTP Error: Too many redirects (the limit is 32).") from None
        except httpx.HTTPError as exc:
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise PluginError(self.scrub(f"HTTP Error: {detail}")) from None
        self._report(response, body, size, time.perf_counter())

    async def _fetch(self) -> tuple[httpx.Response, bytes, int]:
        content = self.body.encode("utf-8") if self.body and self.method not in ("GET", "HEAD") else None
        async with make_client(self.job.get("airgap"), verify=self.verify, timeout=self.timeout,
                               follow=self.follow) as client:
            request = client.build_request(self.method, self.url, headers=self.headers, content=content,
                                           extensions={"trace": self.timings})
            response = await client.send(request, stream=True)
            try:
                body, size = await self._read(response)
            finally:
                await response.aclose()
        return response, body, size

    async def _read(self, response: httpx.Response) -> tuple[bytes, int]:
        """Keep up to 32 MiB for matching and JSON; with ``download`` write the whole body to a file."""
        kept, size = bytearray(), 0
        out: BinaryIO | None = None
        if self.download and 200 <= response.status_code < 400:
            self.saved = download_name(response)
            out = Path(self.saved).open("wb")  # noqa: SIM115, ASYNC230 (own process; closed after streaming)
        try:
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if len(kept) < MAX_BODY:
                    kept += chunk[: MAX_BODY - len(kept)]
                if out is not None:
                    out.write(chunk)
        finally:
            if out is not None:
                out.close()
        return bytes(kept), size

    # -- result -----------------------------------------------------------------------------------

    def _report(self, response: httpx.Response, body: bytes, size: int, end: float) -> None:
        status = response.status_code
        message = response.reason_phrase or _phrase(status)
        text = body.decode("utf-8", "replace")
        code, description = self._verdict(status, message, text)
        data: dict[str, Any] = {"statusCode": status, "statusMessage": message,
                                "headers": {k.lower(): v for k, v in response.headers.multi_items()}}
        parsed = _json_body(response, body, size)
        if parsed is not None:
            data["json"] = parsed
        extra: dict[str, Any] = {"data": data, "perf": self.timings.perf(end),
                                 "markdown": {"title": "HTTP Request Details",
                                              "content": self.scrub(self._details(response, text, size))}}
        if self.saved:
            extra["files"] = [self.saved]
        finish(code, self.scrub(description), **extra)

    def _verdict(self, status: int, message: str, text: str) -> tuple[int, str]:
        if status < 200 or status >= 400:
            return status, f"HTTP {status} {message}".strip()
        if self.error is not None and self.error.search(text):
            return 1, f"Response body matched the error pattern: {self.error.pattern}"
        if self.success is not None and not self.success.search(text):
            return 1, f"Response body did not match the success pattern: {self.success.pattern}"
        return 0, f"Success (HTTP {status} {message})".replace(" )", ")")

    def _details(self, response: httpx.Response, text: str, size: int) -> str:
        sent = "\n".join(f"{k}: {v}" for k, v in response.request.headers.items())
        got = "\n".join(f"{k}: {v}" for k, v in response.headers.multi_items())
        lines = [f"- **Method:** {self.method}", f"- **URL:** {self.url}",
                 f"- **Status:** {response.status_code} {response.reason_phrase}",
                 f"- **Redirects:** {len(response.history)}", f"- **Response size:** {size} bytes"]
        if len(response.history):
            lines.append(f"- **Final URL:** {response.url}")
        if self.saved:
            lines.append(f"- **Saved as:** {self.saved}")
        parts = ["\n".join(lines), f"**Request Headers:**\n\n```\n{sent}\n```",
                 f"**Response Headers:**\n\n```\n{got}\n```"]
        if text and not self.saved:
            preview = text[:PREVIEW_CHARS] + ("\n…" if len(text) > PREVIEW_CHARS else "")
            parts.append(f"**Response Body:**\n\n```\n{preview}\n```")
        return "\n\n".join(parts)


def _phrase(status: int) -> str:
    with contextlib.suppress(ValueError):
        return http.HTTPStatus(status).phrase
    return ""


def _json_body(response: httpx.Response, body: bytes, size: int) -> Any:
    """The parsed body when it is JSON and was kept whole (under 32 MiB)."""
    if not body or size > len(body):
        return None
    looks_json = "json" in response.headers.get("content-type", "").lower() or body.lstrip()[:1] in (b"{", b"[")
    if not looks_json:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def run(job: dict[str, Any]) -> None:
    """Entry point used by ``python -m sundial.satellite.plugins http-plugin``."""
    asyncio.run(HttpRequest(job).main())
