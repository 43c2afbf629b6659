"""Backups through the API of real conductors, on SQLite and on PostgreSQL.

Each back end gets one conductor with a known secret key, so an xyOps backup whose secret
was sealed under that key (built by hand in `xybk_fixture`) must decrypt after the import.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from xybk_fixture import JOB_FILE, JOB_FILE_KEY, JOB_ID, JOB_LOG, PASSWORD, SECRET_FIELDS, SECRET_ID, USER, xybk_gz

from harness import Api, ConductorProcess, login, postgres_reachable

KEY = "backup-api-test-key"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest) -> Iterator[ConductorProcess]:
    if request.param == "postgres" and not postgres_reachable():
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    with ConductorProcess(request.param, env={"SUNDIAL_secret_key": KEY}) as proc:
        yield proc.start(timeout=120)


@pytest.fixture(scope="module")
def admin(server: ConductorProcess) -> Iterator[Api]:
    with login(server.url, "admin", "admin") as api:
        yield api


def export(api: Api, params: dict[str, Any]) -> bytes:
    resp = api.http.post("/api/app/admin_export_data/v1", json=params, headers=api.headers)
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/gzip", resp.text[:300]
    return resp.content


def upload(api: Api, data: bytes, name: str = "backup.txt.gz", mime: str = "application/gzip",
           **form: str) -> dict[str, Any]:
    resp = api.http.post("/api/app/admin_import_data/v1", files={"file1": (name, data, mime)}, data=form,
                         headers=api.headers)
    result: dict[str, Any] = resp.json()
    return result


def finished(api: Api, job_id: str, timeout: float = 60) -> dict[str, Any]:
    """The internal job's summary from its `internal_job` activity record."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        rows = api.ok("search_activity", {"query": f"action:internal_job keywords:{job_id}", "limit": 1})["rows"]
        if rows:
            summary: dict[str, Any] = rows[0]["job"]
            return summary
        time.sleep(0.2)
    raise AssertionError(f"internal job {job_id} did not finish in {timeout} s")


def import_ok(api: Api, data: bytes, **form: str) -> dict[str, Any]:
    answer = upload(api, data, **form)
    assert answer["code"] == 0, answer
    summary = finished(api, answer["id"])
    assert summary["code"] == 0, summary["details"]
    api.ok("update_global_state", {"scheduler.enabled": True})
    return summary


def test_full_backup_round_trip(admin: Api, server: ConductorProcess, uid: str) -> None:
    admin.ok("create_tag", {"id": uid, "title": "Tag " + uid})
    admin.ok("create_category", {"id": "c" + uid, "title": "Cat " + uid})
    fields = [{"name": "TOKEN", "value": "v-" + uid}]
    admin.ok("create_secret", {"id": "s" + uid, "title": "Secret " + uid, "fields": fields})
    admin.ok("admin_create", {"username": "u" + uid, "password": "pw-" + uid, "email": "u@x.y",
                              "full_name": "U", "privileges": {}}, ns="user")
    backup = export(admin, {"lists": "all", "indexes": "all", "extras": "all"})
    text = gzip.decompress(backup).decode()
    assert text.startswith("# xyOps Data Export v1.0\n") and "pw-" + uid not in text and "v-" + uid not in text
    admin.ok("delete_tag", {"id": uid})
    admin.ok("delete_category", {"id": "c" + uid})
    admin.ok("delete_secret", {"id": "s" + uid})
    admin.ok("admin_delete", {"username": "u" + uid}, ns="user")
    import_ok(admin, backup)
    assert admin.ok("get_tag", {"id": uid})["tag"]["title"] == "Tag " + uid
    assert admin.ok("get_category", {"id": "c" + uid})["category"]["title"] == "Cat " + uid
    assert admin.ok("decrypt_secret", {"id": "s" + uid})["fields"] == fields
    login(server.url, "u" + uid, "pw-" + uid).close()


