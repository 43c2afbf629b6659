"""The operator's network policy for every outbound HTTP request: air-gap lists and forward proxies.

Two kinds of process make outbound requests: the conductor (web hooks, and later release lists)
and the HTTP Request plugin a satellite runs as a job. Both must obey the same rules
(config.md §7), so both build their client on the transport here; the module imports nothing of
the conductor, which keeps it usable by the satellite.

* Air-gap lists are checked on the address a connection really uses: the checking network
  backend resolves the host itself and connects to the vetted address, so a DNS answer that
  changes between a check and the connect (rebinding) cannot slip through. Redirect hops are new
  requests and pass the same backend. Through a proxy the *target* is resolved and vetted before
  the request is handed over, and the proxy's own address is vetted like any destination.
* Proxies come from `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` (either case), bypassed by
  `NO_PROXY`; schemes http, https, socks5, socks5h (`socks` means socks5).
* TLS verification is on unless a caller turns it off for one client or one request.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import ssl
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

__all__ = ["VERIFY_EXTENSION", "AirgapRules", "AirgapTransport", "ProxyConfigError", "ProxySettings", "Refused",
           "normalize_proxy", "resolve"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: Request extension that turns TLS verification off (or on) for one request.
VERIFY_EXTENSION = "sundial_verify"
PROXY_SCHEMES = {"http": "http", "https": "https", "socks": "socks5", "socks5": "socks5", "socks5h": "socks5h"}


class Refused(httpx.ConnectError):
    """A destination refused by the air-gap rules (never worth retrying)."""


class ProxyConfigError(httpx.ProxyError):
    """A proxy variable Sundial cannot use (socks4, PAC ...)."""


# -- air-gap rules -----------------------------------------------------------------------------
def _networks(items: Any, strict: bool) -> tuple[IPNetwork, ...]:
    nets = []
    for item in items if isinstance(items, list) else []:
        text = str(item).strip()
        if not text:
            continue
        try:
            nets.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            if strict:
                raise
    return tuple(nets)


def _plain(address: IPAddress) -> IPAddress:
    """`::ffff:10.0.0.1` is 10.0.0.1 for the lists (the OS would connect to the IPv4 host)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class AirgapRules:
    """`airgap` config: when enabled, the blacklist always refuses and a non-empty whitelist must match."""

    enabled: bool = False
    whitelist: tuple[IPNetwork, ...] = ()
    blacklist: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_config(cls, block: Any, *, strict: bool = True) -> AirgapRules:
        """Strict on the conductor (a typo in a list must stop start-up, not open a hole); lenient on a
        satellite, which receives lists the conductor already accepted and must not fail a job over one."""
        if not isinstance(block, Mapping):
            return cls()
        return cls(enabled=bool(block.get("enabled")), whitelist=_networks(block.get("whitelist"), strict),
                   blacklist=_networks(block.get("blacklist"), strict))

    def refusal(self, ip: str) -> str | None:
        """The xyOps error text for a refused address, or None when it may be used."""
        if not self.enabled:
            return None
        address = _plain(ipaddress.ip_address(ip.split("%")[0]))
        if any(address in net for net in self.blacklist):
            return f"IP is blacklisted: {ip}"
        if self.whitelist and not any(address in net for net in self.whitelist):
            return f"IP is not whitelisted: {ip}"
        return None


