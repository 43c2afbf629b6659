"""Bootstrap verbs that need no credentials: ping, echo, error."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import Response

from sundial.api.call import Call
from sundial.api.dispatch import render
from sundial.api.params import Params
from sundial.api.registry import PUBLIC, VerbRouter

router = VerbRouter()
MAX_ECHO_SLEEP_MS = 10_000


@router.verb("ping", auth=PUBLIC)
async def ping(call: Call, p: Params) -> dict[str, Any]:
    """Liveness check."""
    return {"code": 0}


@router.verb("error", auth=PUBLIC)
async def error(call: Call, p: Params) -> dict[str, Any]:
    """Always answers a test error (client error-handling checks)."""
    return {"code": "test", "description": "This is a test error message."}


@router.verb("echo", auth=PUBLIC)
async def echo(call: Call, p: Params) -> Response:
    """Reflect the request back (no `code`), with credentials removed."""
    request = call.request
    sleep_ms = _int(request.query_params.get("sleep"), 1)
    await asyncio.sleep(min(max(sleep_ms, 0), MAX_ECHO_SLEEP_MS) / 1000)
    data = {
        "method": request.method, "url": str(request.url), "uri": request.url.path
        + (f"?{request.url.query}" if request.url.query else ""),
        "ips": call.client.ips, "query": _query(request), "headers": call.client.headers,
        "cookies": {k: v for k, v in request.cookies.items() if k != "session_id"},
        "params": call.params, "files": call.files,
    }
    return render(data, request.url.path, pretty=request.query_params.get("pretty") == "1")


def _query(request: Any) -> dict[str, Any]:
    """The query string as xyOps parses it: a repeated key becomes an array of its values."""
    query: dict[str, Any] = {}
    for key, value in request.query_params.multi_items():
        old = query.get(key)
        query[key] = value if key not in query else [*old, value] if isinstance(old, list) else [old, value]
    return query


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default
