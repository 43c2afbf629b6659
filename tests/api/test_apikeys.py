"""API keys: shown once, stored hashed, accepted three ways, limited by privileges and rate."""

from __future__ import annotations

import hashlib
import time

import httpx
import pytest

from harness import Api


def make_key(admin: Api, **fields):  # type: ignore[no-untyped-def]
    made = admin.ok("create_api_key", {"title": "Key", **fields})
    return made["plain_key"], made["api_key"]


def test_plain_key_is_shown_once_and_stored_as_salted_hash(admin: Api):
    plain, record = make_key(admin, privileges={"admin": True})
    assert len(plain) == 43
    assert record["key"] == hashlib.sha256((plain + record["id"]).encode()).hexdigest()
    assert record["mask"] == plain[:4] + "********" + plain[-4:]
    assert record["active"] == 1 and record["username"] == "admin"
    assert plain not in str(admin.ok("get_api_keys"))
    assert plain not in str(admin.ok("get_api_key", {"id": record["id"]}))
    admin.ok("delete_api_key", {"id": record["id"]})


@pytest.mark.parametrize("how", ["header", "body", "query", "bearer"])
def test_key_is_accepted_every_documented_way(conductor, admin: Api, how):
    plain, record = make_key(admin, privileges={"admin": True})
    url = conductor.url + "/api/app/get_tags/v1"
    if how == "header":
        resp = httpx.post(url, json={}, headers={"X-API-Key": plain})
    elif how == "body":
        resp = httpx.post(url, json={"api_key": plain})
    elif how == "query":
        resp = httpx.get(url, params={"api_key": plain})
    else:
        resp = httpx.post(url, json={}, headers={"Authorization": f"Bearer {plain}"})
    assert resp.json()["code"] == 0
    admin.ok("delete_api_key", {"id": record["id"]})


def test_inactive_expired_and_deleted_keys_are_refused(conductor, admin: Api):
    url = conductor.url + "/api/app/get_tags/v1"
    plain, record = make_key(admin, privileges={"admin": True})
    admin.ok("update_api_key", {"id": record["id"], "active": 0})
    assert httpx.post(url, json={}, headers={"X-API-Key": plain}).json() == {"code": "session",
                                                                            "description": "Invalid API Key"}
    admin.ok("update_api_key", {"id": record["id"], "active": 1, "expires": time.time() - 1})
    assert httpx.post(url, json={}, headers={"X-API-Key": plain}).json()["code"] == "session"
    admin.ok("update_api_key", {"id": record["id"], "expires": 0})
    assert httpx.post(url, json={}, headers={"X-API-Key": plain}).json()["code"] == 0
    admin.ok("delete_api_key", {"id": record["id"]})
    assert httpx.post(url, json={}, headers={"X-API-Key": plain}).json()["code"] == "session"


def test_key_privileges_limit_what_it_can_do(conductor, admin: Api, uid):
    plain, record = make_key(admin, title="Tagger", privileges={"create_tags": True})
    key = Api(conductor.url, {"X-API-Key": plain})
    made = key.ok("create_tag", {"id": uid, "title": "By key"})
    assert made["tag"]["username"] == "admin"  # stamped with the key's owner
    denied = key.call("delete_tag", {"id": uid})
    assert denied == {"code": "access", "description": 'API Key "Tagger" does not have the "Delete Tags" '
                                                       'privilege required to perform this action.'}
    assert key.call("get_api_keys")["code"] == "access"
    rows = admin.ok("search_activity", {"query": f"keywords:{uid}", "limit": 5})["rows"]
    assert rows[0]["username"] == record["id"]  # activity names the key
    admin.ok("delete_tag", {"id": uid})
    admin.ok("delete_api_key", {"id": record["id"]})


def test_role_on_a_key_adds_privileges(conductor, admin: Api, uid):
    admin.ok("create_role", {"id": "r" + uid, "title": "Deleters", "privileges": {"delete_tags": True}})
    plain, record = make_key(admin, privileges={"create_tags": True}, roles=["r" + uid])
    key = Api(conductor.url, {"X-API-Key": plain})
    key.ok("create_tag", {"id": uid, "title": "x"})
    key.ok("delete_tag", {"id": uid})
    admin.ok("update_role", {"id": "r" + uid, "enabled": False})
    key.ok("create_tag", {"id": uid, "title": "x"})
    assert key.call("delete_tag", {"id": uid})["code"] == "access"
    admin.ok("delete_tag", {"id": uid})
    admin.ok("delete_api_key", {"id": record["id"]})


def test_rate_limit_answers_429(conductor, admin: Api):
    plain, record = make_key(admin, privileges={"admin": True}, max_per_sec=2)
    codes = [httpx.post(conductor.url + "/api/app/get_tags/v1", json={}, headers={"X-API-Key": plain})
             for _ in range(6)]
    assert any(r.status_code == 429 and r.json()["code"] == "rate" for r in codes)
    admin.ok("delete_api_key", {"id": record["id"]})


def test_key_cannot_be_set_by_caller(admin: Api):
    made = admin.ok("create_api_key", {"title": "x", "key": "my-own-key-123456"})
    assert made["plain_key"] != "my-own-key-123456"
    admin.ok("update_api_key", {"id": made["api_key"]["id"], "key": "zzz"})
    assert admin.ok("get_api_key", {"id": made["api_key"]["id"]})["api_key"]["key"] == made["api_key"]["key"]
    admin.ok("delete_api_key", {"id": made["api_key"]["id"]})


def test_missing_key_is_notfound(admin: Api):
    assert admin.call("get_api_key", {"id": "knope"})["code"] == "notfound"
    assert admin.call("delete_api_key", {"id": "knope"})["code"] == "api_key"