async def resolve(host: str, port: int, wait: float | None = None) -> list[str]:
    """Every address of a host, in the resolver's order (a literal IP resolves to itself)."""
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), wait)
    except (OSError, TimeoutError) as exc:
        raise httpx.ConnectError(f"Failed to resolve host: {host}: {exc}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, vets and connects to the vetted address, so the check and the connect agree."""

    def __init__(self, rules: AirgapRules, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.rules = rules
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,  # noqa: ASYNC109 (httpcore API)
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        if not self.rules.enabled:
            return await self.inner.connect_tcp(host, port, timeout, local_address, socket_options)
        addresses = await resolve(host, port, timeout)
        allowed = [ip for ip in addresses if self.rules.refusal(ip) is None]
        if not allowed:
            raise Refused(str(self.rules.refusal(addresses[0])))
        last: Exception | None = None
        for ip in allowed:
            try:
                return await self.inner.connect_tcp(ip, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last = exc
        raise last or httpcore.ConnectError(f"Could not connect to {host}")

    async def connect_unix_socket(self, path: str, timeout: float | None = None,  # noqa: ASYNC109
                                  socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        raise Refused("Unix sockets are not allowed for outbound requests")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


# -- proxies -----------------------------------------------------------------------------------
def _env(environ: Mapping[str, str], name: str) -> str:
    return (environ.get(name.lower()) or environ.get(name.upper()) or "").strip()


def _no_proxy_match(entry: str, host: str, port: int | None) -> bool:
    entry = entry.strip().lower()
    if not entry:
        return False
    if entry == "*":
        return True
    if entry.count(":") == 1 and not entry.endswith("]"):
        entry, _, entry_port = entry.partition(":")
        if entry_port.isdigit() and port is not None and int(entry_port) != port:
            return False
    entry = entry.strip("[]")
    try:
        return _plain(ipaddress.ip_address(host.strip("[]"))) in ipaddress.ip_network(entry, strict=False)
    except ValueError:
        pass
    suffix = entry.lstrip("*").lstrip(".")
    return host == suffix or host.endswith("." + suffix)


@dataclass(frozen=True)
class ProxySettings:
    """The proxy variables of a process's environment, read once."""

    http: str = ""
    https: str = ""
    all: str = ""
    no_proxy: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ProxySettings:
        env = os.environ if environ is None else environ
        no_proxy = tuple(p for p in _env(env, "NO_PROXY").replace(" ", ",").split(",") if p)
        return cls(http=_env(env, "HTTP_PROXY"), https=_env(env, "HTTPS_PROXY"), all=_env(env, "ALL_PROXY"),
                   no_proxy=no_proxy)

    def proxy_for(self, url: httpx.URL) -> str | None:
        """The proxy URL to use for one request URL, or None to connect directly."""
        proxy = (self.https if url.scheme == "https" else self.http) or self.all
        if not proxy:
            return None
        host = url.host.lower()
        if any(_no_proxy_match(entry, host, url.port or (443 if url.scheme == "https" else 80))
               for entry in self.no_proxy):
            return None
        return normalize_proxy(proxy)


def normalize_proxy(proxy: str) -> str:
    """`host:3128` means http; `socks://` means socks5; other schemes are refused clearly."""
    if "://" not in proxy:
        proxy = "http://" + proxy
    scheme, rest = proxy.split("://", 1)
    scheme = scheme.lower()
    if scheme not in PROXY_SCHEMES:
        raise ProxyConfigError(f"Unsupported proxy scheme: {scheme} (use http, https, socks5 or socks5h)")
    return f"{PROXY_SCHEMES[scheme]}://{rest}"


def _proxy_label(proxy: str) -> str:
    """scheme://host:port of a proxy URL, never its credentials."""
    url = httpx.URL(proxy)
    return f"{url.scheme}://{url.host}" + (f":{url.port}" if url.port else "")


# -- transport ---------------------------------------------------------------------------------
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


class AirgapTransport(httpx.AsyncBaseTransport):
    """Chooses a direct or proxied pool per request; every pool connects through CheckedBackend."""

    def __init__(self, rules: AirgapRules, proxies: ProxySettings, *, verify: bool = True) -> None:
        self.rules = rules
        self.proxies = proxies
        self.verify = verify
        self.backend = CheckedBackend(rules)
        self._pools: dict[tuple[str, bool], httpcore.AsyncConnectionPool] = {}

    @staticmethod
    def _ssl(verify: bool) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _pool(self, proxy: str | None, verify: bool) -> httpcore.AsyncConnectionPool:
        key = (proxy or "", verify)
        if key not in self._pools:
            self._pools[key] = self._new_pool(proxy, self._ssl(verify))
        return self._pools[key]

    def _new_pool(self, proxy: str | None, context: ssl.SSLContext) -> httpcore.AsyncConnectionPool:
        if proxy is None:
            return httpcore.AsyncConnectionPool(ssl_context=context, network_backend=self.backend)
        url = httpx.URL(proxy)
        auth = (url.username, url.password) if url.username else None
        target = httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path)
        if url.scheme in ("socks5", "socks5h"):
            return httpcore.AsyncSOCKSProxy(proxy_url=target, proxy_auth=auth, ssl_context=context,
                                            network_backend=self.backend)
        return httpcore.AsyncHTTPProxy(proxy_url=target, proxy_auth=auth, ssl_context=context,
                                       network_backend=self.backend)

    async def _check_target(self, url: httpx.URL, wait: float | None) -> None:
        """Proxied requests: the proxy resolves the target, so vet it here first."""
        if not self.rules.enabled:
            return
        for ip in await resolve(url.host, url.port or 443, wait):
            reason = self.rules.refusal(ip)
            if reason:
                raise Refused(reason)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        extensions = dict(request.extensions)
        verify = bool(extensions.pop(VERIFY_EXTENSION, self.verify))
        proxy = self.proxies.proxy_for(request.url)
        if proxy is not None:
            await self._check_target(request.url, (extensions.get("timeout") or {}).get("connect"))
        url = request.url
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
            headers=request.headers.raw, content=request.stream, extensions=extensions)
        try:
            response = await self._pool(proxy, verify).handle_async_request(core_request)
        except Refused:
            raise
        except Exception as exc:
            error = _to_httpx_error(exc)
            if proxy is not None and isinstance(error, httpx.ConnectError):
                # Through a proxy a connect failure is the proxy's: name it, or "All connection
                # attempts failed" sends the operator to debug the wrong host.
                raise httpx.ProxyError(f"Cannot reach the proxy {_proxy_label(proxy)} (from the HTTP_PROXY / "
                                       f"HTTPS_PROXY / ALL_PROXY environment): {error}") from None
            raise error from None
        return httpx.Response(status_code=response.status, headers=response.headers,
                              stream=_Body(response.stream), extensions=response.extensions)

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.aclose()
