"""Forward proxy settings (config.md §7.1): which proxy, if any, one request URL goes through.

The variables are `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY`, in either case. A value
is a proxy URL (http, https, socks4, socks4a, socks5, socks5h; `socks` means socks5, a bare
`host:port` means http) or a PAC file (`pac+http://…`, `pac+https://…`, `pac+file://…`, or an
http(s) URL whose path ends in `.pac`). `NO_PROXY` always wins, PAC files included.
"""

from __future__ import annotations

import httpx

from sundial.netpolicy.settings import ProxySettings

PROXY_SCHEMES = {"http": "http", "https": "https", "socks": "socks5", "socks5": "socks5", "socks5h": "socks5h",
                 "socks4": "socks4", "socks4a": "socks4a"}
PAC_SCHEMES = ("pac+http", "pac+https", "pac+file")
__all__ = ["PAC_SCHEMES", "PROXY_SCHEMES", "ProxyConfigError", "ProxySettings", "is_pac", "normalize_proxy",
           "proxy_label"]


class ProxyConfigError(httpx.ProxyError):
    """A proxy setting Sundial cannot use: unknown scheme, PAC file missing or broken."""


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
