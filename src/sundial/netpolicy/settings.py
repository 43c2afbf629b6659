"""The policy as data: air-gap lists and proxy variables, parsed without any HTTP library.

Why a module of its own: the conductor reads both at start (a typo in a list must stop start-up),
but most conductors never send an outbound request, so httpx and its stack (several MiB) load
only with the first one (:mod:`sundial.outbound`). What acts on these settings (resolving,
vetting, connecting, proxy URLs) lives in :mod:`.rules`, :mod:`.proxies` and :mod:`.transport`.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


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


def plain(address: IPAddress) -> IPAddress:
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
        address = plain(ipaddress.ip_address(ip.split("%")[0]))
        if any(address in net for net in self.blacklist):
            return f"IP is blacklisted: {ip}"
        if self.whitelist and not any(address in net for net in self.whitelist):
            return f"IP is not whitelisted: {ip}"
        return None


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
        return plain(ipaddress.ip_address(host.strip("[]"))) in ipaddress.ip_network(entry, strict=False)
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
        """The proxy (or `pac+…` location) for one request URL, or None to connect directly."""
        from sundial.netpolicy.proxies import normalize_proxy  # with httpx, which a URL implies

        proxy = (self.https if url.scheme == "https" else self.http) or self.all
        if not proxy:
            return None
        host = url.host.lower()
        if any(_no_proxy_match(entry, host, url.port or (443 if url.scheme == "https" else 80))
               for entry in self.no_proxy):
            return None
        return normalize_proxy(proxy)
