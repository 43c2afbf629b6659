"""The built-in plugins' HTTP client: the conductor's air-gap lists, the job's proxy variables.

The conductor pushes its ``airgap`` block to every agent and the agent hands it to jobs; the HTTP
plugin must honour it (config.md §7.2). The lists are checked on the address a connection really
uses: the network backend below resolves the host itself and connects to the vetted address, so a
DNS answer that changes between check and connect cannot slip through, and every redirect hop
passes the same check. Through a forward proxy the target is resolved and vetted first, and the
proxy's own address is vetted like any destination. Proxies come from the job's environment
(``HTTP(S)_PROXY``, ``ALL_PROXY``, ``NO_PROXY``), as for any other job process.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

__all__ = ["AirgapRules", "AirgapTransport", "Refused", "make_client"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_PROXY_SCHEMES = {"http": "http", "https": "https", "socks": "socks5", "socks5": "socks5", "socks5h": "socks5h"}


class Refused(httpx.ConnectError):
    """A destination the air-gap lists do not allow."""


def _networks(items: Any) -> tuple[IPNetwork, ...]:
    if not isinstance(items, list):
        return ()
    nets = []
    for item in items:
        try:
            nets.append(ipaddress.ip_network(str(item).strip(), strict=False))
        except ValueError:
            continue  # one bad entry must not disable the rest of the list
    return tuple(nets)


@dataclass(frozen=True)
class AirgapRules:
    """Blacklist always refuses; a non-empty whitelist must match. Off unless ``enabled``."""

    enabled: bool = False
    whitelist: tuple[IPNetwork, ...] = ()
    blacklist: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_doc(cls, block: Any) -> AirgapRules:
        if not isinstance(block, Mapping):
            return cls()
        return cls(bool(block.get("enabled")), _networks(block.get("whitelist")), _networks(block.get("blacklist")))

    def refusal(self, ip: str) -> str | None:
        """The refusal text for an address (as xyOps words it), or None when it may be used."""
        if not self.enabled:
            return None
        address = ipaddress.ip_address(ip.split("%")[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in net for net in self.blacklist):
            return f"IP is blacklisted: {ip}"
        if self.whitelist and not any(address in net for net in self.whitelist):
            return f"IP is not whitelisted: {ip}"
        return None


async def resolve(host: str, port: int) -> list[str]:
    """Every address of a host in resolver order; a literal IP is its own answer."""
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise httpx.ConnectError(f"Failed to resolve host: {host}: {exc}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    """Resolve, vet, and connect to a vetted address."""

    def __init__(self, rules: AirgapRules) -> None:
        self.rules = rules
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,  # noqa: ASYNC109 (httpcore API)
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        if not self.rules.enabled:
            return await self.inner.connect_tcp(host, port, timeout, local_address, socket_options)
        addresses = await resolve(host, port)
        allowed = [ip for ip in addresses if self.rules.refusal(ip) is None]
        if not allowed:
            raise Refused(str(self.rules.refusal(addresses[0])))
        error: Exception | None = None
        for ip in allowed:
            try:
                return await self.inner.connect_tcp(ip, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError(f"Could not connect to {host}")

    async def connect_unix_socket(self, path: str, timeout: float | None = None,  # noqa: ASYNC109
                                  socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        raise Refused("Unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def _proxy_for(url: httpx.URL) -> str | None:
    """The proxy for one URL from the environment (``NO_PROXY`` honoured by ``proxy_bypass``), or None."""
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(url.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(url.host):
        return None
    if "://" not in proxy:
        proxy = "http://" + proxy
    scheme, rest = proxy.split("://", 1)
    if scheme.lower() not in _PROXY_SCHEMES:
        raise httpx.ProxyError(f"Unsupported proxy scheme: {scheme} (use http, https, socks5 or socks5h)")
    return f"{_PROXY_SCHEMES[scheme.lower()]}://{rest}"


class AirgapTransport(httpx.AsyncBaseTransport):
    """Direct or proxied connection pools, every one connecting through the checking backend."""

    def __init__(self, rules: AirgapRules, verify: bool) -> None:
        self.rules = rules
        self.backend = _CheckedBackend(rules)
        self.context = ssl.create_default_context()
        if not verify:
            self.context.check_hostname = False
            self.context.verify_mode = ssl.CERT_NONE
        self.pools: dict[str, httpcore.AsyncConnectionPool] = {}

    def _pool(self, proxy: str | None) -> httpcore.AsyncConnectionPool:
        key = proxy or ""
        if key not in self.pools:
            self.pools[key] = self._new_pool(proxy)
        return self.pools[key]

    def _new_pool(self, proxy: str | None) -> httpcore.AsyncConnectionPool:
        if proxy is None:
            return httpcore.AsyncConnectionPool(ssl_context=self.context, network_backend=self.backend)
        url = httpx.URL(proxy)
        auth = (url.username, url.password) if url.username else None
        target = httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path)
        if url.scheme.startswith("socks5"):
            return httpcore.AsyncSOCKSProxy(proxy_url=target, proxy_auth=auth, ssl_context=self.context,
                                            network_backend=self.backend)
        return httpcore.AsyncHTTPProxy(proxy_url=target, proxy_auth=auth, ssl_context=self.context,
                                       network_backend=self.backend)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        proxy = _proxy_for(request.url)
        if proxy is not None and self.rules.enabled:  # the proxy resolves the target: vet it here
            for ip in await resolve(request.url.host, request.url.port or 443):
                reason = self.rules.refusal(ip)
                if reason:
                    raise Refused(reason)
        url = request.url
        core = httpcore.Request(method=request.method,
                                url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port,
                                                 target=url.raw_path),
                                headers=request.headers.raw, content=request.stream, extensions=request.extensions)
        try:
            response = await self._pool(proxy).handle_async_request(core)
        except httpx.HTTPError:
            raise
        except Exception as exc:
            raise _as_httpx(exc) from None
        return httpx.Response(status_code=response.status, headers=response.headers,
                              stream=_Body(response.stream), extensions=response.extensions)

    async def aclose(self) -> None:
        pools, self.pools = list(self.pools.values()), {}
        for pool in pools:
            await pool.aclose()


def _as_httpx(exc: Exception) -> Exception:
    """httpcore's errors as the httpx types of the same name, so callers catch one family."""
    kind = getattr(httpx, type(exc).__name__, None)
    if isinstance(kind, type) and issubclass(kind, httpx.TransportError):
        return kind(str(exc) or type(exc).__name__)
    return httpx.TransportError(str(exc) or type(exc).__name__)


class _Body(httpx.AsyncByteStream):
    def __init__(self, stream: Any) -> None:
        self.stream = stream

    async def __aiter__(self) -> Any:
        try:
            async for chunk in self.stream:
                yield chunk
        except Exception as exc:
            raise _as_httpx(exc) from None

    async def aclose(self) -> None:
        if hasattr(self.stream, "aclose"):
            await self.stream.aclose()


def make_client(airgap: Any, *, verify: bool = True, timeout: httpx.Timeout | float = 30.0,
                follow: bool = False) -> httpx.AsyncClient:
    """An async client bound to the job's air-gap rules; redirects (max 32) when ``follow``."""
    transport = AirgapTransport(AirgapRules.from_doc(airgap), verify)
    return httpx.AsyncClient(transport=transport, trust_env=False, timeout=timeout, follow_redirects=follow,
                             max_redirects=32)
