"""Magic links: run an event from a URL that carries a secret token, with no account.

`GET|POST /api/app/magic/v1/<TOKEN>[/wait]` starts a job (source `magic`), `form/v1/<TOKEN>`
is the landing page a person fills in, `form_config/v1/<TOKEN>` the configuration that page
reads. The event's magic trigger stores only `sha256_hex(key + event_id)` (turned from `key`
when the event is saved), so the token in the URL is the key itself and cannot be recovered
from the database. Every failure to match says only "Authentication failed." on purpose.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import re
import time
from typing import Any

import orjson
from starlette.responses import HTMLResponse, Response

from sundial import __version__
from sundial.api.call import Call
from sundial.api.errors import ApiError
from sundial.api.jobs import MAX_WAIT_SECONDS
from sundial.api.params import Params
from sundial.api.registry import TOKEN, VerbRouter
from sundial.api.uploads import check_file_limit, store_uploads
from sundial.events.runparams import job_params
from sundial.jobs.build import LaunchError
from sundial.plugins.params import ParamError
from sundial.scheduler.triggers import js_truthy

router = VerbRouter()
_TOKEN_PATH = re.compile(r"^(?:v\d+/)?([\w\-]+)")
STARTED = "Your job has started in the background."


def stream_token(job_id: str, secret_key: str) -> str:
    """The token `stream_job` accepts for one job (handed out by a magic launch)."""
    return hashlib.sha256(f"stream{job_id}{secret_key}".encode()).hexdigest()


def _path_token(call: Call) -> str:
    match = _TOKEN_PATH.match(call.path_rest)
    if match is None:
        raise ApiError("api", "Malformed URL.")
    return match.group(1)


def find_magic_event(call: Call) -> tuple[dict[str, Any], dict[str, Any], str]:
    """The event whose enabled magic trigger holds `sha256_hex(token + event_id)`, its trigger, the token."""
    token = _path_token(call)
    for event in call.services.lists["events"].all():
        expected = hashlib.sha256(f"{token}{event.get('id')}".encode()).hexdigest()
        trigger = next((t for t in event.get("triggers") or [] if isinstance(t, dict) and t.get("type") == "magic"
                        and t.get("enabled") and isinstance(t.get("token"), str)
                        and hmac.compare_digest(t["token"], expected)), None)
        if trigger is not None:
            if not event.get("enabled"):
                raise ApiError("event", f"Event is disabled: {event.get('title', '')}")
            return event, trigger, token
    raise ApiError("api", "Authentication failed.")


def _raw_params(call: Call) -> tuple[dict[str, Any], Any]:
    """The request's params (query and body, a `json` string merged) minus `input`, and `input`."""
    params = dict(call.params)
    text = params.pop("json", None)
    if isinstance(text, str) and text.strip():
        try:
            extra = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ApiError("api", f"Failed to parse JSON: {str(exc).split(':', 1)[0]}") from None
        if not isinstance(extra, dict):
            raise ApiError("api", "Failed to parse JSON: not an object")
        params.update(extra)
    data = params.pop("input", None)
    if data is not None and not isinstance(data, dict):
        raise ApiError("api", "Malformed event parameter: input (must be object)")
    return params, data


@router.verb("magic", Params, auth=TOKEN)
async def magic(call: Call, p: Params) -> dict[str, Any]:
    """Run the event of a magic link: request params become job params, posted files its input files."""
    services = call.services
    event, trigger, _ = find_magic_event(call)
    params, data = _raw_params(call)
    plugin = None if event.get("type") == "workflow" else services.lists["plugins"].get(str(event.get("plugin") or ""))
    try:
        overrides: dict[str, Any] = {"params": job_params(params, event, plugin), "input": dict(data or {})}
    except ParamError as exc:
        raise ApiError("api", str(exc)) from None
    workflow = event.get("workflow")
    if isinstance(workflow, dict) and not workflow.get("start") and trigger.get("id"):
        overrides["workflow"] = {**workflow, "start": trigger["id"]}
    if call.files:
        check_file_limit(event, list(call.files.values()))
        files = await store_uploads(call, "files/magic", {"magic": True})
        overrides["input"]["files"] = [*(overrides["input"].get("files") or []), *files]
    try:
        job = await services.launcher.launch(event, overrides, source="magic")
    except LaunchError as exc:
        raise ApiError("event", f"Failed to launch job: {exc.description}") from None
    if call.path_rest.rstrip("/").endswith("/wait"):
        record = await services.jobs.wait(job["id"], MAX_WAIT_SECONDS)
        return {"code": 0, "job": record or services.jobs.get_active(job["id"])}
    return {"code": 0, "description": STARTED, "id": job["id"],
            "stream": stream_token(job["id"], str(services.config.get("secret_key")))}


def _page(event: dict[str, Any], trigger: dict[str, Any], token: str) -> dict[str, Any]:
    return {"ID": "Magic", "title": event.get("title", ""), "icon": event.get("icon") or "",
            "fields": event.get("fields") or [], "limits": event.get("limits") or [],
            "body": trigger.get("body") or "", "token": token}


