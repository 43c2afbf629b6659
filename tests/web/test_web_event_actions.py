"""Suspend and resume, plugin actions, scheduler plugin triggers, crontab input, day limits and
today's counts, in a real browser.

The editor test runs on the shared conductor (saving needs no server). Resuming a suspended job
and the dashboard's counts need jobs that really run, so they use the conductor with the local
satellite and skip (with the reason) when no server comes online.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import httpx
import pytest
from browser_support import PageWatch, Session, needs_browser, screenshot, wait_for_server

from harness import ConductorProcess

expect = pytest.importorskip("playwright.sync_api", reason="playwright is missing (pip install -e '.[test]')").expect
pytestmark = needs_browser

PHONE = {"viewport": {"width": 375, "height": 812}, "is_mobile": True}
ACTION_PLUGIN = {"type": "action", "enabled": True, "command": "/bin/cat", "params": [
    {"id": "channel", "title": "Channel", "type": "text", "value": "", "required": True},
    {"id": "level", "title": "Level", "type": "select", "value": "Info [info], Warn [warn]"},
    {"id": "loud", "title": "Loud", "type": "checkbox", "value": False}]}
SCHEDULER_PLUGIN = {"type": "scheduler", "enabled": True, "command": "/bin/cat", "params": [
    {"id": "quota", "title": "Quota", "type": "text", "variant": "number", "value": 5}]}


def uid(prefix: str = "t") -> str:
    return prefix + uuid.uuid4().hex[:8]


def make_event(session: Session, title: str, script: str, **fields: Any) -> str:
    event = {"title": title, "enabled": True, "category": "general", "plugin": "shellplug", "targets": ["main"],
             "algo": "random", "params": {"script": script}, "triggers": [{"type": "manual", "enabled": True}],
             **fields}
    return str(session.call("create_event", event)["event"]["id"])


def add_row(page: Any, kind: str, label: str) -> Any:
    """Add a row; returns a locator that stays on it when more rows follow."""
    rows = page.locator(f"#{kind}-list .row-item")
    index = rows.count()
    page.get_by_label(f"{kind.capitalize()} to add").select_option(label=label)
    page.get_by_role("button", name=f"Add {kind}").click()
    expect(rows).to_have_count(index + 1)
    return rows.nth(index)


def wait_final(session: Session, job_id: str, seconds: float = 30) -> dict[str, Any]:
    deadline = time.time() + seconds
    while time.time() < deadline:
        job: dict[str, Any] = session.call("get_job", {"id": job_id})["job"]
        if job.get("final"):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish within {seconds:.0f} s")


@pytest.fixture(scope="module", autouse=True)
def start_satellite_early(satellite_starting: Future[ConductorProcess]) -> None:
    """Asks for the shared satellite conductor when this module begins, so it connects meanwhile."""


class SatellitePages:
    """Admin pages on the conductor with the local satellite (each in its own browser context)."""

    def __init__(self, browser: Any, conductor: ConductorProcess, watch: PageWatch) -> None:
        self.browser, self.url, self.watch = browser, conductor.url, watch
        self.session = Session(conductor.url, "admin", "admin")
        self.contexts: list[Any] = []

    def __call__(self, **options: Any) -> Any:
        context = self.browser.new_context(base_url=self.url, **options)
        context.set_default_timeout(15_000)
        context.add_cookies([{"name": "session_id", "value": self.session.session_id, "url": self.url}])
        self.contexts.append(context)
        return self.watch.attach(context.new_page())


@pytest.fixture
def sat(browser: Any, satellite_conductor: ConductorProcess, watch: PageWatch) -> Iterator[SatellitePages]:
    pages = SatellitePages(browser, satellite_conductor, watch)
    wait_for_server(pages.session)
    yield pages
    for context in pages.contexts:
        context.close()


def test_editor_saves_plugin_action_day_limit_scheduler_plugin_and_crontab(admin_page: Any, admin_session: Session,
                                                                          new_page: Any) -> None:
    action_id, scheduler_id, hook_id = uid("act_"), uid("sch_"), uid("wh_")
    admin_session.call("create_plugin", {"id": action_id, "title": "Notify " + action_id, **ACTION_PLUGIN})
    admin_session.call("create_plugin", {"id": scheduler_id, "title": "Gate " + scheduler_id, **SCHEDULER_PLUGIN})
    admin_session.call("create_web_hook", {"id": hook_id, "title": "Pager " + hook_id, "method": "POST",
                                           "url": "http://127.0.0.1:9/x"})
    page, title = admin_page, uid("Nightly ")
    page.goto("/events/new")
    page.get_by_label("Title").fill(title)
    page.get_by_label("Script Source").fill("#!/bin/sh\necho ok\n")

    action = add_row(page, "action", "Run action plugin")
    action.get_by_label("When").select_option("success")
    action.get_by_label("Action plugin").select_option(label="Notify " + action_id)
    expect(action.get_by_label("Level")).to_have_value("info")  # the plugin's own definitions, with defaults
    action.get_by_label("Level").select_option("warn")
    expect(action.locator(".row-summary")).to_contain_text(f"run plugin “Notify {action_id}”")
    suspend = add_row(page, "action", "Suspend job")
    suspend.get_by_label("When").select_option("start")
    suspend.get_by_label("Notify users").fill("admin")
    suspend.get_by_label("Notify web hook").select_option(label="Pager " + hook_id)
    suspend.get_by_label("Message").fill("Check the disk first.")
    suspend.get_by_label("Scheduler", exact=True).check()
    expect(suspend.locator(".row-summary")).to_contain_text("only jobs started by scheduler")
    limit = add_row(page, "limit", "Daily cap")
    limit.get_by_label("Count").select_option("error")
    limit.get_by_label("At most per day").fill("3")
    expect(limit.locator(".row-summary")).to_contain_text("At most 3 failed jobs per day")

    # The API's complaint about the plugin's required parameter lands on that row and control.
    page.get_by_role("button", name="Create event").click()
    expect(page.locator("[data-section=actions] .section-error")).to_contain_text(
        "Malformed action entry #1: Missing required parameter: Channel")
    expect(action).to_have_attribute("aria-invalid", "true")
    expect(action.get_by_label("Channel")).to_have_attribute("aria-invalid", "true")
    expect(action.get_by_label("Channel")).to_be_focused()
    action.get_by_label("Channel").fill("#ops-alerts")

    cron = add_row(page, "trigger", "Crontab expression")
    cron.get_by_label("Crontab").fill("61 * * * *")
    preview = page.get_by_test_id("trigger-preview")
    expect(preview).to_contain_text("Invalid crontab expression")
    cron.get_by_label("Crontab").fill("*/15 9-17 * * mon-fri")
    expect(preview.locator("li")).to_have_count(5)
    gate = add_row(page, "trigger", "Scheduler plugin")
    gate.get_by_label("Scheduler plugin", exact=True).select_option(label="Gate " + scheduler_id)
    expect(gate.get_by_label("Quota")).to_have_value("5")
    gate.get_by_label("Quota").fill("7")
    expect(gate.locator(".row-summary")).to_contain_text(f"scheduler plugin “Gate {scheduler_id}” approves it")
    expect(preview.locator("li")).to_have_count(5)  # the preview accepts the plugin trigger
    screenshot(page, "event-editor-plugin-rows")
    with page.expect_navigation(url=re.compile(r"/events/e\w+$")):
        page.get_by_role("button", name="Create event").click()
    expect(page.get_by_role("status")).to_contain_text("Crontab “*/15 9-17 * * mon-fri” saved as a schedule: On Mon")

    event = admin_session.call("get_event", {"id": page.url.rsplit("/", 1)[1]})["event"]
    assert event["actions"] == [
        {"type": "plugin", "enabled": True, "condition": "success", "plugin_id": action_id,
         "params": {"channel": "#ops-alerts", "level": "warn", "loud": False}},
        {"type": "suspend", "enabled": True, "condition": "start", "users": ["admin"], "web_hook": hook_id,
         "text": "Check the disk first.", "sources": ["scheduler"]}]
    assert event["limits"] == [{"type": "day", "enabled": True, "condition": "error", "amount": 3}]
    schedule, plugin = event["triggers"][1:]
    assert "crontab" not in schedule and schedule["type"] == "schedule"
    assert (schedule["minutes"], schedule["hours"], schedule["weekdays"]) == ([0, 15, 30, 45], list(range(9, 18)),
                                                                              [1, 2, 3, 4, 5])
    assert plugin == {"type": "plugin", "enabled": True, "plugin_id": scheduler_id, "params": {"quota": 7}}

    # Reopened: the rows show what was stored, the crontab as the schedule it became.
    saved = page.locator("#action-list .row-item").first
    expect(saved.get_by_label("Channel")).to_have_value("#ops-alerts")
    expect(saved.get_by_label("Level")).to_have_value("warn")
    expect(page.locator("#trigger-list .row-item").nth(1).locator(".row-summary")).to_contain_text(
        "On Mon, Tue, Wed, Thu and Fri, at minutes 0, 15, 30 and 45")
    expect(page.locator("#trigger-list .row-item").nth(2).get_by_label("Quota")).to_have_value("7")
    for mode, options in (("dark", {"color_scheme": "dark"}), ("phone", PHONE)):
        other = new_page(admin_session, **options)
        other.goto(page.url)
        expect(other.locator("#action-list .row-item").first.get_by_label("Channel")).to_have_value("#ops-alerts")
        screenshot(other, f"{mode}-event-editor-plugin-rows")
        assert other.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), f"{mode}: sideways scroll"


def test_resume_a_suspended_job_from_the_job_page(sat: SatellitePages) -> None:
    session = sat.session
    title = uid("Approve ")
    event_id = make_event(session, title, "#!/bin/sh\necho original-script\n",
                          actions=[{"type": "suspend", "enabled": True, "condition": "start",
                                    "text": "Is the backup disk mounted?"}])
    job_id = session.call("run_event", {"id": event_id})["id"]
    dashboard = sat()
    dashboard.goto("/")
    item = dashboard.locator("#panel-active-jobs li", has_text=title)
    expect(item.locator(".badge")).to_have_text("Waiting for resume")

    for mode, options in (("dark", {"color_scheme": "dark"}), ("phone", PHONE)):
        other = sat(**options)
        other.goto(f"/jobs/{job_id}")
        expect(other.get_by_test_id("suspended")).to_contain_text("Is the backup disk mounted?")
        screenshot(other, f"{mode}-job-suspended")
        assert other.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), f"{mode}: sideways scroll"

    page = sat(viewport={"width": 1280, "height": 900})
    page.goto(f"/#Job?id={job_id}&resume=1")  # the suspension e-mail's button (xyOps link form)
    expect(page).to_have_url(re.compile(rf"/jobs/{job_id}#resume$"))
    card = page.get_by_test_id("suspended")
    expect(card.get_by_role("button", name="Resume job")).to_be_focused()
    expect(card.get_by_role("heading", name="Waiting for resume")).to_be_visible()
    expect(page.locator("h1 .badge")).to_have_text("Waiting for resume")
    expect(card).to_contain_text("holds this job before it starts")
    screenshot(page, "job-suspended")
    card.get_by_text("Change parameters before resuming").click()
    card.get_by_label("Script Source").fill("#!/bin/sh\necho resumed-with-new-script\n")
    card.get_by_role("button", name="Resume job").click()
    expect(page.get_by_test_id("job-result")).to_contain_text("Success", timeout=30_000)
    expect(page.get_by_test_id("job-log")).to_contain_text("resumed-with-new-script")
    expect(page.get_by_test_id("suspended")).to_have_count(0)
    expect(page.locator(".feed")).to_contain_text("Job resumed by user: admin.")
    expect(item).to_have_count(0)  # gone from the dashboard's active list, live


def test_a_suspended_job_offers_no_resume_without_the_privilege(sat: SatellitePages, browser: Any,
                                                                satellite_conductor: ConductorProcess,
                                                                watch: PageWatch) -> None:
    session = sat.session
    name = uid("viewer")
    session.call("admin_create", {"username": name, "password": "secret-" + name, "full_name": "Viewer",
                                  "email": f"{name}@example.com", "privileges": {}}, ns="user")
    event_id = make_event(session, uid("Held "), "#!/bin/sh\necho hi\n",
                          actions=[{"type": "suspend", "enabled": True, "condition": "start"}])
    job_id = session.call("run_event", {"id": event_id})["id"]
    viewer = Session(satellite_conductor.url, name, "secret-" + name)
    context = browser.new_context(base_url=satellite_conductor.url)
    context.add_cookies([{"name": "session_id", "value": viewer.session_id, "url": satellite_conductor.url}])
    try:
        page = watch.attach(context.new_page())
        page.goto(f"/jobs/{job_id}")
        card = page.get_by_test_id("suspended")
        expect(card).to_contain_text("Resuming a job needs the “Run jobs” privilege.")
        expect(card.get_by_role("button", name="Resume job")).to_have_count(0)
    finally:
        context.close()
        session.call("abort_job", {"id": job_id})


def test_dashboard_shows_todays_counts(sat: SatellitePages) -> None:
    session = sat.session
    page = sat()
    page.goto("/")
    today = page.get_by_test_id("today")
    succeeded = today.locator("[data-stat=job_success] [data-count]")
    day = session.call("dash_stats", {})["stats"]["day"]
    expect(succeeded).to_have_text(str(day.get("job_success", 0)))
    job_id = session.call("run_event", {"id": make_event(session, uid("Count "), "#!/bin/sh\necho counted\n")})["id"]
    assert wait_final(session, job_id)["code"] == 0
    after = session.call("dash_stats", {})["stats"]["day"]
    assert after["job_success"] >= day.get("job_success", 0) + 1
    expect(succeeded).to_have_text(str(after["job_success"]))  # updated without a reload
    expect(today.locator("[data-stat=job_start] [data-count]")).to_have_text(str(after["job_start"]))
    link = today.locator("[data-stat=job_success]")
    expect(link).to_have_attribute("href", "/jobs?query=date%3Atoday&result=success")
    screenshot(page, "dashboard-today")
    phone = sat(**PHONE)
    phone.goto("/")
    expect(phone.get_by_test_id("today")).to_be_visible()
    screenshot(phone, "phone-dashboard-today")
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_recent_activity_names_api_keys_by_title(admin_page: Any, admin_session: Session,
                                                 ui: ConductorProcess) -> None:
    title = uid("Deploy bot ")
    created = admin_session.call("create_api_key", {"title": title, "privileges": {"admin": True}})
    plain, key_id = created["plain_key"], created["api_key"]["id"]
    reply = httpx.post(ui.url + "/api/app/create_tag/v1", headers={"X-API-Key": plain},
                       json={"title": uid("Tag ")}).json()
    assert reply["code"] == 0, reply
    admin_page.goto("/")
    feed = admin_page.locator("#panel-activity")
    expect(feed).to_contain_text(f"API key: {title}")
    expect(feed.locator(".feed-meta", has_text=key_id)).to_have_count(0)
    admin_page.goto("/activity")
    expect(admin_page.locator("table.data")).to_contain_text(f"API key: {title}")


def test_job_history_badges_do_not_break_on_a_phone(new_page: Any, admin_session: Session) -> None:
    page = new_page(admin_session, **PHONE)
    page.goto("/jobs")
    badges = page.locator("table.data .badge")
    expect(badges.first).to_be_visible()
    for index in range(min(badges.count(), 5)):
        box = badges.nth(index).bounding_box()
        assert box is not None and box["height"] < 30, f"badge {index} wraps: {box}"
    screenshot(page, "phone-jobs-375")
