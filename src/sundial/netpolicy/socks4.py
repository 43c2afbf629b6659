"""SOCKS4 and SOCKS4a proxies: a network backend that opens each connection through the proxy.

httpcore speaks SOCKS5 only. SOCKS4 is small enough to do here (one request, one 8-byte reply): the
connection to the proxy goes through the air-gap backend (so the proxy's own address is vetted),
then a CONNECT names the target. Plain SOCKS4 carries an IPv4 address, so the target is resolved
here and the very address sent is the one vetted; SOCKS4a sends the name and the proxy resolves
it (the transport has vetted the name's addresses before). TLS to the target runs over the
tunnel as over any TCP stream.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from sundial.netpolicy.rules import CheckedBackend, resolve, vet

REPLY_SIZE = 8
GRANTED = 0x5A
REPLY_REASONS = {0x5B: "request rejected or failed", 0x5C: "the proxy cannot reach the client's identd",
                 0x5D: "the user id was not confirmed by identd"}


class Socks4Backend(httpcore.AsyncNetworkBackend):
    """`connect_tcp(target)` = TCP to the proxy (air-gap checked) + a SOCKS4 CONNECT for the target."""

    def __init__(self, proxy: httpx.URL, inner: CheckedBackend) -> None:
        self.host, self.port = proxy.host, proxy.port or 1080
        self.remote_dns = proxy.scheme == "socks4a"
        self.user_id = proxy.username.encode()
        self.inner = inner

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,  # noqa: ASYNC109 (httpcore API)
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        remote = self.remote_dns and ":" not in host  # an IPv6 literal cannot travel in SOCKS4 at all
        address = host if remote else await self._ipv4(host, port, timeout)
        stream = await self.inner.connect_tcp(self.host, self.port, timeout, local_address, socket_options)
        try:
            await self._handshake(stream, address, port, timeout)
        except BaseException:
            await stream.aclose()
            raise
        return stream

    async def _ipv4(self, host: str, port: int, wait: float | None) -> str:
        """The target's first IPv4 address the air-gap rules allow (SOCKS4 has no room for IPv6)."""
        rules = self.inner.rules
        addresses = await vet(rules, host, port, wait) if rules.enabled else await resolve(host, port, wait)
        for ip in addresses:
            if ipaddress.ip_address(ip).version == 4:
                return ip
        raise httpcore.ProxyError(f"{host} has no IPv4 address, which a SOCKS4 proxy needs (use socks4a or socks5)")

    async def _handshake(self, stream: httpcore.AsyncNetworkStream, address: str, port: int,
                         wait: float | None) -> None:
        """CONNECT: version 4, command 1, port, IPv4 (0.0.0.1 plus a trailing name for 4a), user id."""
        ip = address if _is_ipv4(address) else "0.0.0.1"
        name = b"" if ip == address else address.encode("idna") + b"\0"
        request = bytes([4, 1]) + port.to_bytes(2, "big") + ipaddress.IPv4Address(ip).packed
        await stream.write(request + self.user_id + b"\0" + name, wait)
        reply = b""
        while len(reply) < REPLY_SIZE:
            chunk = await stream.read(REPLY_SIZE - len(reply), wait)
            if not chunk:
                raise httpcore.ProxyError("The SOCKS4 proxy closed the connection during the handshake")
            reply += chunk
        if reply[0] != 0:
            raise httpcore.ProxyError("The SOCKS4 proxy sent a malformed reply")
        if reply[1] != GRANTED:
            reason = REPLY_REASONS.get(reply[1], f"code {reply[1]:#x}")
            raise httpcore.ProxyError(f"The SOCKS4 proxy refused the connection to {address}:{port} ({reason})")

    async def connect_unix_socket(self, path: str, timeout: float | None = None,  # noqa: ASYNC109
                                  socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        return await self.inner.connect_unix_socket(path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def _is_ipv4(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).version == 4
    except ValueError:
        return False
