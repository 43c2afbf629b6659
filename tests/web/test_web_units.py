"""The page framework without a browser: declarations, nav filtering, redirects, templates, escaping."""

from __future__ import annotations

from typing import Any

import pytest
from markupsafe import Markup

from sundial.auth.privileges import Principal
from sundial.web.framework import Page, PageSet, build_nav
from sundial.web.render import TEMPLATE_DIR, format_duration, make_environment
from sundial.web.routes import all_pages
from sundial.web.viewer import Viewer, safe_next


def viewer(privileges: dict[str, bool]) -> Viewer:
    principal = Principal(kind="user", record={"username": "u"}, privileges=privileges)
    return Viewer(user={"username": "u"}, principal=principal, session={"csrf_token": "t"})


@pytest.mark.parametrize("target,expected", [
    ("/users?x=1", "/users?x=1"), ("", "/"), (None, "/"), ("https://evil.example/", "/"),
    ("//evil.example", "/"), ("/\\evil.example", "/"), ("/a\\b", "/"), ("/ok\r\nSet-Cookie:x", "/"),
])
def test_safe_next_stays_on_this_site(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_every_page_has_a_template_and_a_unique_path() -> None:
    pages = all_pages()
    assert len({p.path for p in pages}) == len(pages)
    for page in pages:
        assert (TEMPLATE_DIR / page.template).exists(), page.template


def test_every_template_compiles_with_autoescape() -> None:
    env = make_environment("test")
    assert env.autoescape is True
    for path in TEMPLATE_DIR.glob("*.html"):
        env.get_template(path.name)


def test_nav_shows_only_what_the_viewer_may_open() -> None:
    titles = lambda v: [i.title for s in build_nav(all_pages(), v, "/tags/x") for i in s.items]  # noqa: E731
    admin, plain = titles(viewer({"admin": True})), titles(viewer({}))
    assert {"Users", "API keys", "Activity log", "System", "Tags"} <= set(admin)
    assert "Tags" in plain and not {"Users", "API keys", "Activity log", "System"} & set(plain)
    current = [i for s in build_nav(all_pages(), viewer({}), "/tags/x") for i in s.items if i.current]
    assert [i.title for i in current] == ["Tags"]
    assert titles(None) == []


def test_page_declarations_reject_unknown_nav_sections() -> None:
    with pytest.raises(ValueError):
        PageSet().page("/x", title="X", template="x.html", nav="Nowhere")


def test_public_and_privileged_pages() -> None:
    async def load(_ctx: Any) -> dict[str, Any]:
        return {}

    page = Page("/p", "P", "p.html", load, privilege="admin")
    assert not page.allows(None) and not page.allows(viewer({})) and page.allows(viewer({"admin": True}))
    assert Page("/login", "L", "l.html", load, public=True).allows(None)


def test_macros_escape_attribute_breakouts() -> None:
    env = make_environment("test")
    macros = env.get_template("macros.html").module
    payload = "x\" onclick=\"alert(1)\" y='<b>'"
    html = str(macros.action_button("Go", "delete_tag", {"id": payload}, confirm=payload))  # type: ignore[attr-defined]
    assert "onclick=\"alert" not in html and "<b>" not in html
    assert isinstance(macros.badge(payload), Markup)  # type: ignore[attr-defined]
    assert "<b>" not in str(macros.badge(payload))  # type: ignore[attr-defined]


def test_duration_text() -> None:
    assert format_duration(0) == "0s"
    assert format_duration(93784) == "1d 2h"
    assert format_duration(59) == "59s"
