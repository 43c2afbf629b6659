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


def test_select_options_read_like_xyops() -> None:
    from sundial.web.param_controls import select_options

    assert select_options("GET, HEAD, POST") == [("GET", "GET"), ("HEAD", "HEAD"), ("POST", "POST")]
    assert select_options(",Fast [fast], Slow [slow]") == [("", "—"), ("fast", "Fast"), ("slow", "Slow")]


def test_param_controls_by_type_and_lock() -> None:
    from sundial.web.param_controls import control_for

    services: Any = None  # only `system` params look at the services
    locked = {"id": "script", "title": "Script", "type": "code", "value": "echo", "locked": True}
    assert control_for(locked, {}, is_admin=False, services=services).readonly  # type: ignore[union-attr]
    assert not control_for(locked, {}, is_admin=True, services=services).readonly  # type: ignore[union-attr]
    number = control_for({"id": "n", "title": "N", "type": "text", "variant": "number", "value": "5"}, {"n": 7},
                         is_admin=True, services=services)
    assert number is not None and (number.input_type, number.read, number.value) == ("number", "number", 7)
    toolset = control_for({"id": "t", "title": "T", "type": "toolset", "value": {"a": 1}}, {}, is_admin=True,
                          services=services)
    assert toolset is not None and toolset.kind == "json"  # unknown kinds are edited as JSON, never dropped


def test_job_words_and_history_queries() -> None:
    from sundial.web.jobview import progress_value, status_of
    from sundial.web.pages.jobs import compose_query

    assert status_of({"final": True, "code": 0}) == ("Success", "ok")
    assert status_of({"final": True, "code": "abort"}) == ("Aborted", "danger")
    assert status_of({"state": "queued"}) == ("Queued", "accent")
    assert status_of({"state": "ready", "suspended": True}) == ("Waiting for resume", "warn")
    assert status_of({"state": "complete", "complete": True, "suspended": True}) == ("Waiting for resume", "warn")
    assert status_of({"final": True, "code": 0, "suspended": True}) == ("Success", "ok")  # stored: what it is
    assert progress_value({"progress": 0.5}) == 0.5 and progress_value({"progress": 1}) is None
    assert compose_query("", "") == ("*", "")
    assert compose_query("event:x", "error") == ("event:x tags:_error", "")
    assert compose_query("(code = 0)", "warning")[1]  # PxQL cannot be combined with a filter
