"""`/server-status`: the web server's own figures, for operators' monitoring on the local network.

It answers only to a peer on a loopback or private address (core-api.md §1: the web server's IP
ACL), judged on the TCP peer itself, never on forwarded headers a client could write.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sundial import __version__
from sundial.services import Services


def local_peer(host: str | None) -> bool:
    """Loopback, private (RFC 1918 / ULA) and link-local peers pass; anything else, or no peer, does not."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_private or address.is_link_local


def server_status_endpoint(services: Services) -> Any:
    async def endpoint(request: Request) -> Response:
        if not local_peer(request.client.host if request.client else None):
            return JSONResponse({"code": "access", "description": "Forbidden: server status is for local "
                                                                  "network addresses only."}, status_code=403)
        return JSONResponse(status(services))

    return endpoint


def status(services: Services) -> dict[str, Any]:
    now = time.time()
    cpu = os.times()
    return {
        "code": 0,
        "server": {"name": "Sundial", "version": __version__, "hostname": socket.gethostname(),
                   "pid": os.getpid(), "started": int(services.started),
                   "uptime_sec": int(now - services.started), "primary": services.is_primary()},
        "stats": {"cpu_user_sec": round(cpu.user, 3), "cpu_system_sec": round(cpu.system, 3),
                  "mem_rss_bytes": _rss_bytes(), "active_jobs": len(services.jobs.active),
                  "servers_online": len(services.fleet.online_servers()) if services.fleet else 0},
    }


def _rss_bytes() -> int:
    """Resident set size from /proc (Linux); 0 where it cannot be read."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
