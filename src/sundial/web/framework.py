"""Page declarations: one declaration per page drives its route, its privilege check and its nav entry.

A page module holds a `PageSet` and declares loaders with `@pages.page(...)`; `routes.py`
collects the sets. A loader reads what the template needs straight from the services and
returns a dict (or a Response, e.g. a redirect); it never writes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from sundial.services import Services
from sundial.web.viewer import Viewer

# Nav sections in display order; a section shows only when it has a page the viewer may open.
NAV_SECTIONS = ("Overview", "Scheduling", "Fleet", "Configuration", "Administration")


class PageError(Exception):
    """A loader's refusal, shown as an error page with this HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def not_found(message: str) -> PageError:
    return PageError(404, message)


@dataclass
class PageContext:
    """What a loader sees: the services, the request and the viewer (None on public pages)."""

    services: Services
    request: Request
    viewer: Viewer | None

    @property
    def user(self) -> Viewer:
        """The viewer of a non-public page (the framework never calls such a loader without one)."""
        if self.viewer is None:
            raise PageError(401, "Log in to see this page.")
        return self.viewer

    @property
    def query(self) -> QueryParams:
        return self.request.query_params

    def path_param(self, name: str) -> str:
        return str(self.request.path_params.get(name, ""))

    def can(self, privilege: str) -> bool:
        return self.viewer is not None and self.viewer.can(privilege)

    def int_query(self, name: str, default: int, low: int = 0, high: int = 1_000_000) -> int:
        """A bounded integer query parameter; junk falls back to the default instead of failing."""
        try:
            value = int(self.query.get(name, default))
        except ValueError:
            return default
        return min(max(value, low), high)


Loader = Callable[[PageContext], Awaitable["dict[str, Any] | Response"]]


@dataclass(frozen=True)
class Page:
    path: str
    title: str
    template: str
    load: Loader
    privilege: str | None = None   # needed to open the page (None: any logged-in user)
    nav: str | None = None         # nav section, one of NAV_SECTIONS (None: not in the nav)
    order: int = 100               # position inside the section
    public: bool = False           # reachable without a session (the login page)

    @property
    def name(self) -> str:
        return self.load.__name__

    def allows(self, viewer: Viewer | None) -> bool:
        if self.public:
            return True
        if viewer is None:
            return False
        return self.privilege is None or viewer.can(self.privilege)


@dataclass
class PageSet:
    """A module's pages, declared at import and collected by `routes.py`."""

    pages: list[Page] = field(default_factory=list)

    def page(self, path: str, *, title: str, template: str, privilege: str | None = None,
             nav: str | None = None, order: int = 100, public: bool = False) -> Callable[[Loader], Loader]:
        if nav is not None and nav not in NAV_SECTIONS:
            raise ValueError(f"unknown nav section {nav!r} for page {path}")

        def register(load: Loader) -> Loader:
            self.pages.append(Page(path=path, title=title, template=template, load=load,
                                   privilege=privilege, nav=nav, order=order, public=public))
            return load

        return register


@dataclass(frozen=True)
class NavItem:
    title: str
    path: str
    current: bool


@dataclass(frozen=True)
class NavSection:
    title: str
    items: list[NavItem]


def build_nav(pages: list[Page], viewer: Viewer | None, current_path: str) -> list[NavSection]:
    """The sections and links this viewer may open; the longest matching path is current."""
    visible = [p for p in pages if p.nav and p.allows(viewer)]
    matches = [p.path for p in visible if current_path == p.path
               or (p.path != "/" and current_path.startswith(p.path + "/"))]
    current = max(matches, key=len, default="")
    sections = []
    for name in NAV_SECTIONS:
        items = sorted((p for p in visible if p.nav == name), key=lambda p: (p.order, p.title))
        if items:
            sections.append(NavSection(name, [NavItem(p.title, p.path, p.path == current) for p in items]))
    return sections
