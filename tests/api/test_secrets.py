"""Secrets over HTTP against real conductors (SQLite and PostgreSQL), plus both rotation models.

Every response of this module is recorded; the last test scans those responses (all but
`decrypt_secret`, whose purpose is to return values), the activity log and every file of
the conductor's home for the secret values used here, and fails if one appears.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from harness import PG_DB, PG_HOST, Api, ConductorProcess, login, postgres_reachable

START_TIMEOUT = 120  # conductors of their own; a busy host makes cold starts slow
USED: dict[str, set[str]] = {}          # conductor url -> secret values used against it
RESPONSES: dict[str, list[tuple[str, str]]] = {}  # conductor url -> (verb, body) of every answer


class RecordingApi(Api):
    """An Api whose every answer is kept for the leak scan."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(base_url, headers)
        self.base_url = base_url

    def call(self, verb: str, params: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        data = super().call(verb, params, **kw)
        RESPONSES.setdefault(self.base_url, []).append((verb, json.dumps(data)))
        return data


def value_for(url: str) -> str:
    value = "sv-" + uuid.uuid4().hex
    USED.setdefault(url, set()).add(value)
    return value


def fields_of(name: str, value: str) -> list[dict[str, str]]:
    return [{"name": name, "value": value}]


@pytest.fixture(scope="module")
def vault(conductor: ConductorProcess) -> Iterator[RecordingApi]:
    api = RecordingApi(conductor.url, login(conductor.url, "admin", "admin").headers)
    yield api
    api.close()


def key_in_force(home: Path) -> str:
    return str(json.loads((home / "conf" / "overrides.json").read_text())["secret_key"])


def reference_decrypt(record: dict[str, Any], secret_id: str, key: str) -> Any:
    raw = {k: base64.b64decode(record[k]) for k in ("salt", "iv", "tag", "ct")}
    derived = hashlib.scrypt(key.encode(), salt=raw["salt"], n=16384, r=8, p=1, dklen=32)
    return json.loads(AESGCM(derived).decrypt(raw["iv"], raw["ct"] + raw["tag"], secret_id.encode()))


def reference_fingerprint(key: str) -> str:
    label = b"sundial/key-fingerprint/v1"
    stretched = hashlib.scrypt(key.encode(), salt=label, n=16384, r=8, p=1, dklen=32)
    return hashlib.sha256(label + b"\x00" + stretched).hexdigest()[:16]


def stored_records(proc: ConductorProcess, prefix: str = "") -> dict[str, Any]:
    """Key/value records straight from the database, bypassing the conductor."""
    if proc.backend == "sqlite":
        with sqlite3.connect(proc.home / "data" / "sundial.db") as db:
            rows = db.execute("SELECT key, value FROM records WHERE key LIKE ?", (prefix + "%",)).fetchall()
        return {key: json.loads(value) for key, value in rows}
    sql = f"SELECT key, value::text FROM \"{proc.schema}\".records WHERE key LIKE '{prefix}%'"
    out = subprocess.run(["psql", "-h", PG_HOST, "-U", "postgres", "-d", PG_DB, "-At", "-F", "\t", "-c", sql],
                         capture_output=True, text=True, check=True).stdout
    return {key: json.loads(value) for key, value in (line.split("\t", 1) for line in out.splitlines() if line)}


# -- CRUD ------------------------------------------------------------------------------------

def test_crud_round_trip_never_returns_values(conductor: ConductorProcess, vault: RecordingApi, uid: str) -> None:
    value = value_for(conductor.url)
    sid = "z" + uid
    made = vault.ok("create_secret", {"id": sid, "title": "Round trip", "fields": fields_of("DB_PASSWORD", value),
                                      "events": ["ev1"], "plugins": ["shellplug"], "notes": "plain notes"})["secret"]
    assert made["names"] == ["DB_PASSWORD"] and made["revision"] == 1 and made["enabled"] is True
    assert made["events"] == ["ev1"] and made["categories"] == [] and made["web_hooks"] == []
    assert set(made) >= {"id", "title", "icon", "notes", "username", "created", "modified"}
    assert sid in [row["id"] for row in vault.ok("get_secrets")["rows"]]
    assert vault.ok("get_secret", {"id": sid})["secret"] == made
    assert vault.ok("decrypt_secret", {"id": sid})["fields"] == fields_of("DB_PASSWORD", value)
    vault.ok("update_secret", {"id": sid, "title": "Renamed"})
    got = vault.ok("get_secret", {"id": sid})["secret"]
    assert got["title"] == "Renamed" and got["revision"] == 2 and got["names"] == ["DB_PASSWORD"]
    assert vault.ok("decrypt_secret", {"id": sid})["fields"] == fields_of("DB_PASSWORD", value)
    second = value_for(conductor.url)
    vault.ok("update_secret", {"id": sid, "fields": [*fields_of("A", second), *fields_of("B", value)]})
    got = vault.ok("get_secret", {"id": sid})["secret"]
    assert got["names"] == ["A", "B"] and got["revision"] == 3
    assert vault.ok("decrypt_secret", {"id": sid})["fields"] == [*fields_of("A", second), *fields_of("B", value)]
    vault.ok("delete_secret", {"id": sid})
    assert vault.call("get_secret", {"id": sid}) == {"code": "notfound", "description": f"Secret not found: {sid}"}
    assert vault.call("decrypt_secret", {"id": sid})["code"] == "secret"


BAD_INPUT = [
    ({"fields": []}, "api", "Missing parameter: title"),
    ({"title": "t", "fields": "x"}, "api", "Parameter is not an array: fields"),
    ({"title": "t", "events": "ev1"}, "api", "Parameter is not an array: events"),
    ({"title": {"a": 1}}, "api", "Parameter is not type string: title"),
    ({"title": "t", "fields": ["x"]}, "api", "Malformed parameter: fields (item 0 is not an object)"),
    ({"title": "t", "fields": [{"name": "A", "value": 5}]}, "api", "Secret value must be a string: A"),
    ({"title": "t", "fields": [{"name": "A=B", "value": "x"}]}, "api", "Invalid secret variable name: A=B"),
    ({"title": "t", "fields": [{"name": "toString", "value": "x"}]}, "api",
     "Invalid secret variable name: toString"),
    ({"title": "t", "fields": [{"name": "A", "value": "a" * 70000}]}, "api",
     "Secret value is too large: A (limit: 65536 bytes)"),
    ({"title": "t", "fields": [{"name": f"V{i}", "value": "x"} for i in range(101)]}, "api",
     "Too many secret fields (limit: 100)"),
    ({"title": "t", "plugins": ["Not An Id"]}, "api", "Malformed parameter: plugins (item 0 is not a valid id)"),
    ({"id": "Bad Id", "title": "t"}, "api", "Malformed parameter: id"),
]


@pytest.mark.parametrize("params,code,description", BAD_INPUT)
def test_bad_input_is_refused_clearly_and_changes_nothing(vault: RecordingApi, params: dict[str, Any], code: str,
                                                          description: str) -> None:
    before = vault.ok("get_secrets")["list"]["length"]
    assert vault.call("create_secret", params) == {"code": code, "description": description}
    assert vault.ok("get_secrets")["list"]["length"] == before


def test_bad_updates_and_unknown_ids_change_nothing(conductor: ConductorProcess, vault: RecordingApi,
                                                    uid: str) -> None:
    value = value_for(conductor.url)
    sid = "z" + uid
    vault.ok("create_secret", {"id": sid, "title": "Keep", "fields": fields_of("KEEP", value)})
    before = vault.ok("get_secret", {"id": sid})["secret"]
    assert vault.call("update_secret", {"id": sid, "fields": [{"name": "A", "value": ["x"]}]})["code"] == "api"
    assert vault.call("update_secret", {"id": sid, "categories": "x"})["code"] == "api"
    assert vault.call("update_secret", {"id": "zunknown" + uid, "title": "x"}) == {
        "code": "secret", "description": f"Secret not found: zunknown{uid}"}
    assert vault.call("delete_secret", {"id": "zunknown" + uid})["code"] == "secret"
    assert vault.call("create_secret", {"id": sid, "title": "dup"}) == {
        "code": "secret", "description": f"That Secret ID already exists: {sid}"}
    assert vault.call("delete_secret", {})["description"] == "Missing parameter: id"
    assert vault.ok("get_secret", {"id": sid})["secret"] == before
    assert vault.ok("decrypt_secret", {"id": sid})["fields"] == fields_of("KEEP", value)
    vault.ok("delete_secret", {"id": sid})


# -- privileges and audit --------------------------------------------------------------------

def test_non_admin_reads_metadata_only(conductor: ConductorProcess, vault: RecordingApi, uid: str) -> None:
    value = value_for(conductor.url)
    sid = "z" + uid
    vault.ok("create_secret", {"id": sid, "title": "Admin only", "fields": fields_of("ONLY", value)})
    name = "u" + uid
    vault.ok("admin_create", {"username": name, "password": "pw-" + uid, "email": f"{name}@example.com",
                              "full_name": "No Vault", "privileges": {"create_events": True}}, ns="user")
    user = RecordingApi(conductor.url, login(conductor.url, name, "pw-" + uid).headers)
    try:
        assert user.ok("get_secret", {"id": sid})["secret"]["names"] == ["ONLY"]
        assert sid in [row["id"] for row in user.ok("get_secrets")["rows"]]
        for verb, params in (("decrypt_secret", {"id": sid}), ("create_secret", {"title": "x"}),
                             ("update_secret", {"id": sid, "title": "x"}), ("delete_secret", {"id": sid}),
                             ("admin_rotate_secret_key", {"password": "pw-" + uid}), ("get_internal_jobs", {})):
            assert user.call(verb, params)["code"] == "access", verb
        assert vault.ok("get_secret", {"id": sid})["secret"]["title"] == "Admin only"
    finally:
        user.close()
        vault.call("admin_delete", {"username": name}, ns="user")
        vault.ok("delete_secret", {"id": sid})


def test_every_change_and_every_decryption_is_audited(conductor: ConductorProcess, vault: RecordingApi,
                                                      uid: str) -> None:
    value = value_for(conductor.url)
    sid = "z" + uid
    vault.ok("create_secret", {"id": sid, "title": "Audited", "fields": fields_of("AUDIT", value)})
    vault.ok("update_secret", {"id": sid, "notes": "n"})
    made = vault.ok("create_api_key", {"title": "vault " + uid, "active": 1, "privileges": {"admin": True}})
    by_key = RecordingApi(conductor.url, {"X-API-Key": made["plain_key"], "User-Agent": "vault-test/1.0",
                                          "X-Custom": "kept", "Cookie": "theme=dark"})
    try:
        assert by_key.ok("decrypt_secret", {"id": sid})["fields"] == fields_of("AUDIT", value)
    finally:
        by_key.close()
        vault.ok("delete_api_key", {"id": made["api_key"]["id"]})
    vault.ok("delete_secret", {"id": sid})
    rows = vault.ok("search_activity", {"query": f"keywords:{sid}", "limit": 50})["rows"]
    actions = sorted(row["action"] for row in rows)
    assert actions == ["secret_access", "secret_create", "secret_delete", "secret_update"]
    access = next(row for row in rows if row["action"] == "secret_access")
    assert access["username"] == made["api_key"]["id"] and access["description"] == "Audited"
    assert access["ip"] and access["secret"]["id"] == sid and "fields" not in access["secret"]
    assert access["headers"]["x-custom"] == "kept" and access["useragent"]
    assert not {"cookie", "x-api-key", "authorization", "x-session-id"} & set(access["headers"])


def test_stored_format_is_xyops_and_bound_to_the_id(conductor: ConductorProcess, vault: RecordingApi,
                                                    uid: str) -> None:
    key = key_in_force(conductor.home)
    values = [value_for(conductor.url) for _ in range(2)]
    ids = ["z" + uid + "a", "z" + uid + "b"]
    for sid, value in zip(ids, values, strict=True):
        vault.ok("create_secret", {"id": sid, "title": sid, "fields": fields_of("V", value)})
    records = stored_records(conductor, "secrets/z" + uid)
    first, second = records[f"secrets/{ids[0]}"], records[f"secrets/{ids[1]}"]
    assert set(first) == {"v", "alg", "salt", "iv", "tag", "ct", "kep"} and first["v"] == 1  # kep: xyOps ignores it
    assert first["alg"] == "aes-256-gcm" and len(base64.b64decode(first["iv"])) == 12
    assert first["salt"] != second["salt"] and first["iv"] != second["iv"]  # fresh salt and IV per write (§2)
    assert reference_decrypt(first, ids[0], key) == fields_of("V", values[0])
    with pytest.raises(Exception):  # noqa: B017 - any failure of the tag check will do
        reference_decrypt(first, ids[1], key)
    canary = stored_records(conductor, "global/key_canary")["global/key_canary"]
    assert canary["fingerprint"] == reference_fingerprint(key)
    for sid in ids:
        vault.ok("delete_secret", {"id": sid})


def test_rotate_key_endpoint_refusals_change_nothing(conductor: ConductorProcess, vault: RecordingApi,
                                                     uid: str) -> None:
    value = value_for(conductor.url)
    sid = "z" + uid
    vault.ok("create_secret", {"id": sid, "title": "Stays", "fields": fields_of("STAY", value)})
    url = conductor.url + "/api/maintenance/rotate-key"
    body = {"old_key": "00" * 32, "new_key": "11" * 32}
    assert httpx.post(url, json=body).status_code == 401
    weak = vault.ok("create_api_key", {"title": "weak " + uid, "active": 1, "privileges": {"run_jobs": True}})
    strong = vault.ok("create_api_key", {"title": "strong " + uid, "active": 1, "privileges": {"admin": True}})
    try:
        assert httpx.post(url, json=body, headers={"Authorization": "Bearer " + weak["plain_key"]}).status_code == 403
        bearer = {"Authorization": "Bearer " + strong["plain_key"]}
        bad = httpx.post(url, json={"old_key": "zz", "new_key": "11" * 32}, headers=bearer)
        assert bad.status_code == 400 and bad.json()["code"] == "api" and "32-byte hex" in bad.json()["description"]
        same = httpx.post(url, json={"old_key": "11" * 32, "new_key": "11" * 32}, headers=bearer)
        assert same.status_code == 400
        wrong = httpx.post(url, json=body, headers=bearer)
        assert (wrong.status_code, wrong.json()) == (400, {"code": "auth", "description": "Old master key incorrect"})
        assert vault.call("admin_rotate_secret_key", {"password": "not-it"}) == {
            "code": "admin", "description": "Incorrect password."}
        key_api = RecordingApi(conductor.url, {"X-API-Key": strong["plain_key"]})
        by_key = key_api.call("admin_rotate_secret_key", {"password": "admin"})
        assert by_key["code"] == "admin" and "needs a user session" in by_key["description"]
        key_api.close()
    finally:
        vault.ok("delete_api_key", {"id": weak["api_key"]["id"]})
        vault.ok("delete_api_key", {"id": strong["api_key"]["id"]})
    assert vault.ok("decrypt_secret", {"id": sid})["fields"] == fields_of("STAY", value)
    assert vault.ok("get_global_state")["state"]["scheduler"]["enabled"] is True
    vault.ok("delete_secret", {"id": sid})


# -- rotations on conductors of their own ----------------------------------------------------

def wait_internal_jobs_done(api: Api, timeout: float = 60) -> list[float]:
    progress: list[float] = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        rows = api.ok("get_internal_jobs")["rows"]
        if not rows:
            return progress
        progress.append(rows[0]["progress"])
        time.sleep(0.05)
    raise AssertionError("the rotation's internal job did not finish")


@pytest.mark.timeout(600)
def test_model_a_rotates_persists_and_survives_a_restart(fresh_conductor: Any) -> None:
    proc = fresh_conductor().start(timeout=START_TIMEOUT)
    api = RecordingApi(proc.url, login(proc.url, "admin", "admin").headers)
    values = {"zrot" + str(i): value_for(proc.url) for i in range(3)}
    for sid, value in values.items():
        api.ok("create_secret", {"id": sid, "title": sid, "fields": fields_of("ROT", value)})
    old_key = key_in_force(proc.home)
    canary = stored_records(proc, "global/key_canary")
    with sqlite3.connect(proc.home / "data" / "sundial.db") as db:  # prove the canary errors, then restore
        db.execute("DELETE FROM records WHERE key = 'global/key_canary'")
    missing = httpx.post(proc.url + "/api/maintenance/rotate-key", json={"old_key": old_key, "new_key": "ab" * 32},
                         headers={"X-Session-ID": api.headers["X-Session-ID"]})
    assert (missing.status_code, missing.json()) == (409, {"code": "canary",
                                                           "description": "Integrity canary not found"})
    assert api.call("admin_rotate_secret_key", {"password": "admin"})["description"] == "Integrity canary not found"
    with sqlite3.connect(proc.home / "data" / "sundial.db") as db:
        db.execute("INSERT INTO records (key, value) VALUES (?, ?)",
                   ("global/key_canary", json.dumps(canary["global/key_canary"])))
    started = api.ok("admin_rotate_secret_key", {"password": "admin"})
    assert started["id"].startswith("i")
    wait_internal_jobs_done(api)
    new_key = key_in_force(proc.home)
    assert new_key != old_key and len(new_key) == 64 and int(new_key, 16) >= 0
    assert stored_records(proc, "global/key_canary")["global/key_canary"]["fingerprint"] == \
        reference_fingerprint(new_key)
    assert "global/key_rotation_pending" not in stored_records(proc, "global/")
    assert api.ok("get_global_state")["state"]["scheduler"]["enabled"] is False
    report = api.ok("search_activity", {"query": "action:internal_job", "limit": 5})["rows"][0]
    assert "Secret Key Rotation Completed" in report["job"]["details"] and report["job"]["secrets"] == 3
    for sid, value in values.items():
        assert reference_decrypt(stored_records(proc, f"secrets/{sid}")[f"secrets/{sid}"], sid, new_key) == \
            fields_of("ROT", value)
    proc.stop()
    proc.start(timeout=START_TIMEOUT)
    api = RecordingApi(proc.url, login(proc.url, "admin", "admin").headers)
    for sid, value in values.items():
        assert api.ok("decrypt_secret", {"id": sid})["fields"] == fields_of("ROT", value)
    assert_no_leak(proc, api.base_url)


@pytest.mark.timeout(600)
def test_model_b_with_an_env_key_switches_at_once_and_guards_the_restart(fresh_conductor: Any) -> None:
    """On PostgreSQL (model A above and the crash tests run on SQLite)."""
    if not postgres_reachable():
        pytest.skip("PostgreSQL is not reachable")
    old, new = "c0" * 32, "d1" * 32
    proc = fresh_conductor(backend="postgres", env={"SUNDIAL_secret_key": old}).start(timeout=START_TIMEOUT)
    api = RecordingApi(proc.url, login(proc.url, "admin", "admin").headers)
    assert api.call("admin_rotate_secret_key", {"password": "admin"}) == {
        "code": "admin", "description": "Cannot rotate secret key when specified via environment variable."}
    values = {"zb" + str(i): value_for(proc.url) for i in range(3)}
    for sid, value in values.items():
        api.ok("create_secret", {"id": sid, "title": sid, "fields": fields_of("B", value)})
    made = api.ok("create_api_key", {"title": "rotator", "active": 1, "privileges": {"admin": True}})
    resp = httpx.post(proc.url + "/api/maintenance/rotate-key", json={"old_key": old, "new_key": new},
                      headers={"Authorization": "Bearer " + made["plain_key"]}, timeout=60)
    answer = resp.json()
    RESPONSES.setdefault(proc.url, []).append(("rotate-key", resp.text))
    assert resp.status_code == 200 and answer["code"] == 0
    assert answer["rotated"] == {"secrets": 3, "canary": 1, "other": 0} and answer["key_epoch"] == 2
    assert answer["restart_required"] is True and "SUNDIAL_secret_key" in answer["persist_to"]
    assert old not in resp.text and new not in resp.text
    for sid, value in values.items():  # the running process uses the new key at once
        assert api.ok("decrypt_secret", {"id": sid})["fields"] == fields_of("B", value)
    later = value_for(proc.url)
    api.ok("create_secret", {"id": "zlater", "title": "later", "fields": fields_of("B", later)})
    values["zlater"] = later
    proc.stop()
    with pytest.raises(RuntimeError) as refused:  # restarting with the old key is refused, clearly
        proc.start(timeout=START_TIMEOUT)
    assert "exited with 1" in str(refused.value) and "MASTER KEY INTEGRITY CHECK FAILED" in str(refused.value)
    assert reference_fingerprint(new) in str(refused.value)
    proc.env["SUNDIAL_secret_key"] = new
    proc.start(timeout=START_TIMEOUT)
    api = RecordingApi(proc.url, login(proc.url, "admin", "admin").headers)
    for sid, value in values.items():
        assert api.ok("decrypt_secret", {"id": sid})["fields"] == fields_of("B", value)
    assert "global/key_rotation_pending" not in stored_records(proc, "global/")
    assert_no_leak(proc, api.base_url)


# -- the leak scan ---------------------------------------------------------------------------

def assert_no_leak(proc: ConductorProcess, url: str, activity: list[dict[str, Any]] | None = None) -> None:
    """No value used against `url` in its answers (bar decrypt_secret), activity, logs or files."""
    values = USED.get(url, set())
    assert values, "no values were recorded for this conductor"
    if activity is None:
        activity = login(url, "admin", "admin").ok("search_activity", {"query": "*", "limit": 10000})["rows"]
    places: dict[str, bytes] = {"activity": json.dumps(activity).encode()}
    places["responses"] = "\n".join(body for verb, body in RESPONSES.get(url, []) if verb != "decrypt_secret").encode()
    for path in proc.home.rglob("*"):
        if path.is_file():
            places[str(path.relative_to(proc.home))] = path.read_bytes()
    if proc.backend == "postgres":
        places["database dump"] = subprocess.run(
            ["pg_dump", "-h", PG_HOST, "-U", "postgres", "-n", proc.schema, PG_DB], capture_output=True,
            check=True).stdout
    leaks = sorted(where for where, data in places.items() for value in values if value.encode() in data)
    assert not leaks, f"secret values found in: {leaks}"  # names the places, never the values


def test_no_secret_value_reached_logs_activity_files_or_answers(conductor: ConductorProcess,
                                                                 vault: RecordingApi) -> None:
    assert_no_leak(conductor, conductor.url, vault.ok("search_activity", {"query": "*", "limit": 10000})["rows"])
