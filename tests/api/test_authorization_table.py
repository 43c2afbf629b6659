"""Every registered verb, called with no credentials, as a user with no privileges, and as admin.

The verb list comes from the server's own OpenAPI document, so a new verb is covered the
moment it is registered.
"""

from __future__ import annotations

import httpx
import pytest

from harness import Api, login

# Verbs whose side effects on the shared session would disturb the other calls.
SESSION_ENDING = {"logout", "delete", "logout_all"}
# xyOps answers a missing `items` with code `session` (core-api.md §8.5), whoever calls.
ITEMS_SESSION_ERROR = {"multi_update_category", "multi_update_group"}
# Answers JavaScript (`app.receiveConfig(...)`, core-api.md §8.1) rather than an envelope.
SCRIPT_REPLY = {"config"}


@pytest.fixture(scope="module")
def verbs(conductor) -> list[dict]:  # type: ignore[type-arg]
    doc = httpx.get(conductor.url + "/api/openapi.json").json()
    found = []
    for path, item in doc["paths"].items():
        _, _, ns, name, _ = path.split("/")
        op = item["post"]
        found.append({"ns": ns, "name": name, "auth": op["x-sundial-auth"], "privilege": op["x-sundial-privilege"]})
    assert len(found) > 30
    return found


@pytest.fixture(scope="module")
def nobody(conductor, admin: Api) -> Api:
    admin.ok("admin_create", {"username": "authz_nobody", "password": "pw", "email": "n@b.c",
                              "full_name": "Nobody", "privileges": {}}, ns="user")
    return login(conductor.url, "authz_nobody", "pw")


@pytest.mark.timeout(600)  # one HTTP call per registered verb; slow only on a saturated host
def test_no_credentials(conductor, verbs):
    for verb in verbs:
        resp = httpx.post(f"{conductor.url}/api/{verb['ns']}/{verb['name']}/v1", json={})
        if verb["name"] in SCRIPT_REPLY:
            assert resp.text.startswith("app.receiveConfig({"), (verb, resp.text[:200])
            continue
        data = resp.json()
        if verb["auth"] in ("public", "token"):
            assert data.get("code") not in ("session", "access", "internal"), (verb, data)
        else:
            assert data.get("code") in ("session", "api"), (verb, data)  # api: params checked first


@pytest.mark.timeout(600)
def test_user_without_privileges(verbs, nobody: Api):
    for verb in verbs:
        if verb["auth"] in ("public", "token") or verb["name"] in SESSION_ENDING:
            continue
        data = nobody.call(verb["name"], {}, ns=verb["ns"])
        if verb["privilege"]:
            assert data.get("code") in ("access", "user", "api"), (verb, data)
            if verb["ns"] == "app":
                assert data["code"] in ("access", "api"), (verb, data)
        else:
            assert data.get("code") not in ("access", "session", "internal"), (verb, data)


@pytest.mark.timeout(600)
def test_admin_passes_every_check(verbs, admin: Api):
    for verb in verbs:
        if verb["name"] in SESSION_ENDING or verb["auth"] == "public":
            continue
        data = admin.call(verb["name"], {}, ns=verb["ns"])
        if verb["name"] in ITEMS_SESSION_ERROR:
            assert data["description"] == "Request missing 'items' parameter, or has zero length.", (verb, data)
            continue
        assert data.get("code") not in ("access", "session", "internal"), (verb, data)


WRONG_TYPES = {"id": ["x"], "title": {"a": 1}, "username": 5, "password": [1], "privileges": "x",
               "roles": "x", "query": ["*"], "limit": "many", "offset": {"a": 1}, "enabled": [True],
               "items": "x", "fields": "x", "targets": 7, "params": 3}


@pytest.mark.timeout(600)
def test_wrong_types_never_crash_any_verb(conductor, verbs, admin: Api):
    for verb in verbs:
        if verb["name"] in SESSION_ENDING or verb["name"] in SCRIPT_REPLY:
            continue
        data = admin.call(verb["name"], dict(WRONG_TYPES), ns=verb["ns"])
        assert data.get("code") != "internal", (verb, data)
    assert httpx.post(conductor.url + "/api/app/ping/v1").json() == {"code": 0}
