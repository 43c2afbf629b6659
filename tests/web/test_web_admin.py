"""Secrets, web hooks, channels and the system page in a real browser.

Secret values are test values, but they are treated like real ones: they are compared inside
the browser or with `==`, never printed or put in an assertion message.
"""

from __future__ import annotations

import gzip
import re
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import pytest
from browser_support import Session, needs_browser, screenshot

from harness import ConductorProcess

expect = pytest.importorskip("playwright.sync_api", reason="playwright is missing (pip install -e '.[test]')").expect
pytestmark = needs_browser

# Titles may not hold < or > (the API refuses them), so the payload breaks out of attributes instead.
XSS_TITLE = "Q\" autofocus onfocus=\"window.__xss=1\" x='&lt;b&gt;"
ADMIN_PAGES = ["/servers", "/secrets", "/web_hooks", "/channels", "/system"]


def uid(prefix: str = "t") -> str:
    return prefix + uuid.uuid4().hex[:8]


def same_value(locator: Any, expected: str) -> bool:
    """Compare a box's value in the browser, so a mismatch never echoes the secret."""
    return bool(locator.evaluate("(node, expected) => node.value === expected", expected))


def no_xss(page: Any) -> None:
    assert page.evaluate("window.__xss") is None
    assert page.locator("[onfocus]").count() == 0


