"""Turning a page declaration into an HTTP response: session check, loader, template, headers.

Templates are compiled once per process (no auto-reload) and autoescape everything; the
security headers forbid inline scripts and framing, so even an escaping slip cannot run code.
"""

from __future__ import annotations

import hashlib
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from sundial import __version__
from sundial.ids import generate_id
from sundial.services import Services
from sundial.web import jobview
from sundial.web.framework import Page, PageContext, PageError, build_nav
from sundial.web.viewer import Viewer, resolve_viewer

WEB_DIR = Path(__file__).resolve().parent
TEMPLATE_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"
THEMES = ("light", "dark")

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def static_version(root: Path = STATIC_DIR) -> str:
    """A short fingerprint of the static files, appended to their URLs so upgrades bust caches."""
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(root.rglob("*")):
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:10]


def format_epoch(value: Any, with_seconds: bool = False) -> str:
    """UTC text for the page; the browser rewrites it in local time (see `time` macro)."""
    if not isinstance(value, int | float) or value <= 0:
        return "—"
    stamp = datetime.fromtimestamp(value, UTC)
    return stamp.strftime("%Y-%m-%d %H:%M:%S UTC" if with_seconds else "%Y-%m-%d %H:%M UTC")


def iso_epoch(value: Any) -> str:
    if not isinstance(value, int | float) or value <= 0:
        return ""
    return datetime.fromtimestamp(value, UTC).isoformat(timespec="seconds")


def format_duration(seconds: Any) -> str:
    """`3d 4h`, `5h 12m`, `42s`: the two largest units are enough on a status page."""
    total = int(seconds) if isinstance(seconds, int | float) else 0
    parts = [(total // 86400, "d"), (total % 86400 // 3600, "h"), (total % 3600 // 60, "m"), (total % 60, "s")]
    shown = [f"{n}{unit}" for n, unit in parts if n][:2]
    return " ".join(shown) or "0s"


def pretty_json(value: Any, limit: int = 4000) -> str:
    text = orjson.dumps(value, default=str, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
    return text if len(text) <= limit else text[:limit] + "\n…"


def json_edit(value: Any) -> str:
    """JSON for an editable text box: indented, key order kept, never truncated."""
    if value is None:
        return ""
    return orjson.dumps(value, default=str, option=orjson.OPT_INDENT_2).decode()


def make_environment(version: str) -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATE_DIR), autoescape=True, auto_reload=False,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(datetime=format_epoch, isodate=iso_epoch, duration=format_duration,
                       pretty_json=pretty_json, json_edit=json_edit, job_status=jobview.status_of,
                       bytes=jobview.format_bytes, resources=jobview.resource_summary,
                       progress_value=jobview.progress_value)
    env.globals["static"] = lambda path: f"/static/{path}?v={version}"
    env.globals["version"] = __version__
    return env


class Renderer:
    """Serves declared pages: one instance per conductor, holding the compiled templates."""

    def __init__(self, services: Services, pages: list[Page]) -> None:
        self.services = services
        self.pages = pages
        self.env = make_environment(static_version())
        self.error_log = services.logger("Error")
        threading.Thread(target=self.warm, name="web-templates", daemon=True).start()

    def warm(self) -> None:
        """Compile every template off the request path, so no visitor pays the first-use cost."""
        for path in sorted(TEMPLATE_DIR.glob("*.html")):
            self.env.get_template(path.name)

    def endpoint(self, page: Page) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            return await self.serve(page, request)

        serve.__name__ = page.name
        return serve

    async def serve(self, page: Page, request: Request) -> Response:
        started = time.perf_counter()
        viewer = resolve_viewer(self.services, request)
        if viewer is None and not page.public:
            return login_redirect(request)
        if not page.allows(viewer):
            return self.error_page(request, viewer, 403, "Your account does not have the privileges for this page.")
        try:
            data = await page.load(PageContext(self.services, request, viewer))
            if isinstance(data, Response):
                return data
            response = self.html(request, viewer, page.template, {"title": page.title, **data})
        except PageError as exc:
            return self.error_page(request, viewer, exc.status, exc.message)
        except Exception:
            return self.crash_page(request, viewer, page)
        response.headers["Server-Timing"] = f"page;dur={(time.perf_counter() - started) * 1000:.1f}"
        return response

    def html(self, request: Request, viewer: Viewer | None, template: str, context: dict[str, Any],
             status: int = 200) -> HTMLResponse:
        body = self.env.get_template(template).render(**self.base_context(request, viewer), **context)
        return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)

    def base_context(self, request: Request, viewer: Viewer | None) -> dict[str, Any]:
        theme = request.cookies.get("sundial_theme", "")
        return {
            "viewer": viewer,
            "user": viewer.user if viewer else None,
            "can": viewer.can if viewer else (lambda _privilege: False),
            "csrf_token": viewer.csrf_token if viewer else "",
            "nav": build_nav(self.pages, viewer, request.url.path),
            "app_name": str((self.services.config.get("client") or {}).get("name") or "Sundial"),
            "theme": theme if theme in THEMES else "",
            "current_path": request.url.path,
            "force_password_change": bool(viewer and viewer.user.get("force_password_change")),
        }

    def error_page(self, request: Request, viewer: Viewer | None, status: int, message: str) -> HTMLResponse:
        titles = {403: "Not allowed", 404: "Not found", 500: "Something went wrong"}
        return self.html(request, viewer, "error.html",
                         {"title": titles.get(status, "Error"), "message": message, "status": status},
                         status=status)

    def crash_page(self, request: Request, viewer: Viewer | None, page: Page) -> HTMLResponse:
        ref = generate_id("x")
        self.error_log.error("web", f"Unhandled error on page {page.path} (ref {ref})",
                             {"trace": traceback.format_exc(limit=20)})
        return self.error_page(request, viewer, 500, f"The page failed to load; details are in Error.log (ref {ref}).")


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)
