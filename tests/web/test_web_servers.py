"""The servers list and a server's page against the shared conductor with the local satellite.

Skips (with the reason) when no server comes online within 30 s. The minute graphs need
monitors, which a fresh install does not define, so their drawing is checked with a stubbed
`get_latest_monitor_data` answer; the live per-second charts use the satellite's real samples.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import httpx
import pytest
from browser_support import PageWatch, Session, needs_browser, screenshot, wait_for_server

from harness import ConductorProcess

expect = pytest.importorskip("playwright.sync_api", reason="playwright is missing (pip install -e '.[test]')").expect
pytestmark = needs_browser

STOCK_QUICK_CHARTS = 8
MINUTE_ROWS = [{"date": 1_700_000_000 + 60 * n, "epoch_div": 0, "count": 1,
                "totals": {"load_avg": n / 10, "disk_used": 1024**3 * n}} for n in range(30)]


@pytest.fixture(scope="module", autouse=True)
def start_satellite_early(satellite_starting: Future[ConductorProcess]) -> None:
    """Asks for the shared satellite conductor when this module begins."""


@pytest.fixture(scope="module")
def fleet_session(satellite_conductor_module: ConductorProcess) -> Session:
    session = Session(satellite_conductor_module.url, "admin", "admin")
    wait_for_server(session)
    return session


@pytest.fixture(scope="module")
def satellite_conductor_module(satellite_starting: Future[ConductorProcess]) -> ConductorProcess:
    return satellite_starting.result()


@pytest.fixture
def fleet_page(browser: Any, fleet_session: Session, watch: PageWatch) -> Iterator[Any]:
    context = browser.new_context(base_url=fleet_session.base_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    context.add_cookies([{"name": "session_id", "value": fleet_session.session_id, "url": fleet_session.base_url}])
    yield watch.attach(context.new_page())
    context.close()


def polyline_points(page: Any, index: int) -> str:
    return str(page.locator("[data-quick-charts] figure").nth(index).locator("polyline").get_attribute("points"))


def check_chart_code(page: Any) -> None:
    """The chart and metric helpers (ES modules) on their own, in the page's browser."""
    result = page.evaluate("""async () => {
        const chart = await import('/static/js/pages/chart.js');
        const metrics = await import('/static/js/pages/metrics.js');
        const rows = [{date: 10, n: 100}, {date: 12, n: 300}, {date: 13, n: 250}];
        return {
            nice: [chart.niceMax(0), chart.niceMax(7), chart.niceMax(130), chart.niceMax(2100)],
            points: chart.scalePoints([[0, 0], [60, 50]], 0, 60, 100, 300, 100),
            rate: metrics.quickPoints(rows, {id: 'n', delta: true, divide_by_delta: true, delta_min_value: 0}),
            plain: metrics.quickPoints(rows, {id: 'n'}).length,
            text: [chart.formatValue(1536, 'bytes', '/sec'), chart.formatValue(5.25, 'percent'),
                   chart.formatValue(null), chart.formatValue(2.5, 'number', ' jobs'),
                   chart.formatValue(31138512896, 'number')],
            kinds: [metrics.kindOf('float', '%'), metrics.kindOf('bytes', ''), metrics.kindOf('integer', '')],
        };
    }""")
    assert result["nice"] == [1, 10, 200, 2500]
    assert result["points"] == "0.0,99.0 300.0,50.0"
    assert result["rate"] == [[12, 100], [13, 0]]  # per second, floored at delta_min_value
    assert result["plain"] == 3
    assert result["text"] == ["1.5 KB/s", "5.3%", "—", "2.50 jobs", "31.1B"]
    assert result["kinds"] == ["percent", "bytes", "integer"]


