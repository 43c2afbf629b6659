"""The web UI's forgot/reset password flow in Chromium: login link, request form, e-mailed link."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hook_receivers import SmtpSink, wait_for

from harness import ConductorProcess

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing")


@pytest.fixture(scope="module")
def site() -> Iterator[tuple[ConductorProcess, SmtpSink]]:
    sink = SmtpSink()
    proc = ConductorProcess(settings={"mail_settings.host": "127.0.0.1", "mail_settings.port": sink.port,
                                      "email_from": "sundial@example.com"})
    proc.settings["base_app_url"] = proc.url
    proc.start()
    yield proc, sink
    proc.cleanup()
    sink.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


def test_forgot_and_reset_through_the_pages(site, browser):
    proc, sink = site
    resp = httpx.post(proc.url + "/api/user/login", json={"username": "admin", "password": "admin"})
    session = {"session_id": resp.cookies["session_id"]}
    created = httpx.post(proc.url + "/api/user/admin_create", cookies=session, json={
        "username": "walter", "password": "old-password", "email": "walter@example.com", "full_name": "Walter"})
    assert created.json()["code"] == 0
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(proc.url + "/login")
    page.click("#forgot-link")
    page.fill("#forgot-username", "walter")
    page.fill("#forgot-email", "walter@example.com")
    page.click("#forgot-form button[type=submit]")
    page.wait_for_selector("[data-testid=forgot-sent]", state="visible")
    text = wait_for(lambda: sink.messages and sink.messages[0][1].get_body(("plain",)).get_content(), 15, "e-mail")
    link = re.search(r"http://\S+#h=[0-9a-f]{64}", text)
    assert link, text

    page.goto(link.group(0))
    assert page.input_value("#reset-username") == "walter"
    assert "#h=" not in page.url  # the key leaves the address bar once it is in the form
    page.fill("#reset-password", "brand-new-password")
    page.fill("#reset-confirm", "brand-new-password")
    page.click("#reset-form button[type=submit]")
    page.wait_for_url(re.compile(r"/login"))
    page.fill("#login-username", "walter")
    page.fill("#login-password", "brand-new-password")
    page.click("#login-form button[type=submit]")
    page.wait_for_url(re.compile(r"/$|/dashboard"))

    page.goto(link.group(0))  # a spent key: the page shows the API's refusal
    page.fill("#reset-password", "another-password")
    page.fill("#reset-confirm", "another-password")
    page.click("#reset-form button[type=submit]")
    page.wait_for_selector("#reset-form .form-error:has-text('Password reset failed.')")
    assert errors == []
    page.close()
