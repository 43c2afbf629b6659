"""PAC files (proxy auto-config): fetched, cached, and asked per request which proxies to try.

The JavaScript runs in pypac's evaluator (QuickJS through dukpy); the file itself is fetched here
with httpx, directly and under the air-gap rules (the caller hands in a direct client), so no
second HTTP stack is involved. A PAC file is used for PAC_REFRESH seconds, then fetched again; a
failed fetch keeps the previous file and is retried after PAC_RETRY seconds (with no previous
file, requests fail with the fetch error until then, instead of each one waiting on a dead server).

All JavaScript of one PAC file runs on one daemon thread: the engine is single-threaded, the PAC
helpers (dnsResolve, myIpAddress) block on DNS, and a runaway script must neither stall the event
loop nor keep the process from exiting.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import httpx

from sundial.netpolicy.proxies import ProxyConfigError, proxy_label

log = logging.getLogger(__name__)

PAC_REFRESH = 300.0
PAC_RETRY = 30.0
PAC_EVAL_TIMEOUT = 5.0
PAC_FETCH_TIMEOUT = 10.0
MAX_PAC_BYTES = 1 << 20
#: PAC keyword -> proxy URL scheme. `SOCKS` means SOCKS5 (as curl and most PAC clients read it).
PAC_KEYWORDS = {"PROXY": "http", "HTTP": "http", "HTTPS": "https", "SOCKS": "socks5", "SOCKS5": "socks5",
                "SOCKS4": "socks4"}
#: Run before the PAC file: the engine's Node-like extras (environment, module loader) are no PAC API.
_SANDBOX = "delete globalThis.process; delete globalThis.require; "


class _JsThread:
    """One daemon thread that runs every call for one PAC file, in order."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = queue.SimpleQueue()
        threading.Thread(target=self._run, name="sundial-pac", daemon=True).start()

    def _run(self) -> None:
        while True:
            item = self._calls.get()
            if item is None:  # close()
                return
            call, future = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(call())
                except BaseException as exc:  # handed to the awaiting coroutine
                    future.set_exception(exc)

    def close(self) -> None:
        self._calls.put(None)

    async def call(self, func: Callable[[], Any], wait: float) -> Any:
        future: Future[Any] = Future()
        self._calls.put((func, future))
        return await asyncio.wait_for(asyncio.wrap_future(future), wait)


def _compile(source: str) -> Any:
    from pypac.parser import PACFile  # loaded only where a PAC file is configured

    return PACFile(_SANDBOX + source)


def parse_routes(value: Any) -> list[str | None]:
    """`"PROXY a:1; SOCKS b:2; DIRECT"` -> `["http://a:1", "socks5://b:2", None]` (None = direct).

    An empty or null answer means DIRECT; entries Sundial cannot read are skipped.
    """
    if value is None or not str(value).strip():
        return [None]
    routes: list[str | None] = []
    for entry in str(value).split(";"):
        words = entry.split()
        if len(words) == 1 and words[0].upper() == "DIRECT":
            routes.append(None)
        elif len(words) == 2 and words[0].upper() in PAC_KEYWORDS:
            routes.append(f"{PAC_KEYWORDS[words[0].upper()]}://{words[1]}")
    return routes


def pac_request_url(url: httpx.URL) -> str:
    """The URL a PAC script sees: no credentials, and for https no path or query (they may hold tokens,
    and browsers hide them too)."""
    bare = url.copy_with(username=None, password=None, fragment=None)
    return str(bare.copy_with(raw_path=b"/")) if url.scheme == "https" else str(bare)


class PacResolver:
    """One PAC location (`pac+http://…`, `pac+file://…`): `await routes(url)` lists the proxies to try."""

    def __init__(self, location: str, client: httpx.AsyncClient) -> None:
        self.location = location
        self.label = proxy_label(location)
        self._client = client
        self._script: Any = None
        self._error: ProxyConfigError | None = None
        self._next_load = 0.0
        self._loading = asyncio.Lock()
        self._js = _JsThread()

    async def routes(self, url: httpx.URL) -> list[str | None]:
        script = await self._current()
        try:
            value = await self._js.call(lambda: script.find_proxy_for_url(pac_request_url(url), url.host),
                                        PAC_EVAL_TIMEOUT)
        except TimeoutError:
            raise ProxyConfigError(f"The PAC file {self.label} did not answer within {PAC_EVAL_TIMEOUT:g} s "
                                   f"for {url.host}") from None
        except Exception as exc:  # a script error, whatever its type: the request fails, never the caller
            raise ProxyConfigError(f"The PAC file {self.label} failed for {url.host}: {_first_line(exc)}") from None
        routes = parse_routes(value)
        if not routes:
            raise ProxyConfigError(f"The PAC file {self.label} returned nothing usable for {url.host}: {value!r}")
        return routes

    def close(self) -> None:
        """Ends the JavaScript thread (once any call in progress returns)."""
        self._js.close()

    async def _current(self) -> Any:
        async with self._loading:
            if time.monotonic() >= self._next_load:
                await self._load()
        if self._script is None:
            raise self._error or ProxyConfigError(f"The PAC file {self.label} is not loaded")
        return self._script

    async def _load(self) -> None:
        try:
            source = await self._fetch()
            script = await self._js.call(lambda: _compile(source), PAC_EVAL_TIMEOUT)
        except Exception as exc:  # unreachable, refused, broken: named, never raised past the request
            reason = "it did not compile in time" if isinstance(exc, TimeoutError) else _first_line(exc)
            self._error = ProxyConfigError(f"Cannot use the PAC file {self.label}: {reason}")
            self._next_load = time.monotonic() + PAC_RETRY
            if self._script is not None:
                log.warning("%s; still using the copy fetched before", self._error)
            return
        self._script, self._error = script, None
        self._next_load = time.monotonic() + PAC_REFRESH

    async def _fetch(self) -> str:
        target = self.location.removeprefix("pac+")
        if target.startswith("file:"):
            path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(target).path))
            data = await asyncio.to_thread(_read_head, path)
        else:
            async with self._client.stream("GET", target, timeout=PAC_FETCH_TIMEOUT) as response:
                if response.status_code != 200:
                    raise ProxyConfigError(f"HTTP {response.status_code} {response.reason_phrase}")
                data = b""
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > MAX_PAC_BYTES:
                        break
        if len(data) > MAX_PAC_BYTES:
            raise ProxyConfigError(f"larger than {MAX_PAC_BYTES >> 20} MiB")
        return data.decode("utf-8", "replace")


def _read_head(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(MAX_PAC_BYTES + 1)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
