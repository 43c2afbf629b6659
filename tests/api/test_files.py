"""Stored files: served by key, never outside the files folder, HTML always downloaded."""

from __future__ import annotations

import httpx

from harness import Api


def test_files_are_served_by_key_safely(conductor, admin: Api):
    folder = conductor.home / "data" / "files" / "jobs" / "jx" / "abc"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "out.csv").write_text("a,b\n1,2\n")
    (folder / "page.html").write_text("<script>alert(1)</script>")
    (conductor.home / "data" / "secret.txt").write_text("nope")
    resp = httpx.get(conductor.url + "/files/jobs/jx/abc/out.csv")
    assert resp.status_code == 200 and resp.text == "a,b\n1,2\n" and resp.headers.get("etag")
    ranged = httpx.get(conductor.url + "/files/jobs/jx/abc/out.csv", headers={"Range": "bytes=0-2"})
    assert ranged.status_code == 206 and ranged.text == "a,b"
    html = httpx.get(conductor.url + "/files/jobs/jx/abc/page.html")
    assert html.headers["content-disposition"].startswith("attachment")
    assert httpx.get(conductor.url + "/files/../secret.txt").status_code == 404
    assert httpx.get(conductor.url + "/files/jobs/jx/abc/%2e%2e/%2e%2e/%2e%2e/%2e%2e/secret.txt").status_code == 404
    verb = httpx.get(conductor.url + "/api/app/file/v1", params={"path": "files/jobs/jx/abc/out.csv"})
    assert verb.text == "a,b\n1,2\n"
    assert httpx.get(conductor.url + "/api/app/file/v1", params={"path": "../secret.txt"}).status_code == 404


def test_empty_uploads_are_refused_and_leave_no_temp_file(conductor):
    temp = conductor.home / "temp"
    before = set(temp.glob("upload-*")) if temp.exists() else set()
    resp = httpx.post(conductor.url + "/api/app/echo/v1", files={"f": ("empty.txt", b"")})
    assert resp.json()["code"] == "api" and "empty" in resp.json()["description"]
    resp = httpx.post(conductor.url + "/api/app/echo/v1", files={"f": ("a.txt", b"hello")})
    assert resp.json()["files"]["f"]["size"] == 5
    after = set(temp.glob("upload-*"))
    assert after == before  # echo kept nothing
