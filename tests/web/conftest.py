"""Browser fixtures: one conductor (CSRF on) and one headless Debian Chromium for the UI tests.

The browser is the system's /usr/bin/chromium driven by Playwright; no browser is ever
downloaded. Every page a test opens is watched for console errors and uncaught exceptions
(a Content-Security-Policy violation shows up there too), and a test fails on any.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
from browser_support import CHROMIUM, CHROMIUM_ARGS, HAVE_CHROMIUM, PER_PAGE, PageWatch, Session
from history_seed import seed_history

from harness import ConductorProcess


@pytest.fixture(scope="session")
def ui_starting() -> Iterator[Future[ConductorProcess]]:
    """The conductor starts (and gets its 10,000-job history) in a thread so that Chromium can launch meanwhile."""
    proc = ConductorProcess(settings={"User.use_csrf": True, "client.items_per_page": PER_PAGE})

    def start() -> ConductorProcess:
        proc.start()
        seed_history(proc.home)
        return proc

    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool.submit(start)
    proc.cleanup()


@pytest.fixture(scope="session")
def ui(ui_starting: Future[ConductorProcess]) -> ConductorProcess:
    return ui_starting.result()


@pytest.fixture(scope="session")
def satellite_starting() -> Iterator[Future[ConductorProcess]]:
    """A second conductor running the local satellite, shared by every module that needs a server online.

    Started in the background the first time a module asks (modules ask from an autouse
    fixture at their start), so the satellite connects while their other tests run.
    """
    proc = ConductorProcess(settings={"User.use_csrf": True, "local_satellite.enabled": True})
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool.submit(proc.start)
    proc.cleanup()


@pytest.fixture
def satellite_conductor(satellite_starting: Future[ConductorProcess]) -> ConductorProcess:
    return satellite_starting.result()


@pytest.fixture(scope="module")
def browser(ui_starting: Future[ConductorProcess]) -> Iterator[Any]:
    """Per module: Playwright's sync API keeps an asyncio loop running in this thread while it is
    open, which would break every asyncio test that a pytest-xdist worker runs after the web ones."""
    if not HAVE_CHROMIUM:
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is missing (pip install -e '.[test]')")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def admin_session(ui: ConductorProcess) -> Session:
    return Session(ui.url, "admin", "admin")


@pytest.fixture
def watch() -> Iterator[PageWatch]:
    seen = PageWatch()
    yield seen
    assert not seen.unexpected(), "the browser reported errors:\n" + "\n".join(seen.unexpected())


@pytest.fixture
def new_page(browser: Any, ui: ConductorProcess, watch: PageWatch) -> Iterator[Any]:
    """A factory of pages in fresh contexts; `session` logs the context in with its cookie."""
    contexts: list[Any] = []

    def make(session: Session | None = None, **options: Any) -> Any:
        context = browser.new_context(base_url=ui.url, color_scheme=options.pop("color_scheme", "light"), **options)
        context.set_default_timeout(10_000)
        if session is not None:
            context.add_cookies([{"name": "session_id", "value": session.session_id, "url": ui.url}])
        contexts.append(context)
        return watch.attach(context.new_page())

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def admin_page(new_page: Any, admin_session: Session) -> Any:
    return new_page(admin_session)