@router.verb("form_config", Params, auth=TOKEN, primary_only=False)
async def form_config(call: Call, p: Params) -> Response:
    """What the magic landing page needs: the event's title, fields, file limits and body text.
    `app.receiveConfig({...})` like `config`, or JSON with `format=json`."""
    event, trigger, token = find_magic_event(call)
    config = call.services.config
    body = {"code": 0, "version": __version__, "epoch": round(time.time(), 3),
            "port": config.get("WebServer.port"),
            "config": {"Page": [_page(event, trigger, token)], "DefaultPage": "Magic",
                       "base_app_url": config.get("base_app_url"), "tz": config.get("tz") or "",
                       "https_port": config.get("WebServer.https_port")}}
    headers = {"Cache-Control": "no-cache, no-store, must-revalidate"}
    if call.params.get("format") == "json":
        return Response(orjson.dumps(body) + b"\n", media_type="application/json", headers=headers)
    text = b"app.receiveConfig(" + orjson.dumps(body) + b");"
    return Response(text, media_type="text/javascript", headers=headers)


@router.verb("form", Params, auth=TOKEN)
async def form(call: Call, p: Params) -> Response:
    """The standalone landing page of a magic link: a form that posts to `magic` and follows the job."""
    event, trigger, token = find_magic_event(call)
    return HTMLResponse(landing_page(event, trigger, token), headers={"X-Frame-Options": "SAMEORIGIN"})


_COMMENT = re.compile(r"<!--\s*(Button|Icon|Response):\s*(.*?)\s*-->", re.S)


def landing_page(event: dict[str, Any], trigger: dict[str, Any], token: str) -> str:
    """Plain HTML, no script from elsewhere: the body text (its `Button`/`Icon`/`Response`
    comments pick the button label, icon and thank-you text), one input per event field, a
    file picker when the event's file limit allows files."""
    body = str(trigger.get("body") or "")
    options = {name.lower(): value for name, value in _COMMENT.findall(body)}
    text = _COMMENT.sub("", body).strip()
    limit = next((lim for lim in event.get("limits") or [] if isinstance(lim, dict) and lim.get("type") == "file"
                  and lim.get("enabled")), None)
    allow_files = limit is None or bool(limit.get("amount"))
    inputs = "".join(_field_html(f) for f in event.get("fields") or [] if isinstance(f, dict) and "id" in f)
    if allow_files:
        accept = html.escape(str((limit or {}).get("accept") or ""), quote=True)
        inputs += f'<label>Files<input type="file" name="files" multiple accept="{accept}"></label>'
    title = html.escape(str(event.get("title") or "Run"))
    return _TEMPLATE.format(
        title=title, body=html.escape(text), inputs=inputs,
        button=html.escape(options.get("button") or "Submit"),
        response=orjson.dumps(options.get("response") or STARTED).decode().replace("<", "\\u003c"),
        action=f"/api/app/magic/v1/{html.escape(token, quote=True)}")


def _field_html(field: dict[str, Any]) -> str:
    name = html.escape(str(field["id"]), quote=True)
    label = html.escape(str(field.get("title") or field["id"]))
    value = "" if field.get("value") is None else html.escape(str(field.get("value")), quote=True)
    kind = field.get("type")
    if field.get("locked") or kind == "hidden":
        return ""
    if kind == "checkbox":
        checked = " checked" if js_truthy(field.get("value")) else ""
        return f'<label><input type="checkbox" name="{name}" value="1"{checked}> {label}</label>'
    if kind == "select":
        choices = [c.strip() for c in str(field.get("value") or "").split(",") if c.strip()]
        opts = "".join(f"<option>{html.escape(c)}</option>" for c in choices)
        return f'<label>{label}<select name="{name}">{opts}</select></label>'
    if kind in ("textarea", "code", "json"):
        return f'<label>{label}<textarea name="{name}" rows="5">{value}</textarea></label>'
    required = " required" if field.get("required") else ""
    return f'<label>{label}<input type="text" name="{name}" value="{value}"{required}></label>'


_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}}
label{{display:block;margin:1rem 0}}input[type=text],select,textarea{{display:block;width:100%;margin-top:.3rem}}
#status{{margin-top:1rem;white-space:pre-wrap}}</style></head>
<body><h1>{title}</h1><p style="white-space:pre-wrap">{body}</p>
<form id="magic" method="post" enctype="multipart/form-data" action="{action}">{inputs}
<button type="submit">{button}</button></form><div id="status" role="status"></div>
<script>
document.getElementById('magic').addEventListener('submit', async function (e) {{
  e.preventDefault();
  const status = document.getElementById('status');
  status.textContent = 'Submitting...';
  const reply = await fetch(this.action, {{method: 'POST', body: new FormData(this)}}).then(r => r.json());
  if (reply.code !== 0) {{ status.textContent = 'Error: ' + reply.description; return; }}
  this.hidden = true;
  status.textContent = {response};
  const feed = new EventSource('/api/app/stream_job/v1?id=' + reply.id + '&token=' + reply.stream);
  feed.addEventListener('update', m => {{
    const u = JSON.parse(m.data);
    if (!('code' in u)) return;
    status.textContent += '\\n' + (u.code ? 'Job failed: ' + (u.description || u.code) : 'Job completed.');
  }});
  feed.addEventListener('end', () => feed.close());
}});
</script></body></html>
"""
