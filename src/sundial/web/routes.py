"""The UI's routes: every declared page plus the static files, handed to `sundial.app`."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from sundial.services import Services
from sundial.web.framework import Page, PageSet
from sundial.web.pages import (
    account,
    activity,
    apikeys,
    dashboard,
    events,
    jobs,
    objects,
    secrets,
    servers,
    system,
    users,
)
from sundial.web.render import STATIC_DIR, Renderer

# Adding a page module? Append its PageSet here; the nav and routes follow from its declarations.
PAGE_SETS: list[PageSet] = [account.pages, dashboard.pages, events.pages, jobs.pages, objects.pages, users.pages,
                            apikeys.pages, activity.pages, system.pages, servers.pages, secrets.pages]


def all_pages() -> list[Page]:
    pages = [page for page_set in PAGE_SETS for page in page_set.pages]
    paths = [page.path for page in pages]
    duplicates = sorted({path for path in paths if paths.count(path) > 1})
    if duplicates:
        raise ValueError(f"pages declared twice: {', '.join(duplicates)}")
    return pages


def web_routes(conductor_services: Services) -> list[BaseRoute]:
    """Routes for the pages and a `/static` mount; static paths are fixed so they sort first."""
    pages = all_pages()
    renderer = Renderer(conductor_services, pages)
    routes: list[BaseRoute] = [Mount("/static", StaticFiles(directory=STATIC_DIR), name="static")]
    routes += [Route(page.path, renderer.endpoint(page), methods=["GET"], name=f"page_{page.name}")
               for page in pages]
    return routes
