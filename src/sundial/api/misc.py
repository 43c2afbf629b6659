"""Bootstrap verbs that need no credentials: ping, echo, error, config."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from starlette.responses import Response

from sundial import __version__
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


# Config keys the UI needs before login, besides the whole `client` section (never secrets).
_CLIENT_KEYS = ("base_app_url", "email_from", "tz", "default_user_privileges", "default_user_prefs",
                "job_universal_limits", "job_universal_actions", "log_columns", "quick_monitors", "intl", "ui")


@router.verb("config", auth=PUBLIC, primary_only=False)
async def config(call: Call, p: Params) -> Response:
    """The UI's pre-login bootstrap: `app.receiveConfig({...});`, or plain JSON with `format=json`."""
    conf = call.services.config
    body: dict[str, Any] = {"code": 0, "version": __version__, "epoch": round(time.time(), 3),
                            "port": conf.get("WebServer.port")}
    if call.services.is_primary():
        client = dict(conf.get("client") or {})
        client.update({key: conf.get(key) for key in _CLIENT_KEYS if conf.get(key) is not None})
        client.update(debug=0, free_accounts=bool(conf.get("User.free_accounts")),
                      https_port=conf.get("WebServer.https_port"),
                      hostname_display_strip=conf.get("hostname_display_strip") or "(?!)",
                      ip_display_strip=conf.get("ip_display_strip") or "(?!)")
        body.update(config=client, masters=_masters(call))
    else:
        body.update(code="master", host="", title="Non-Primary Conductor Server",
                    description="This API call can only be invoked on the primary conductor server.")
    headers = {"Cache-Control": "no-cache, no-store, must-revalidate, proxy-revalidate",
               "Expires": "Thu, 01 Jan 1970 00:00:00 GMT"}
    if call.params.get("format") == "json":
        return Response(orjson.dumps(body) + b"\n", media_type="application/json", headers=headers)
    return Response(b"app.receiveConfig(" + orjson.dumps(body) + b");", media_type="text/javascript",
                    headers=headers)


def _masters(call: Call) -> dict[str, Any]:
    """The conductors by host, as `get_servers` lists them."""
    fleet = call.services.fleet
    if fleet is None:
        return {}
    primary = call.services.is_primary()
    return {host: {"id": host, "online": True, "master": host == fleet.host_id() and primary}
            for host in fleet.masters()}


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
