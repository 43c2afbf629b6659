"""Forward proxy settings (config.md §7.1): which proxy, if any, one request URL goes through.

The variables are `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY`, in either case. A value
is a proxy URL (http, https, socks4, socks4a, socks5, socks5h; `socks` means socks5, a bare
`host:port` means http) or a PAC file (`pac+http://…`, `pac+https://…`, `pac+file://…`, or an
http(s) URL whose path ends in `.pac`). `NO_PROXY` always wins, PAC files included.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from sundial.netpolicy.rules import plain

PROXY_SCHEMES = {"http": "http", "https": "https", "socks": "socks5", "socks5": "socks5", "socks5h": "socks5h",
                 "socks4": "socks4", "socks4a": "socks4a"}
PAC_SCHEMES = ("pac+http", "pac+https", "pac+file")


class ProxyConfigError(httpx.ProxyError):
    """A proxy setting Sundial cannot use: unknown scheme, PAC file missing or broken."""


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
        proxy = (self.https if url.scheme == "https" else self.http) or self.all
        if not proxy:
            return None
        host = url.host.lower()
        if any(_no_proxy_match(entry, host, url.port or (443 if url.scheme == "https" else 80))
               for entry in self.no_proxy):
            return None
        return normalize_proxy(proxy)


def normalize_proxy(proxy: str) -> str:
    """`host:3128` means http, `socks://` socks5, `http://wpad/x.pac` a PAC file; unknown schemes are refused."""
    if "://" not in proxy:
        proxy = "http://" + proxy
    scheme, rest = proxy.split("://", 1)
    scheme = scheme.lower()
    if scheme in PAC_SCHEMES:
        return f"{scheme}://{rest}"
    if scheme not in PROXY_SCHEMES:
        raise ProxyConfigError(f"Unsupported proxy scheme: {scheme} (use http, https, socks4, socks4a, socks5, "
                               "socks5h or a PAC file as pac+http://, pac+https:// or pac+file://)")
    if scheme in ("http", "https") and httpx.URL(proxy).path.lower().endswith(".pac"):
        return f"pac+{scheme}://{rest}"
    return f"{PROXY_SCHEMES[scheme]}://{rest}"


def is_pac(proxy: str) -> bool:
    return proxy.startswith("pac+")


def proxy_label(proxy: str) -> str:
    """A proxy or PAC URL fit for an error message: never its credentials, a PAC file's path kept."""
    url = httpx.URL(proxy.removeprefix("pac+"))
    where = f"{url.host}" + (f":{url.port}" if url.port else "")
    if is_pac(proxy):
        return f"pac+{url.scheme}://{where}{url.path}"
    return f"{url.scheme}://{where}"
