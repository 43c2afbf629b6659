"""forgot_password / reset_password (users-and-privileges.md §6) and the changed_password notice
of `/api/user/update`, against a local SMTP server,
on both storage back ends: the e-mailed one-time key, the refusals, lockout and throttling."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from hook_receivers import SmtpSink, wait_for

from harness import Api, ConductorProcess, login, postgres_reachable

FAILED = {"code": "login", "description": "Password reset failed."}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def mailed(request: pytest.FixtureRequest) -> Iterator[tuple[ConductorProcess, SmtpSink]]:
    if request.param == "postgres" and not postgres_reachable():
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    sink = SmtpSink()
    proc = ConductorProcess(request.param, settings={
        "mail_settings.host": "127.0.0.1", "mail_settings.port": sink.port, "email_from": "sundial@example.com",
        "base_app_url": "https://sundial.example.com"}).start()
    yield proc, sink
    proc.cleanup()
    sink.close()


def _make_user(proc: ConductorProcess, name: str) -> None:
    admin = login(proc.url, "admin", "admin")
    admin.ok("admin_create", {"username": name, "password": "old-" + name, "email": f"{name}@Example.com",
                              "full_name": "Reset " + name}, ns="user")
    admin.close()


def _mails_to(sink: SmtpSink, address: str) -> list[EmailMessage]:
    return [m for rcpt, m in sink.messages if rcpt == [address]]


def _key_from(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",)).get_content()
    match = re.search(r"(https://\S+/reset-password\?u=\S+)#h=([0-9a-f]{64})", text)
    assert match, text
    return match.group(1), match.group(2)


def _forgot(api: Api, username: str, email: str) -> dict[str, Any]:
    return api.call("forgot_password", {"username": username, "email": email}, ns="user")


def _reset(api: Api, username: str, key: str, password: str) -> dict[str, Any]:
    return api.call("reset_password", {"username": username, "key": key, "new_password": password}, ns="user")


def test_reset_key_is_mailed_used_once_and_never_logged(mailed, uid):
    proc, sink = mailed
    name, anon = "r" + uid, Api(proc.url)
    _make_user(proc, name)
    # no enumeration: a wrong address or an unknown user answer exactly like a match
    assert _forgot(anon, name, "someone@example.com") == {"code": 0}
    assert _forgot(anon, "nobody" + uid, "nobody@example.com") == {"code": 0}
    assert _forgot(anon, name, f"{name}@example.COM") == {"code": 0}  # e-mail compared case-insensitively
    message = wait_for(lambda: (found := _mails_to(sink, f"{name}@Example.com")) and found[0], 15, "reset e-mail")
    assert message["From"] == "sundial@example.com" and "Reset your password" in message["Subject"]
    link, key = _key_from(message)
    assert link == f"https://sundial.example.com/reset-password?u={name}"

    assert _reset(anon, name, "0" * 64, "new-password-1") == FAILED
    assert _reset(anon, "admin", key, "new-password-1") == FAILED  # a key only resets its own user
    assert _reset(anon, name, "xyz", "new-password-1")["code"] == "api"
    assert anon.call("reset_password", {"username": name, "key": key}, ns="user")["code"] == "api"
    assert _reset(anon, name, key.upper(), "new-password-1") == {"code": 0}
    assert _reset(anon, name, key, "new-password-2") == FAILED  # single use

    refused = httpx.post(proc.url + "/api/user/login", json={"username": name, "password": "old-" + name}).json()
    assert refused["code"] == "login"
    me = login(proc.url, name, "new-password-1")
    actions = [row["action"] for row in me.ok("get_user_activity")["rows"]]
    assert actions[:2] == ["user_login", "user_password"]
    me.close()
    admin = login(proc.url, "admin", "admin")
    rows = admin.ok("search_activity", {"query": f"keywords:{name}", "limit": 10})["rows"]
    assert {"user_password", "notice"} <= {r["action"] for r in rows}
    admin.close()
    logs = "".join(p.read_text(errors="replace") for p in (proc.home / "logs").rglob("*.log"))
    assert key not in logs and "new-password-1" not in logs
    anon.close()


def test_reset_lifts_a_lockout(mailed, uid):
    proc, sink = mailed
    name, anon = "l" + uid, Api(proc.url)
    _make_user(proc, name)
    for _ in range(6):
        httpx.post(proc.url + "/api/user/login", json={"username": name, "password": "wrong"})
    locked = httpx.post(proc.url + "/api/user/login", json={"username": name, "password": "old-" + name}).json()
    assert locked["description"].startswith("Account is locked out.")
    assert _forgot(anon, name, f"{name}@example.com") == {"code": 0}
    message = wait_for(lambda: (found := _mails_to(sink, f"{name}@Example.com")) and found[0], 15, "reset e-mail")
    assert _reset(anon, name, _key_from(message)[1], "unlocked-pw") == {"code": 0}
    login(proc.url, name, "unlocked-pw").close()
    anon.close()


def test_fifth_request_within_an_hour_is_silently_dropped(mailed, uid):
    proc, sink = mailed
    name, marker, anon = "t" + uid, "m" + uid, Api(proc.url)
    _make_user(proc, name)
    _make_user(proc, marker)
    for _ in range(5):
        assert _forgot(anon, name, f"{name}@example.com") == {"code": 0}
    admin = login(proc.url, "admin", "admin")
    assert admin.ok("admin_get_user", {"username": name}, ns="user")["user"]["fp_count"] == 4
    admin.close()
    wait_for(lambda: len(_mails_to(sink, f"{name}@Example.com")) == 4, 15, "four reset e-mails")
    assert _forgot(anon, marker, f"{marker}@example.com") == {"code": 0}
    wait_for(lambda: _mails_to(sink, f"{marker}@Example.com"), 15, "the marker e-mail")
    assert len(_mails_to(sink, f"{name}@Example.com")) == 4
    anon.close()


def test_own_password_change_mails_a_notice_without_the_password(mailed, uid):
    proc, sink = mailed
    name = "c" + uid
    _make_user(proc, name)
    me = login(proc.url, name, "old-" + name)
    me.ok("update", {"username": name, "old_password": "old-" + name, "full_name": "Renamed"}, ns="user")
    me.ok("update", {"username": name, "old_password": "old-" + name, "new_password": "changed-" + uid},
          ns="user")
    message = wait_for(lambda: (found := _mails_to(sink, f"{name}@Example.com")) and found[0], 15, "notice")
    assert "password was changed" in message["Subject"]
    text = message.get_body(("plain",)).get_content()
    assert name in text and "127.0.0.1" in text
    assert "changed-" + uid not in message.as_string() and "old-" + name not in message.as_string()
    me.close()
    assert len(_mails_to(sink, f"{name}@Example.com")) == 1  # the profile-only update sent nothing
