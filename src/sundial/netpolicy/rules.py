"""Air-gap rules (config.md §7.2; the lists themselves are parsed in :mod:`.settings`) and the
network backend that enforces them on real addresses.

The lists are checked on the address a connection really uses: :class:`CheckedBackend` resolves
the host itself and connects to the vetted address, so a DNS answer that changes between a check
and the connect (rebinding) cannot slip through. Redirect hops are new requests and pass the same
backend; so does every connection to a proxy.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from sundial.netpolicy.settings import AirgapRules, plain

__all__ = ["AirgapRules", "CheckedBackend", "Refused", "plain", "resolve", "vet"]


class Refused(httpx.ConnectError):
    """A destination refused by the air-gap rules (never worth retrying)."""


async def vet(rules: AirgapRules, host: str, port: int, wait: float | None) -> list[str]:
    """The host's usable addresses (all of them when the rules are off); Refused when none is."""
    addresses = await resolve(host, port, wait)
    allowed = [ip for ip in addresses if rules.refusal(ip) is None]
    if not allowed:
        raise Refused(str(rules.refusal(addresses[0])))
    return allowed


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
        last: Exception | None = None
        for ip in await vet(self.rules, host, port, timeout):
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
