"""The operator's network policy for every outbound HTTP request: air-gap lists and forward proxies.

Two kinds of process make outbound requests: the conductor (web hooks, and later release lists)
and the HTTP Request plugin a satellite runs as a job. Both must obey the same rules
(config.md §7), so both build their client on the transport here; the package imports nothing of
the conductor, which keeps it usable by the satellite (it travels in the agent wheel).

* :mod:`.settings`: the air-gap lists and proxy variables as data (no HTTP library needed).
* :mod:`.rules`: air-gap lists, checked on the address a connection really uses (DNS rebinding
  and redirect safe).
* :mod:`.proxies`: `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` / `NO_PROXY`, proxy URL schemes.
* :mod:`.socks4`: SOCKS4/4a tunnels (httpcore does SOCKS5 itself).
* :mod:`.pac`: PAC files, fetched directly and evaluated per request.
* :mod:`.transport`: the httpx transport tying them together.

TLS verification is on unless a caller turns it off for one client or one request. The names
below that need httpx load on first use, so reading the settings costs no HTTP stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sundial.netpolicy.settings import AirgapRules, ProxySettings

if TYPE_CHECKING:
    from sundial.netpolicy.proxies import ProxyConfigError, normalize_proxy
    from sundial.netpolicy.rules import Refused, resolve
    from sundial.netpolicy.transport import VERIFY_EXTENSION, AirgapTransport

_LAZY = {"ProxyConfigError": "proxies", "normalize_proxy": "proxies", "Refused": "rules", "resolve": "rules",
         "VERIFY_EXTENSION": "transport", "AirgapTransport": "transport"}


def __getattr__(name: str) -> Any:
    """The httpx-backed names, imported on first use (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


__all__ = ["VERIFY_EXTENSION", "AirgapRules", "AirgapTransport", "ProxyConfigError", "ProxySettings", "Refused",
           "normalize_proxy", "resolve"]