def test_an_xyops_backup_imports_with_decryptable_secrets(admin: Api, server: ConductorProcess) -> None:
    summary = import_ok(admin, xybk_gz(KEY))
    assert "index alerts" in summary["details"]  # reported, skipped
    assert admin.ok("decrypt_secret", {"id": SECRET_ID})["fields"] == SECRET_FIELDS
    assert admin.ok("get_tag", {"id": "nightly"})["tag"]["title"] == "Nightly"
    assert admin.ok("get_job", {"id": JOB_ID})["job"]["tags"] == ["prod"]
    log = admin.http.post("/api/app/get_job_log/v1", json={"id": JOB_ID}, headers=admin.headers)
    assert log.text == JOB_LOG
    assert httpx.get(f"{server.url}/{JOB_FILE_KEY}").content == JOB_FILE
    login(server.url, USER, PASSWORD).close()


def test_transfer_tokens_are_single_use_and_bound_to_the_principal(admin: Api, server: ConductorProcess) -> None:
    params = {"lists": ["tags"], "indexes": [], "extras": []}
    token = admin.ok("get_transfer_token", params)["token"]
    assert len(token) == 64
    first = httpx.get(f"{server.url}/api/app/admin_export_data/v1", params={"token": token})
    assert first.status_code == 200 and first.content[:2] == b"\x1f\x8b"
    assert "# List: global/tags" in gzip.decompress(first.content).decode()
    again = httpx.get(f"{server.url}/api/app/admin_export_data/v1", params={"token": token}).json()
    assert again == {"code": "admin", "description": "Access denied."}
    key = admin.ok("create_api_key", {"title": "backup key", "privileges": {"admin": True}})["plain_key"]
    by_key = Api(server.url, {"X-API-Key": key})
    minted = by_key.ok("get_transfer_token", params)["token"]
    assert httpx.get(f"{server.url}/api/app/admin_export_data/v1", params={"token": minted}).status_code == 200
    by_key.close()


def test_bad_requests_and_bad_files_change_nothing(admin: Api, server: ConductorProcess, uid: str) -> None:
    admin.ok("create_tag", {"id": uid, "title": "Keep " + uid})
    tags = admin.ok("get_tags")["rows"]
    assert admin.call("admin_export_data", {"lists": "nonsense"})["description"] == \
        "Invalid request (lists must be an array)."
    assert admin.call("admin_import_data", {})["description"] == "No file data found for import"
    good = export(admin, {"lists": ["tags"]})
    refused = {
        "truncated": (good[: len(good) - 12], "backup.txt.gz", "unexpected end of file"),
        "corrupt": (b"\x1f\x8b\x08\x00garbage-garbage-garbage", "backup.txt.gz", "Failed to process file"),
        "not gzip": (b"not gzip at all\n", "backup.txt.gz", "incorrect header check"),
        "wrong format": (b'global/schedule - {"type":"list"}\n', "cronicle.txt", "Cronicle"),
        "no rows": (b"# only a comment\n", "empty.txt", "No valid rows found in file"),
    }
    for what, (data, name, message) in refused.items():
        answer = upload(admin, data, name=name, mime="application/gzip" if name.endswith(".gz") else "text/plain")
        assert answer["code"] == "admin" and message in answer["description"], (what, answer)
    assert "Cronicle" in upload(admin, good, format="cronicle")["description"]
    bad_line = gzip.decompress(good).replace(b"# End of file", b'{"key":"global/tags/0","value":{"items":5}}')
    answer = upload(admin, bad_line, name="bad.txt", mime="text/plain")
    summary = finished(admin, answer["id"])
    assert summary["code"] == "import" and "Nothing Was Changed" in summary["details"], summary
    assert "a list page needs an items array" in summary["details"]
    assert admin.ok("get_tags")["rows"] == tags
    assert admin.ok("get_global_state")["state"]["scheduler"]["enabled"] is True  # not quiesced for nothing
    assert httpx.post(server.url + "/api/app/ping/v1").json()["code"] == 0


def test_privileges(admin: Api, server: ConductorProcess, uid: str) -> None:
    admin.ok("admin_create", {"username": "x" + uid, "password": "pw", "email": "x@y.z", "full_name": "X",
                              "privileges": {"bulk_export": True}}, ns="user")
    exporter = login(server.url, "x" + uid, "pw")
    assert export(exporter, {"lists": ["tags"]})[:2] == b"\x1f\x8b"
    assert upload(exporter, b"{}\n")["code"] == "access"
    assert exporter.call("get_transfer_token", {"lists": ["tags"]})["code"] == "access"
    assert Api(server.url).call("admin_export_data", {"lists": ["tags"]})["code"] == "session"
    exporter.close()
