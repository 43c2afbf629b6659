"""Accounts, login, sessions, lockout and CSRF, through the user-manager API."""

from __future__ import annotations

import re

import httpx

from harness import Api, login


def make_user(admin: Api, name: str, **extra):  # type: ignore[no-untyped-def]
    admin.ok("admin_create", {"username": name, "password": "pw-" + name, "email": f"{name}@example.com",
                              "full_name": "Test " + name, **extra}, ns="user")


def test_admin_create_get_update_delete(admin: Api, uid):
    name = "u" + uid
    make_user(admin, name, privileges={"create_tags": True})
    user = admin.ok("admin_get_user", {"username": name}, ns="user")["user"]
    assert user["active"] == 1 and user["privileges"] == {"create_tags": True}
    assert "password" not in user and "salt" not in user
    assert user["hour_cycle"] == "h12"  # default prefs applied
    admin.ok("admin_update", {"username": name, "full_name": "Renamed"}, ns="user")
    assert admin.ok("admin_get_user", {"username": name}, ns="user")["user"]["full_name"] == "Renamed"
    names = [u["username"] for u in admin.ok("admin_get_users", ns="user")["rows"]]
    assert names[0] == name  # newest first
    admin.ok("admin_delete", {"username": name}, ns="user")
    gone = admin.call("admin_get_user", {"username": name}, ns="user")
    assert gone["code"] == "user"


def test_duplicate_after_normalisation_is_refused(admin: Api, uid):
    make_user(admin, f"p.{uid}")
    dup = admin.call("admin_create", {"username": f"p{uid}", "password": "x", "email": "a@b.c",
                                      "full_name": "Dup"}, ns="user")
    assert dup == {"code": "user_exists", "description": f"User already exists: p{uid}"}
    admin.ok("admin_delete", {"username": f"p.{uid}"}, ns="user")


def test_admin_create_validates_before_anything(admin: Api, anon: Api):
    missing = anon.call("admin_create", {"username": "x"}, ns="user")
    assert missing["code"] == "api" and missing["description"] == "Missing parameter: email"
    bad = admin.call("admin_create", {"username": "bad name!", "password": "x", "email": "a@b.c",
                                      "full_name": "X"}, ns="user")
    assert bad["code"] == "api"


def test_password_and_salt_never_returned_by_login(conductor, admin: Api, uid):
    name = "u" + uid
    make_user(admin, name)
    resp = httpx.post(conductor.url + "/api/user/login", json={"username": name, "password": "pw-" + name})
    data = resp.json()
    assert data["code"] == 0 and "password" not in data["user"] and "salt" not in data["user"]
    assert "session_id" not in data  # clients read it from the cookie
    assert re.search(r"session_id=\w{64}; Path=/; Max-Age=\d+; HttpOnly; SameSite=Lax",
                     resp.headers["set-cookie"])


def test_wrong_password_then_lockout_on_the_sixth_failure(conductor, admin: Api, uid):
    name = "u" + uid
    make_user(admin, name)
    for _ in range(6):
        data = httpx.post(conductor.url + "/api/user/login", json={"username": name, "password": "nope"}).json()
        assert data == {"code": "login", "description": "Username or password incorrect."}
    locked = httpx.post(conductor.url + "/api/user/login", json={"username": name, "password": "pw-" + name})
    assert locked.json()["code"] == "login" and "locked out" in locked.json()["description"]
    admin.ok("admin_update", {"username": name, "unlock": True}, ns="user")
    login(conductor.url, name, "pw-" + name).close()


def test_unknown_user_login_is_the_same_message(conductor):
    data = httpx.post(conductor.url + "/api/user/login", json={"username": "nobody_here", "password": "x"}).json()
    assert data == {"code": "login", "description": "Username or password incorrect."}


def test_disabled_user_cannot_log_in_and_loses_sessions(conductor, admin: Api, uid):
    name = "u" + uid
    make_user(admin, name)
    api = login(conductor.url, name, "pw-" + name)
    admin.ok("admin_update", {"username": name, "active": 0}, ns="user")
    assert api.call("get_tags")["code"] == "session"
    data = httpx.post(conductor.url + "/api/user/login", json={"username": name, "password": "pw-" + name}).json()
    assert data["code"] == "login" and "disabled" in data["description"]


