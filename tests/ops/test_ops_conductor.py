"""One real conductor set up as an operator would: HTTPS on, an outbound proxy that is down, a
tight history cap. It must serve HTTPS with its own certificate, fail web hooks clearly while
staying up, trim and back up during maintenance without stopping, and refuse a restart onto a
broken certificate.
"""

from __future__ import annotations

import base64
import gzip
import json
import sqlite3
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from harness import Api, ConductorProcess, free_port, login
from sundial.tls import self_signed_pair

JOB_IDS = ["jmk00000000first", "jmk00000000secnd", "jmk00000000third"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConductorProcess]:
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    settings = {"WebServer.https": True, "WebServer.https_port": free_port(), "db_maint.jobs.max_rows": 1,
                "Storage.backups": 2}
    env = {"HTTP_PROXY": dead_proxy, "HTTPS_PROXY": dead_proxy, "NO_PROXY": ""}
    with ConductorProcess(home=tmp_path_factory.mktemp("ops") / "home", settings=settings, env=env) as proc:
        yield proc.start(timeout=120)


@pytest.fixture(scope="module")
def admin(server: ConductorProcess) -> Iterator[Api]:
    with login(server.url, "admin", "admin") as api:
        yield api


def test_https_answers_with_the_generated_certificate(server: ConductorProcess) -> None:
    port = int(server.settings["WebServer.https_port"])
    pinned = ssl.create_default_context(cafile=str(server.home / "conf" / "tls.crt"))
    resp = httpx.get(f"https://localhost:{port}/health", verify=pinned)
    assert resp.json() == {"code": 0, "master": True}
    with pytest.raises(httpx.ConnectError):  # not trusted without the pin
        httpx.get(f"https://localhost:{port}/health")


def test_an_unreachable_proxy_fails_the_hook_clearly_and_the_service_stays_up(admin: Api,
                                                                              server: ConductorProcess) -> None:
    answer = admin.call("test_web_hook", {"id": "viaproxy", "title": "Via proxy", "url": "http://hooks.example.com/x",
                                          "method": "POST", "headers": [], "body": ""})
    assert answer["code"] == "webhook", answer
    assert "proxy" in answer["description"].lower() or "connect" in answer["description"].lower(), answer
    assert httpx.post(server.url + "/api/app/ping/v1").json()["code"] == 0


def _jobs_backup() -> bytes:
    lines = ["# xyOps Data Export v1.0"]
    for number, job_id in enumerate(JOB_IDS):
        lines.append(json.dumps({"index": "jobs", "id": job_id, "record": {
            "id": job_id, "event": "emaint", "code": 0, "completed": 1767225600 + number, "started": 1767225600}}))
        lines.append(json.dumps({"key": f"logs/jobs/{job_id}/log.txt.gz",
                                 "value": base64.b64encode(gzip.compress(b"log\n")).decode()}))
    return ("\n".join(lines) + "\n").encode()


def _wait_idle(admin: Api, title: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        done = admin.ok("search_activity", {"query": "action:internal_job", "limit": 10})["rows"]
        if not admin.ok("get_internal_jobs")["rows"] and any(r["job"]["title"] == title for r in done):
            return
        time.sleep(0.2)
    raise AssertionError(f"maintenance did not finish ({title})")


def test_maintenance_trims_history_and_backs_up_sqlite_online(admin: Api, server: ConductorProcess) -> None:
    up = admin.http.post("/api/app/admin_import_data/v1", headers=admin.headers,
                         files={"file1": ("jobs.txt", _jobs_backup(), "text/plain")}).json()
    assert up["code"] == 0, up
    deadline = time.time() + 60
    while admin.ok("search_jobs", {"query": "event:emaint", "limit": 10})["list"]["length"] < 3:
        assert time.time() < deadline, "the jobs were not imported"
        time.sleep(0.2)
    admin.ok("update_global_state", {"scheduler.enabled": True})
    assert admin.ok("admin_run_maintenance")["id"].startswith("i")
    _wait_idle(admin, "Archive logs")
    rows = admin.ok("search_jobs", {"query": "event:emaint", "limit": 10})["rows"]
    assert [row["id"] for row in rows] == [JOB_IDS[-1]]  # the newest stays
    archive = server.home / "data" / "jobs"
    assert [p.name for p in archive.glob("jmk*.log.gz")] == [f"{JOB_IDS[-1]}.log.gz"]
    backups = sorted((server.home / "data" / "backups").glob("sundial-*.db.gz"))
    assert len(backups) == 1
    copy = server.home / "restored.db"
    copy.write_bytes(gzip.decompress(backups[0].read_bytes()))
    with sqlite3.connect(copy) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT count(*) FROM users").fetchone()[0] >= 1
    titles = {r["job"]["title"] for r in admin.ok("search_activity", {"query": "action:internal_job",
                                                                      "limit": 20})["rows"]}
    assert {"Database maintenance", "Storage maintenance", "Database backup", "Archive logs"} <= titles


def test_restart_onto_a_broken_certificate_is_refused_and_the_conductor_stays_up(server: ConductorProcess) -> None:
    key = server.home / "conf" / "tls.key"
    original = key.read_bytes()
    key.write_bytes(self_signed_pair("elsewhere")[1])
    try:
        run = subprocess.run([sys.executable, "-m", "sundial", "restart", "--home", str(server.home)],
                             capture_output=True, text=True, timeout=120)
    finally:
        key.write_bytes(original)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Not restarting" in run.stderr and "does not match its private key" in run.stderr
    assert httpx.post(server.url + "/api/app/ping/v1").json()["code"] == 0
    assert server.proc is not None and server.proc.poll() is None



def test_admin_stats_and_config_verbs(admin: Api, server: ConductorProcess) -> None:
    stats = admin.ok("admin_stats")["stats"]
    assert stats["storage_engine"] == "SQLite" and stats["db"]["sqlite"] > 0 and stats["db"]["records"]["users"] >= 1
    got = admin.ok("admin_get_config")
    assert "secret_key" not in got["config"] and got["config"]["WebServer"]["https"] is True
    assert "maintenance" in got["sample"] and "| `WebServer.https` |" in got["markdown"]
    assert admin.call("admin_update_config", {"secret_key": "x"})["description"] == \
        "Cannot update reserved configuration keys via API."
    admin.ok("admin_update_config", {"no_such_key": 1})  # any path is stored, as in xyOps
    assert "expected a number" in admin.call("admin_update_config", {"WebServer.port": "eighty"})["description"]
    admin.ok("admin_update_config", {"client.items_per_page": 75})
    overrides = json.loads((server.home / "conf" / "overrides.json").read_text())
    assert overrides["client.items_per_page"] == 75 and "secret_key" not in admin.ok("admin_get_config")["overrides"]
    assert admin.ok("admin_get_config")["config"]["client"]["items_per_page"] == 75
