"""The web UI in a real browser: login, prompts, admin pages, escaping, theme, paging.

Writes happen through the UI exactly as a person would do them; the API is used only to
set up data and to check what the UI claims it did.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from browser_support import PER_PAGE, PageWatch, Session, needs_browser, screenshot

from harness import ConductorProcess

expect = pytest.importorskip("playwright.sync_api", reason="playwright is missing (pip install -e '.[test]')").expect
pytestmark = needs_browser


def uid(prefix: str = "t") -> str:
    return prefix + uuid.uuid4().hex[:8]


def make_user(admin_session: Session, username: str, *, admin: bool = False, **extra: Any) -> None:
    admin_session.call("admin_create", {"username": username, "password": "secret-" + username,
                                        "full_name": username.title(), "email": f"{username}@example.com",
                                        "privileges": {"admin": True} if admin else {}, **extra}, ns="user")


def test_unauthenticated_page_redirects_to_login(new_page: Any) -> None:
    page = new_page()
    page.goto("/users?x=1")
    expect(page).to_have_url(re.compile(r"/login\?next=/users%3Fx%3D1$"))
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    assert httpx.get(page.url.split("/login")[0] + "/apikeys", follow_redirects=False).status_code == 303


def test_admin_login_shows_the_change_password_prompt(new_page: Any) -> None:
    page = new_page()
    page.goto("/login?next=/tags")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password", exact=True).fill("wrong")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Username or password incorrect.")
    page.get_by_label("Password", exact=True).fill("admin")
    page.get_by_role("button", name="Log in").click()
    prompt = page.get_by_test_id("password-prompt")
    expect(prompt).to_be_visible()
    expect(prompt).to_contain_text("default password")
    screenshot(page, "login-password-prompt")
    with page.expect_navigation():
        prompt.get_by_role("link", name="Later").click()
    expect(page).to_have_url(re.compile(r"/tags$"))
    # Until the password changes, every page keeps asking.
    expect(page.get_by_test_id("password-prompt")).to_contain_text("default password")


def test_changing_the_default_password_from_the_prompt(new_page: Any, admin_session: Session,
                                                       ui: ConductorProcess) -> None:
    name = uid("u")
    make_user(admin_session, name)
    # Creating sets a password, which clears the flag; an update sets it as the seed does for admin.
    admin_session.call("admin_update", {"username": name, "force_password_change": True}, ns="user")
    page = new_page()
    page.goto("/login")
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password", exact=True).fill("secret-" + name)
    page.get_by_role("button", name="Log in").click()
    page.get_by_label("New password", exact=True).fill("a-better-password")
    page.get_by_label("Repeat the new password").fill("a-different-one")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_label("Repeat the new password")).to_have_js_property("validity.valid", False)
    page.get_by_label("Repeat the new password").fill("a-better-password")
    with page.expect_navigation():
        page.get_by_role("button", name="Change password").click()
    expect(page).to_have_url(ui.url + "/")
    expect(page.get_by_role("status")).to_contain_text("Password changed.")
    expect(page.get_by_test_id("password-prompt")).to_have_count(0)
    Session(ui.url, name, "a-better-password")


def test_create_a_tag_and_a_category(admin_page: Any, admin_session: Session) -> None:
    page, tag, category = admin_page, uid("tag"), uid("cat")
    page.goto("/tags")
    page.locator("summary", has_text="New tag").click()
    form = page.get_by_test_id("create-form")
    form.get_by_label("ID").fill(tag)
    form.get_by_label("Title").fill("Nightly " + tag)
    form.get_by_label("Notes").fill("Made from the UI")
    with page.expect_navigation():
        form.get_by_role("button", name="Create tag").click()
    expect(page.get_by_role("link", name="Nightly " + tag)).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Tag created.")

    page.goto("/categories")
    page.locator("summary", has_text="New category").click()
    form = page.get_by_test_id("create-form")
    form.get_by_label("Title").fill("Backups " + category)
    form.get_by_label("Colour").select_option("teal")
    with page.expect_navigation():
        form.get_by_role("button", name="Create category").click()
    row = page.get_by_role("row").filter(has_text="Backups " + category)
    expect(row).to_contain_text("teal")
    created = [c for c in admin_session.call("get_categories", {})["rows"] if c["title"] == "Backups " + category]
    assert len(created) == 1 and created[0]["color"] == "teal" and created[0]["enabled"] is True

    # Edit and delete through the object page.
    page.get_by_role("link", name="Backups " + category).click()
    page.get_by_label("Title").fill("Renamed " + category)
    page.get_by_label("Enabled").uncheck()
    with page.expect_navigation():
        page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="Renamed " + category)).to_be_visible()
    page.get_by_role("button", name="Delete").click()
    with page.expect_navigation():
        page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page).to_have_url(re.compile(r"/categories$"))
    expect(page.get_by_role("link", name="Renamed " + category)).to_have_count(0)


def test_api_key_is_shown_once(admin_page: Any, ui: ConductorProcess) -> None:
    page, title = admin_page, uid("Deploy key ")
    page.goto("/apikeys")
    page.locator("summary", has_text="New API key").click()
    form = page.get_by_test_id("create-form")
    form.get_by_label("Title").fill(title)
    form.get_by_label("Run Jobs").check()
    form.get_by_role("button", name="Create API key").click()
    shown = page.get_by_test_id("plain-key")
    expect(shown).to_be_visible()
    plain = shown.input_value()
    assert len(plain) >= 40
    screenshot(page, "apikeys-created")
    reply = httpx.post(ui.url + "/api/app/get_categories/v1", headers={"X-API-Key": plain}, json={}).json()
    assert reply["code"] == 0
    with page.expect_navigation():
        page.get_by_role("button", name="Done").click()
    row = page.get_by_role("row").filter(has_text=title)
    expect(row).to_contain_text(plain[:4] + "********" + plain[-4:])
    expect(row).to_contain_text("run_jobs")
    assert plain not in page.content()
    page.get_by_role("link", name=title).click()
    assert plain not in page.content()


def test_activity_search_and_paging(admin_page: Any, admin_session: Session) -> None:
    page, marker = admin_page, uid("act")
    for n in range(PER_PAGE + 2):
        admin_session.call("create_tag", {"id": f"{marker}_{n}", "title": f"Activity {marker} {n}"})
    page.goto("/activity")
    page.get_by_role("searchbox", name="Search the activity log").fill(f"action:tag_create {marker}_3")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("table.data tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(f"Activity {marker} 3")
    expect(rows.first).to_contain_text("tag_create")

    page.get_by_role("searchbox").fill("action:tag_create")
    page.keyboard.press("Enter")
    expect(rows).to_have_count(PER_PAGE)
    expect(rows.first).to_contain_text(f"Activity {marker} {PER_PAGE + 1}")  # newest first
    page.get_by_role("link", name="Older").click()
    expect(page).to_have_url(re.compile(r"offset=" + str(PER_PAGE)))
    expect(rows.first).to_contain_text(f"Activity {marker} 1")
    expect(page.get_by_role("link", name="Newer")).to_be_visible()

    page.get_by_role("searchbox").fill("(action =")
    page.keyboard.press("Enter")
    expect(page.locator(".notice.danger")).to_be_visible()


def test_dark_mode_toggle_and_system_preference(new_page: Any, admin_session: Session) -> None:
    page = new_page(admin_session)
    page.goto("/")
    background = "getComputedStyle(document.body).backgroundColor"
    light = page.evaluate(background)
    toggle = page.locator("header [data-theme-toggle]")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    toggle.click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    expect(toggle).to_have_attribute("aria-pressed", "true")
    dark = page.evaluate(background)
    assert dark != light
    page.reload()  # the choice is a cookie, so the server renders it and nothing flashes
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    assert page.evaluate(background) == dark
    screenshot(page, "dashboard-dark")
    toggle.click()
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    assert page.evaluate(background) == light

    system_dark = new_page(admin_session, color_scheme="dark")
    system_dark.goto("/")
    assert system_dark.evaluate(background) == dark


def test_xss_payloads_are_shown_as_text(admin_page: Any, admin_session: Session) -> None:
    page, tag = admin_page, uid("xss")
    title = "Q\" autofocus onfocus=\"window.__xss=1\" x=\"&lt;b&gt;'"
    notes = "\"'><svg onload=window.__xss=2 "
    admin_session.call("create_tag", {"id": tag, "title": title, "notes": notes})
    page.goto("/tags")
    link = page.get_by_role("link", name=title)
    expect(link).to_have_text(title)
    expect(page.get_by_role("row").filter(has_text=title)).to_contain_text(notes.strip())
    link.click()
    expect(page.get_by_label("Title")).to_have_value(title)
    expect(page.get_by_label("Notes")).to_have_value(notes)
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("dialog")).to_contain_text(title)
    page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    page.goto(f"/activity?query={tag}")
    expect(page.locator("table.data tbody tr").first).to_contain_text(title)
    assert page.evaluate("window.__xss") is None
    assert page.locator("svg[onload]").count() == 0 and page.locator("[onfocus]").count() == 0


def test_users_admin_create_disable_reset_unlock(admin_page: Any, ui: ConductorProcess) -> None:
    page, name = admin_page, uid("ops")
    page.goto("/users")
    page.locator("summary", has_text="New user").click()
    form = page.get_by_test_id("create-form")
    form.get_by_role("textbox", name="Username").fill(name)
    form.get_by_role("textbox", name="Full name").fill("Ops Person")
    form.get_by_role("textbox", name="Email").fill(f"{name}@example.com")
    form.locator("input[name=password]").fill("first-password")
    with page.expect_navigation():
        form.get_by_role("button", name="Create user").click()
    page.get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", name=name)).to_contain_text("Active")

    page.get_by_role("button", name="Disable").click()
    with page.expect_navigation():
        page.get_by_role("dialog").get_by_role("button", name="Disable").click()
    expect(page.get_by_role("heading", name=name)).to_contain_text("Disabled")
    with page.expect_navigation():
        page.get_by_role("button", name="Enable").click()
    expect(page.get_by_role("heading", name=name)).to_contain_text("Active")

    for _ in range(6):  # lock the account out with wrong passwords
        httpx.post(ui.url + "/api/user/login", json={"username": name, "password": "nope"})
    page.reload()
    expect(page.get_by_role("heading", name=name)).to_contain_text("Locked")
    with page.expect_navigation():
        page.get_by_role("button", name="Unlock").click()
    expect(page.get_by_role("heading", name=name)).to_contain_text("Active")

    page.get_by_label("New password").fill("second-password")
    page.get_by_role("button", name="Reset password").click()
    with page.expect_navigation():
        page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("status")).to_contain_text("Password reset.")
    Session(ui.url, name, "second-password")


def test_nav_hides_what_a_user_may_not_open(new_page: Any, admin_session: Session, ui: ConductorProcess,
                                            watch: PageWatch) -> None:
    watch.allow("status of 403")
    name = uid("viewer")
    make_user(admin_session, name)
    page = new_page(Session(ui.url, name, "secret-" + name))
    page.goto("/")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Tags")).to_be_visible()
    for hidden in ("Users", "API keys", "Activity log", "System"):
        expect(nav.get_by_role("link", name=hidden)).to_have_count(0)
    page.goto("/tags")
    expect(page.locator("summary", has_text="New tag")).to_have_count(0)
    response = page.goto("/users")
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()


def test_scheduler_pause_and_resume(admin_page: Any, admin_session: Session) -> None:
    page = admin_page
    page.goto("/system")
    page.get_by_role("button", name="Pause scheduler").click()
    with page.expect_navigation():
        page.get_by_role("dialog").get_by_role("button", name="Pause scheduler").click()
    expect(page.get_by_role("button", name="Resume scheduler")).to_be_visible()
    assert admin_session.call("get_global_state", {})["state"]["scheduler"]["enabled"] is False
    with page.expect_navigation():
        page.get_by_role("button", name="Resume scheduler").click()
    expect(page.get_by_role("button", name="Pause scheduler")).to_be_visible()
    assert admin_session.call("get_global_state", {})["state"]["scheduler"]["enabled"] is True


MAIN_PAGES = ["/", "/categories", "/tags", "/groups", "/roles", "/roles/all", "/users", "/users/admin", "/apikeys",
              "/activity", "/system", "/account"]


def test_screenshots_of_main_pages(new_page: Any, admin_session: Session, ui: ConductorProcess) -> None:
    """Every main page renders without browser errors; the pictures go to artifacts/screenshots/."""
    make_user(admin_session, "operator", admin=True)
    operator = Session(ui.url, "operator", "secret-operator")
    page = new_page(operator, viewport={"width": 1280, "height": 800})
    for path in MAIN_PAGES:
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        expect(page.locator("h1")).to_be_visible()
        screenshot(page, "page" + (path.replace("/", "-") if path != "/" else "-dashboard"))
    login = new_page()
    login.goto("/login")
    screenshot(login, "page-login")
    phone = new_page(operator, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone.goto("/users")
    screenshot(phone, "phone-users")
    phone.get_by_role("button", name="Menu").click()
    expect(phone.get_by_role("navigation", name="Main")).to_be_in_viewport()
    screenshot(phone, "phone-nav-open")


@pytest.mark.parametrize("path", ["/", "/tags", "/activity"])
def test_pages_report_server_time(admin_session: Session, ui: ConductorProcess, path: str) -> None:
    """The page reports its own server time; logged, not asserted (timing is never asserted)."""
    resp = httpx.get(ui.url + path, cookies={"session_id": admin_session.session_id})
    assert resp.status_code == 200 and resp.headers["server-timing"].startswith("page;dur=")
    assert resp.headers["content-security-policy"].startswith("default-src 'self'")