def test_server_list_and_the_live_server_page(fleet_page: Any, fleet_session: Session) -> None:
    page = fleet_page
    server = fleet_session.call("get_active_servers", {})["rows"][0]
    page.goto("/servers")
    row = page.locator("#panel-online tbody tr").filter(has=page.locator(f'a[href="/servers/{server["id"]}"]'))
    expect(row).to_contain_text("Online")
    expect(row).to_contain_text(server["hostname"])
    page.get_by_label("Status").select_option("offline")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#panel-online")).to_have_count(0)
    page.goto("/servers?q=no-such-host-anywhere")
    expect(page.locator("#panel-online")).to_contain_text("No server matches these filters.")

    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if "/get_quickmon_data" in r.url else None)
    stub = {"code": 0, "rows": MINUTE_ROWS, "data": None}
    page.route("**/api/app/get_latest_monitor_data", lambda route: route.fulfill(
        status=200, content_type="application/json", body=json.dumps(stub)))
    page.goto(f"/servers/{server['id']}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Online")
    charts = page.locator("[data-quick-charts] figure")
    expect(charts).to_have_count(STOCK_QUICK_CHARTS)
    cpu = charts.filter(has_text="CPU Usage")
    expect(cpu).to_have_attribute("data-count", re.compile(r"^([2-9]|[1-9]\d+)$"))
    first = polyline_points(page, 1)
    assert len(first.split()) >= 2
    expect(cpu.locator("polyline")).not_to_have_attribute("points", first)  # the next live row redraws it
    assert polls == [], f"the server page polled the REST API: {polls}"
    expect(cpu.locator(".chart-value")).to_have_text(re.compile(r"^\d+(\.\d)?%$"))
    minutes = page.locator("[data-minute-charts] figure")
    expect(minutes).to_have_count(2)
    expect(minutes.first).to_contain_text("load_avg")
    expect(minutes.first.locator(".chart-value")).to_have_text("2.90")
    expect(page.locator("#facts-title + .facts")).to_contain_text("Operating system")
    screenshot(page, "server-live")
    check_chart_code(page)

    try:
        page.locator("summary", has_text="Edit server").click()
        form = page.get_by_test_id("server-form")
        form.get_by_label("Title").fill("Build box")
        form.get_by_label("Max concurrent jobs").fill("3")
        with page.expect_navigation():
            form.get_by_role("button", name="Save").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Build box")
        saved = fleet_session.call("get_active_server", {"id": server["id"]})["server"]
        assert saved["title"] == "Build box" and saved["maxJobs"] == 3 and saved["autoGroup"] is True
    finally:
        # A title cannot be emptied through the API, so the hostname stands in for "no title".
        fleet_session.call("update_server", {"id": server["id"], "title": server["title"] or server["hostname"],
                                             "maxJobs": 0})


def test_add_a_server_gives_a_working_install_command(fleet_page: Any, fleet_session: Session) -> None:
    page = fleet_page
    page.goto("/servers")
    page.locator("summary", has_text="Add a server").click()
    form = page.get_by_test_id("token-form")
    form.get_by_label("Title for the new server").fill("web-new")
    form.get_by_label("Token valid for").select_option("3600")
    form.get_by_role("button", name="Get install command").click()
    command = page.get_by_test_id("install-command")
    expect(command).to_be_visible()
    match = re.fullmatch(r'curl -s "(https?://[^/"]+)(/api/app/satellite/install\?t=([0-9a-f]{64}))" \| sh',
                         command.input_value())
    assert match, "the install command has an unexpected shape"
    script = httpx.get(fleet_session.base_url + match.group(2))
    assert script.status_code == 200 and script.text.startswith("#!")
    screenshot(page, "servers-add-server")
    page.reload()
    expect(page.get_by_test_id("install-command")).to_be_hidden()


def test_server_pages_stay_fast(fleet_session: Session) -> None:
    """Best of three server times of the list and a server page, under the 300 ms budget."""
    server_id = fleet_session.call("get_active_servers", {})["rows"][0]["id"]
    with httpx.Client(base_url=fleet_session.base_url, cookies={"session_id": fleet_session.session_id}) as client:
        for path in ("/servers", f"/servers/{server_id}", "/servers?status=offline&q=web"):
            best = min(float(client.get(path).headers["server-timing"].split("dur=")[1]) for _ in range(3))
            assert best < 300, (path, best)