def test_resume_session_and_logout(conductor):
    api = login(conductor.url, "admin", "admin")
    resumed = api.call("resume_session", ns="user")
    assert resumed["code"] == 0 and resumed["username"] == "admin"
    assert api.call("logout", ns="user") == {"code": 0}
    assert api.call("get_tags")["code"] == "session"
    assert api.call("resume_session", ns="user")["code"] == "session"
    assert Api(conductor.url).call("resume_session", ns="user") == {"code": 0}


def test_self_update_needs_old_password_and_cannot_escalate(conductor, admin: Api, uid):
    name = "u" + uid
    make_user(admin, name)
    api = login(conductor.url, name, "pw-" + name)
    wrong = api.call("update", {"username": name, "old_password": "nope", "full_name": "X"}, ns="user")
    assert wrong == {"code": "user", "description": "Your password is incorrect."}
    mismatch = api.call("update", {"username": "admin", "old_password": "pw-" + name}, ns="user")
    assert mismatch == {"code": "user", "description": "Username mismatch."}
    done = api.call("update", {"username": name, "old_password": "pw-" + name, "full_name": "Me",
                               "privileges": {"admin": True}, "active": 1, "new_password": "new-" + uid},
                    ns="user")
    assert done["code"] == 0 and done["user"]["full_name"] == "Me" and done["user"]["privileges"] == {}
    login(conductor.url, name, "new-" + uid).close()


def test_user_settings_ignores_privileges(conductor, admin: Api, uid):
    name = "u" + uid
    make_user(admin, name)
    api = login(conductor.url, name, "pw-" + name)
    data = api.ok("user_settings", {"volume": 3, "privileges": {"admin": True}, "roles": ["all"]})
    assert data["user"]["volume"] == 3 and data["user"]["privileges"] == {} and data["user"]["roles"] == []


def test_user_namespace_refuses_api_keys_and_non_admins(conductor, admin: Api, uid):
    key = admin.ok("create_api_key", {"title": "k", "privileges": {"admin": True}})["plain_key"]
    data = httpx.post(conductor.url + "/api/user/admin_get_users", json={}, headers={"X-API-Key": key}).json()
    assert data == {"code": "session", "description": "Session has expired or is invalid."}
    name = "u" + uid
    make_user(admin, name)
    api = login(conductor.url, name, "pw-" + name)
    assert api.call("admin_get_users", ns="user") == {"code": "user",
                                                      "description": f"User is not an administrator: {name}"}


def test_admin_via_role_gets_limits_cleared(admin: Api, uid):
    admin.ok("create_role", {"id": "r" + uid, "title": "Admins", "privileges": {"admin": True}})
    name = "u" + uid
    make_user(admin, name, roles=["r" + uid], categories=["general"], groups=["main"])
    user = admin.ok("admin_get_user", {"username": name}, ns="user")["user"]
    assert user["categories"] == [] and user["groups"] == []


def test_csrf_is_required_for_cookie_sessions_when_enabled(fresh_conductor):
    proc = fresh_conductor(settings={"User.use_csrf": True}).start()
    client = httpx.Client(base_url=proc.url)
    data = client.post("/api/user/login", json={"username": "admin", "password": "admin"}).json()
    token = data["csrf_token"]
    assert re.fullmatch(r"[0-9a-f]{64}", token)
    refused = client.post("/api/app/create_tag/v1", json={"title": "No token"})
    assert refused.json()["code"] == "session"
    accepted = client.post("/api/app/create_tag/v1", json={"title": "With token"},
                           headers={"X-CSRF-Token": token})
    assert accepted.json()["code"] == 0
    assert client.get("/api/app/get_tags/v1").json()["code"] == 0  # reads need no token
    client.close()


def test_user_activity_shows_own_logins(conductor, admin: Api, uid):
    name = "u" + uid
    make_user(admin, name)
    api = login(conductor.url, name, "pw-" + name)
    rows = api.ok("get_user_activity")["rows"]
    assert rows[0]["action"] == "user_login"
    assert rows[0]["useragent"].startswith("Python")
