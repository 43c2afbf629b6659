"""The httpx transport every outbound request goes through: route choice, air-gap checks, errors.

Per request it picks the routes to try (direct, the proxy variable's proxy, or a PAC file's list),
vets a proxied target before the proxy sees it (the proxy resolves the name itself), and tries
the routes in order: a proxy that cannot be reached, or whose address the air-gap refuses, makes
way for the next route; the last route's error is the request's. Every pool connects through
:class:`CheckedBackend`, so proxies and direct targets alike are vetted on the address used.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from typing import Any

import httpcore
import httpx

from sundial.netpolicy.pac import PacResolver
from sundial.netpolicy.proxies import ProxySettings, is_pac, proxy_label
from sundial.netpolicy.rules import AirgapRules, CheckedBackend, Refused, resolve
from sundial.netpolicy.socks4 import Socks4Backend

#: Request extension that turns TLS verification off (or on) for one request.
VERIFY_EXTENSION = "sundial_verify"
ENV_SOURCE = "the HTTP_PROXY / HTTPS_PROXY / ALL_PROXY environment"


def _to_httpx_error(exc: Exception) -> Exception:
    """httpcore's errors as the httpx types of the same name, so callers catch one family."""
    if isinstance(exc, httpx.HTTPError):
        return exc
    kind = getattr(httpx, type(exc).__name__, None)
    if isinstance(kind, type) and issubclass(kind, httpx.TransportError):
        return kind(str(exc) or type(exc).__name__)
    return httpx.TransportError(str(exc) or type(exc).__name__)


class _Body(httpx.AsyncByteStream):
    """An httpcore response body seen as an httpx stream, with errors mapped to httpx types."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._stream:
                yield chunk
        except Exception as exc:  # httpcore's errors, seen by callers as httpx's
            raise _to_httpx_error(exc) from None

    async def aclose(self) -> None:
        if hasattr(self._stream, "aclose"):
            await self._stream.aclose()


def _ssl(verify: bool) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class AirgapTransport(httpx.AsyncBaseTransport):
    """Chooses direct or proxied pools per request; every pool connects through CheckedBackend."""

    def __init__(self, rules: AirgapRules, proxies: ProxySettings, *, verify: bool = True) -> None:
        self.rules = rules
        self.proxies = proxies
        self.verify = verify
        self.backend = CheckedBackend(rules)
        self._pools: dict[tuple[str, bool], httpcore.AsyncConnectionPool] = {}
        self._pacs: dict[str, PacResolver] = {}
        self._pac_client: httpx.AsyncClient | None = None

    def _pool(self, proxy: str | None, verify: bool) -> httpcore.AsyncConnectionPool:
        key = (proxy or "", verify)
        if key not in self._pools:
            self._pools[key] = self._new_pool(proxy, _ssl(verify))
        return self._pools[key]

    def _new_pool(self, proxy: str | None, context: ssl.SSLContext) -> httpcore.AsyncConnectionPool:
        if proxy is None:
            return httpcore.AsyncConnectionPool(ssl_context=context, network_backend=self.backend)
        url = httpx.URL(proxy)
        if url.scheme in ("socks4", "socks4a"):
            return httpcore.AsyncConnectionPool(ssl_context=context, network_backend=Socks4Backend(url, self.backend))
        auth = (url.username, url.password) if url.username else None
        target = httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path)
        if url.scheme in ("socks5", "socks5h"):
            return httpcore.AsyncSOCKSProxy(proxy_url=target, proxy_auth=auth, ssl_context=context,
                                            network_backend=self.backend)
        return httpcore.AsyncHTTPProxy(proxy_url=target, proxy_auth=auth, ssl_context=context,
                                       network_backend=self.backend)

    def _pac(self, location: str) -> PacResolver:
        """The resolver of one PAC location; its file is fetched directly, under the air-gap rules."""
        if location not in self._pacs:
            if self._pac_client is None:
                self._pac_client = httpx.AsyncClient(transport=AirgapTransport(self.rules, ProxySettings()),
                                                     trust_env=False, follow_redirects=True, max_redirects=5)
            self._pacs[location] = PacResolver(location, self._pac_client)
        return self._pacs[location]

    async def _routes(self, url: httpx.URL) -> tuple[list[str | None], str]:
        """The proxies to try in order (None = direct), and where they came from, for error messages."""
        configured = self.proxies.proxy_for(url)
        if configured is None:
            return [None], ""
        if is_pac(configured):
            return await self._pac(configured).routes(url), f"the PAC file {proxy_label(configured)}"
        return [configured], ENV_SOURCE

    async def _check_target(self, url: httpx.URL, wait: float | None) -> None:
        """Proxied requests: the proxy resolves the target, so every address of it must pass here first."""
        if not self.rules.enabled:
            return
        for ip in await resolve(url.host, url.port or 443, wait):
            reason = self.rules.refusal(ip)
            if reason:
                raise Refused(reason)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        extensions = dict(request.extensions)
        verify = bool(extensions.pop(VERIFY_EXTENSION, self.verify))
        routes, source = await self._routes(request.url)
        if any(route is not None for route in routes):
            await self._check_target(request.url, (extensions.get("timeout") or {}).get("connect"))
        url = request.url
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
            headers=request.headers.raw, content=request.stream, extensions=extensions)
        for index, proxy in enumerate(routes):
            try:
                response = await self._pool(proxy, verify).handle_async_request(core_request)
            except Exception as exc:
                error = _route_error(exc, proxy, source)
                unusable_proxy = proxy is not None and isinstance(error, httpx.ConnectError | httpx.ProxyError)
                if index == len(routes) - 1 or not unusable_proxy:
                    raise error from None
                continue  # this proxy is unusable: the next route
            return httpx.Response(status_code=response.status, headers=response.headers,
                                  stream=_Body(response.stream), extensions=response.extensions)
        raise httpx.ConnectError("No route to try")  # unreachable: routes is never empty

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.aclose()
        for pac in self._pacs.values():
            pac.close()
        self._pacs = {}
        if self._pac_client is not None:
            await self._pac_client.aclose()
            self._pac_client = None


def _route_error(exc: Exception, proxy: str | None, source: str) -> Exception:
    """The httpx error for a failed attempt; through a proxy a connect failure names the proxy."""
    if isinstance(exc, Refused):
        return exc
    error = _to_httpx_error(exc)
    if proxy is not None and isinstance(error, httpx.ConnectError):
        # Otherwise "All connection attempts failed" sends the operator to debug the wrong host.
        return httpx.ProxyError(f"Cannot reach the proxy {proxy_label(proxy)} (from {source}): {error}")
    if proxy is not None and isinstance(error, httpx.ProxyError):
        return httpx.ProxyError(f"{error} (proxy {proxy_label(proxy)}, from {source})")
    return error
