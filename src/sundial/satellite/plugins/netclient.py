"""The built-in plugins' HTTP client: the conductor's air-gap lists, the job's proxy variables.

The conductor pushes its ``airgap`` block to every agent and the agent hands it to jobs; the HTTP
plugin must honour it (config.md §7.2) with the same transport the conductor uses
(:mod:`sundial.netpolicy`). Proxies come from the job's own environment (``HTTP(S)_PROXY``,
``ALL_PROXY``, ``NO_PROXY``; socks4/5 and PAC files too), as for any other job process: the plugin
runs as the job's child. Plugins that talk to the conductor itself use no proxy variables.
"""

from __future__ import annotations

from typing import Any

import httpx

from sundial.netpolicy import AirgapRules, AirgapTransport, ProxySettings, Refused

__all__ = ["Refused", "make_client"]


def make_client(airgap: Any, *, verify: bool = True, timeout: httpx.Timeout | float = 30.0,
                follow: bool = False) -> httpx.AsyncClient:
    """An async client bound to the job's air-gap rules; redirects (max 32) when ``follow``."""
    rules = AirgapRules.from_config(airgap, strict=False)
    transport = AirgapTransport(rules, ProxySettings.from_env(), verify=verify)
    return httpx.AsyncClient(transport=transport, trust_env=False, timeout=timeout, follow_redirects=follow,
                             max_redirects=32)
