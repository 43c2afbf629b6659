"""The verb API's envelope, routing and bad-input handling, seen from an HTTP client."""

from __future__ import annotations

import httpx

from harness import Api


def test_echo_merges_query_and_body_and_has_no_code(conductor):
    data = httpx.post(conductor.url + "/api/app/echo/v1?a=1", json={"b": "2"}).json()
    assert data["params"] == {"a": "1", "b": "2"}
    assert "code" not in data and data["method"] == "POST"


def test_echo_never_reflects_credentials(conductor):
    data = httpx.post(conductor.url + "/api/app/echo", json={},
                      headers={"X-API-Key": "k-should-not-echo", "Cookie": "session_id=abc123"}).json()
    assert "k-should-not-echo" not in str(data) and "abc123" not in str(data)


def test_unknown_verb_answers_numeric_code_1_with_http_200(conductor):
    resp = httpx.post(conductor.url + "/api/app/GET_Tags/v1", json={})
    assert resp.status_code == 200
    assert resp.json() == {"code": 1, "description": "Unsupported API: app/api_GET_Tags"}


def test_error_status_only_on_versioned_paths(conductor):
    assert httpx.post(conductor.url + "/api/app/get_tags/v1", json={}).status_code == 403
    unversioned = httpx.post(conductor.url + "/api/app/get_tags", json={})
    assert unversioned.status_code == 200 and unversioned.json()["code"] == "session"


def test_malformed_json_is_an_api_error(conductor, admin: Api):
    resp = httpx.post(conductor.url + "/api/app/get_tags/v1", content=b"{nope",
                      headers={**admin.headers, "Content-Type": "application/json"})
    assert resp.status_code == 400
    assert resp.json()["code"] == "api" and "Malformed JSON" in resp.json()["description"]


def test_json_body_must_be_an_object(conductor, admin: Api):
    resp = httpx.post(conductor.url + "/api/app/get_tags/v1", content=b"[1,2]",
                      headers={**admin.headers, "Content-Type": "application/json"})
    assert resp.json()["code"] == "api"


def test_deeply_nested_body_is_refused_and_server_survives(conductor):
    body = b"[" * 50000 + b"]" * 50000
    resp = httpx.post(conductor.url + "/api/app/echo", content=b'{"a":' + body + b"}",
                      headers={"Content-Type": "application/json"})
    assert resp.json()["code"] == "api"
    assert httpx.post(conductor.url + "/api/app/ping/v1").json() == {"code": 0}


def test_oversized_body_is_refused(conductor):
    big = b'{"a":"' + b"x" * (33 * 1024 * 1024) + b'"}'
    resp = httpx.post(conductor.url + "/api/app/echo/v1", content=big,
                      headers={"Content-Type": "application/json"}, timeout=60)
    assert resp.status_code == 400 and "too large" in resp.json()["description"]


def test_reserved_words_as_keys_or_ids_are_refused(admin: Api, uid):
    data = admin.call("create_tag", {"title": "x", "__proto__": {"admin": True}})
    assert data == {"code": "api", "description": "Invalid parameter: __proto__ (illegal key)"}
    data = admin.call("get_tag", {"id": "constructor"})
    assert data["code"] == "api" and "reserved word" in data["description"]


def test_wrong_types_get_clear_errors_and_change_nothing(admin: Api, uid):
    before = admin.ok("get_tags")["rows"]
    data = admin.call("create_tag", {"id": uid, "title": ["a"]})
    assert data == {"code": "api", "description": "Parameter is not type string: title"}
    assert admin.call("get_category", {"id": None})["code"] == "api"
    assert admin.call("create_role", {"title": "R", "privileges": "x"})["code"] == "api"
    assert admin.ok("get_tags")["rows"] == before


def test_html_in_title_is_refused(admin: Api):
    data = admin.call("create_tag", {"title": "<b>x</b>"})
    assert data["code"] == "api" and "HTML" in data["description"]


def test_pretty_output_uses_tabs(conductor):
    text = httpx.get(conductor.url + "/api/app/ping/v1?pretty=1").text
    assert text == '{\n\t"code": 0\n}\n'


def test_options_preflight_echoes_origin(conductor):
    resp = httpx.options(conductor.url + "/api/app/get_tags/v1",
                         headers={"Origin": "https://ops.example", "Access-Control-Request-Headers": "x-api-key"})
    assert resp.headers["access-control-allow-origin"] == "https://ops.example"
    assert resp.headers["access-control-allow-headers"] == "x-api-key"


def test_openapi_document_lists_every_verb(conductor):
    doc = httpx.get(conductor.url + "/api/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert "/api/app/create_tag/v1" in doc["paths"]
    assert "/api/user/login/v1" in doc["paths"]
    create_tag = doc["paths"]["/api/app/create_tag/v1"]["post"]
    assert create_tag["x-sundial-privilege"] == "create_tags"
    assert "title" in create_tag["requestBody"]["content"]["application/json"]["schema"]["properties"]


def test_health_reports_primary(conductor):
    resp = httpx.get(conductor.url + "/health")
    assert resp.status_code == 200 and resp.json() == {"code": 0, "master": True}