class Receiver:
    """A local HTTP endpoint for web hook tests: remembers requests, answers with `status`."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                self.send_response(receiver.status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}')

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.server.shutdown()


def test_secret_decrypt_confirm_value_and_activity_entry(admin_page: Any, admin_session: Session) -> None:
    page, value = admin_page, "s3cr3t-" + uuid.uuid4().hex
    page.goto("/secrets")
    page.locator("summary", has_text="New secret").click()
    form = page.get_by_test_id("create-form")
    form.get_by_label("Title").fill(XSS_TITLE)
    form.get_by_label("General").check()  # the stock category
    form.get_by_label("Variable 1", exact=True).fill("DB_PASSWORD")
    form.get_by_label("Value 1", exact=True).fill(value)
    form.get_by_role("button", name="Add variable").click()
    form.get_by_label("Variable 2", exact=True).fill("DB_USER")
    form.get_by_label("Value 2", exact=True).fill("svc")
    with page.expect_navigation():
        form.get_by_role("button", name="Create secret").click()
    row = page.get_by_role("row").filter(has_text="DB_PASSWORD")
    expect(row.get_by_role("link", name=XSS_TITLE)).to_have_text(XSS_TITLE)
    expect(row).to_contain_text("1 category")
    assert value not in page.content()
    screenshot(page, "secrets-list")
    no_xss(page)

    row.get_by_role("link", name=XSS_TITLE).click()
    expect(page.get_by_role("heading", name=XSS_TITLE)).to_be_visible()
    secret_id = page.url.rsplit("/", 1)[1]
    decrypt = page.get_by_role("button", name="Decrypt values…")
    decrypt.click()  # asked first; cancelling decrypts nothing
    expect(page.get_by_role("dialog")).to_contain_text("recorded in the activity log")
    page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    expect(page.locator("[data-secret-value]")).to_have_count(0)
    decrypt.click()
    page.get_by_role("dialog").get_by_role("button", name="Decrypt").click()
    shown = page.locator("[data-secret-value=DB_PASSWORD]")
    expect(shown).to_be_visible()
    assert same_value(shown, value)
    screenshot(page, "secret-decrypted")
    page.get_by_role("button", name="Hide values").click()
    expect(page.locator("[data-secret-value]")).to_have_count(0)
    assert page.evaluate("(v) => document.documentElement.outerHTML.includes(v)", value) is False

    with page.expect_navigation():
        page.get_by_test_id("access-link").click()
    entries = page.locator("table.data tbody tr")
    expect(entries).to_have_count(1)  # the cancelled attempt left no record
    expect(entries.first).to_contain_text("secret_access")
    expect(entries.first).to_contain_text(XSS_TITLE)
    assert secret_id in page.url.replace("%20", " ").replace("+", " ")
    no_xss(page)

    # Metadata and values are separate forms; replacing values replaces all of them.
    page.go_back()
    form = page.get_by_test_id("edit-form")
    form.get_by_label("Enabled").uncheck()
    form.get_by_label("Example Hook").check()
    with page.expect_navigation():
        form.get_by_role("button", name="Save").click()
    expect(page.locator("h1")).to_contain_text("Disabled")
    page.locator("#replace-values summary").click()
    values = page.get_by_test_id("values-form")
    expect(values.get_by_label("Variable 2", exact=True)).to_have_value("DB_USER")
    assert values.get_by_label("Value 1", exact=True).input_value() == ""  # values are never sent to the page
    values.get_by_role("button", name="Remove variable 2").click()
    values.get_by_label("Variable 1", exact=True).fill("API_TOKEN")
    values.get_by_label("Value 1", exact=True).fill(value + "-2")
    with page.expect_navigation():
        values.get_by_role("button", name="Replace values").click()
    stored = admin_session.call("get_secret", {"id": secret_id})["secret"]
    assert stored["names"] == ["API_TOKEN"] and stored["enabled"] is False
    assert stored["web_hooks"] == ["example_hook"] and stored["categories"] == ["general"]
    assert admin_session.call("decrypt_secret", {"id": secret_id})["fields"] == [
        {"name": "API_TOKEN", "value": value + "-2"}]
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/secrets")
    screenshot(page, "phone-secrets")


def test_web_hook_and_channel_create_and_test_against_a_local_receiver(admin_page: Any, admin_session: Session,
                                                           receiver: Receiver) -> None:
    page, marker = admin_page, uid("m")
    page.goto("/web_hooks")
    page.locator("summary", has_text="New web hook").click()
    form = page.get_by_test_id("create-form")
    form.get_by_label("Title").fill(XSS_TITLE)
    form.get_by_label("URL").fill(f"{receiver.url}/hook/{marker}")
    form.get_by_role("button", name="Add header").click()
    form.get_by_label("Header 2", exact=True).fill("X-Marker")
    form.get_by_label("Value 2", exact=True).fill(marker)
    form.get_by_label("Retries").fill("1")
    with page.expect_navigation():
        form.get_by_role("button", name="Create web hook").click()
    link = page.get_by_role("row").filter(has_text=marker).get_by_role("link", name=XSS_TITLE)
    expect(link).to_have_text(XSS_TITLE)
    no_xss(page)
    link.click()
    expect(page.get_by_role("heading", name=XSS_TITLE)).to_be_visible()
    hook_id = page.url.rsplit("/", 1)[1]
    stored = admin_session.call("get_web_hook", {"id": hook_id})["web_hook"]
    assert stored["headers"] == [{"name": "Content-Type", "value": "application/json"},
                                 {"name": "X-Marker", "value": marker}]
    assert stored["retries"] == 1 and stored["method"] == "POST" and stored["timeout"] == 30

    page.get_by_role("button", name="Send test request").click()
    summary = page.locator("[data-hook-summary]")
    expect(summary).to_contain_text("Success")
    expect(page.locator("[data-hook-details]")).to_contain_text(f"X-Marker: {marker}")
    sent = [r for r in receiver.requests if r["path"] == f"/hook/{marker}"]
    assert len(sent) == 1 and sent[0]["headers"]["X-Marker"] == marker
    assert b"Web Hook Test" in sent[0]["body"]
    screenshot(page, "web-hook-tested")

    # An unsaved change is what gets tested; a failure shows the reason.
    page.get_by_label("Retries").fill("0")
    receiver.status = 500
    try:
        page.get_by_role("button", name="Send test request").click()
        expect(summary).to_contain_text("Failed")
        expect(summary).to_contain_text("500")
    finally:
        receiver.status = 200
    no_xss(page)

    # A notification channel can send to it (channels are a plain ObjectAdmin).
    title = uid("Pager ")
    page.goto("/channels")
    page.locator("summary", has_text="New channel").click()
    form = page.get_by_test_id("create-form")
    form.get_by_label("Title").fill(title)
    form.get_by_label("Administrator").check()
    form.get_by_label("Other email addresses").fill("ops@example.com")
    form.get_by_label("Web hook").select_option(hook_id)
    with page.expect_navigation():
        form.get_by_role("button", name="Create channel").click()
    expect(page.get_by_role("row").filter(has_text=title)).to_contain_text(hook_id)
    channel = next(c for c in admin_session.call("get_channels", {})["rows"] if c["title"] == title)
    assert channel["users"] == ["admin"] and channel["web_hook"] == hook_id
    assert channel["email"] == "ops@example.com" and "run_event" not in channel
    page.emulate_media(color_scheme="dark")
    page.goto(f"/web_hooks/{hook_id}")
    screenshot(page, "dark-web-hook")


def download_backup(page: Any) -> None:
    """The backup panel: a download when the export verb exists, else the marked placeholder."""
    if page.get_by_test_id("backup-placeholder").count():
        expect(page.get_by_test_id("backup-placeholder")).to_contain_text("Coming soon")
        return
    with page.expect_download() as download:
        page.get_by_role("button", name="Download backup").click()
    assert re.fullmatch(r"sundial-data-export-[\d-]+-[0-9a-f]+\.txt\.gz", download.value.suggested_filename)
    path = download.value.path()
    assert path is not None and gzip.decompress(path.read_bytes())


def test_system_backup_and_key_rotation_with_progress(admin_page: Any, admin_session: Session) -> None:
    page = admin_page
    page.goto("/system")
    download_backup(page)
    warning = page.get_by_test_id("rotation-warning")
    expect(warning).to_contain_text("pauses the scheduler")
    expect(warning).to_contain_text("aborts every running job")
    form = page.get_by_test_id("rotation-form")
    form.get_by_label("Your password").fill("wrong")
    form.get_by_label("I understand").check()
    form.get_by_role("button", name="Rotate secret key").click()
    page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
    expect(form.get_by_role("alert")).to_have_text("Incorrect password.")
    before = page.locator("#panel-key-rotation dd code").first.text_content()
    try:
        form.get_by_label("Your password").fill("admin")
        form.get_by_role("button", name="Rotate secret key").click()
        page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
        result = page.locator("[data-rotation-summary]")
        expect(result).to_contain_text("Done: Secret key rotated", timeout=30_000)
        expect(page.locator("[data-scheduler-paused]")).to_be_visible()
        expect(form).to_be_hidden()
        screenshot(page, "system-key-rotated")
        assert admin_session.call("get_global_state", {})["state"]["scheduler"]["enabled"] is False
        with page.expect_navigation():
            page.locator("[data-rotation-result]").get_by_role("button", name="Resume scheduler").click()
        expect(page.locator("#panel-key-rotation dd code").first).not_to_have_text(before or "")
        page.get_by_role("link", name="Past rotations in the activity log").click()
        expect(page.locator("table.data tbody tr").first).to_contain_text("Rotate secret key: Secret key rotated")
    finally:
        admin_session.call("update_global_state", {"scheduler.enabled": True})


def test_admin_pages_are_fast(admin_session: Session, ui: ConductorProcess) -> None:
    """Server time of the new pages with 10,000 jobs in history: the best of three stays under 300 ms."""
    with httpx.Client(base_url=ui.url, cookies={"session_id": admin_session.session_id}) as client:
        for path in ADMIN_PAGES:
            response = client.get(path)
            assert response.status_code == 200, path
            best = min(float(client.get(path).headers["server-timing"].split("dur=")[1]) for _ in range(3))
            assert best < 300, (path, best)
