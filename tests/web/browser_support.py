"""Shared pieces of the browser tests: where Chromium is, sessions, error watching, screenshots.

Kept out of conftest.py so test modules can import them by a name no other folder uses.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
PER_PAGE = 5  # small activity pages, so paging shows with a handful of records
HAVE_CHROMIUM = os.path.exists(CHROMIUM)
needs_browser = pytest.mark.skipif(not HAVE_CHROMIUM, reason=f"{CHROMIUM} is missing (apt-get install chromium)")


class Session:
    """A logged-in API session (cookie + CSRF token), usable from tests and as browser cookies."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        resp = httpx.post(base_url + "/api/user/login", json={"username": username, "password": password})
        data = resp.json()
        assert data["code"] == 0, data
        match = re.search(r"session_id=(\w+)", resp.headers["set-cookie"])
        assert match
        self.base_url, self.session_id, self.csrf = base_url, match.group(1), data["csrf_token"]

    def call(self, verb: str, params: dict[str, Any], ns: str = "app") -> dict[str, Any]:
        url = f"{self.base_url}/api/{ns}/{verb}" + ("/v1" if ns == "app" else "")
        resp = httpx.post(url, json=params, cookies={"session_id": self.session_id},
                          headers={"X-CSRF-Token": self.csrf})
        data: dict[str, Any] = resp.json()
        assert data["code"] == 0, data
        return data


class PageWatch:
    """Console errors and page exceptions seen while a test ran."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.allowed: list[str] = []

    def allow(self, fragment: str) -> None:
        """Expect one kind of message (e.g. the console line Chromium logs for a 403 page)."""
        self.allowed.append(fragment)

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(fragment in e for fragment in self.allowed)]

    def attach(self, page: Any) -> Any:
        page.on("console", lambda msg: self.errors.append(f"console: {msg.text}") if msg.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(f"exception: {exc}"))
        return page


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def wait_for_server(session: Session, seconds: float = 30) -> None:
    """Wait for a satellite to come online; a test that needs one fails when none does in time."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if session.call("get_active_servers", {}).get("rows"):
                return
        except AssertionError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"no server came online within {seconds:.0f} s (local satellite enabled)")
