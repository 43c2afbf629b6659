"""The XYBK format, the import planner, upload handling and the all-or-nothing importer, in process.

The importer runs against a real SQLite database migrated to head, so "nothing changed"
is checked on the stored rows, not on a mock.
"""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from xybk_fixture import (
    JOB_FILE,
    JOB_FILE_KEY,
    JOB_ID,
    JOB_LOG,
    PASSWORD,
    SECRET_FIELDS,
    SECRET_ID,
    USER,
    xybk_gz,
    xybk_text,
)

from sundial.auth.passwords import verify_password
from sundial.backup.export import Exporter, SelectionError, expand_selection, gzip_stream
from sundial.backup.format import HEADER, Command, DbRecord, LineError, Put, list_lines, normalize_key, parse_line
from sundial.backup.importer import Importer, ImportRefused, open_upload, ring_decrypter
from sundial.backup.paths import BlobPaths, UnsafeKey
from sundial.backup.plan import Planner
from sundial.storage.engine import Storage
from sundial.storage.migrate import migrate
from sundial.storage.schema import activity, config_tables, jobs, records, users
from sundial.vault.crypto import SecretKey
from sundial.vault.keyring import Keyring

KEY = "backup-test-key"


# -- format ----------------------------------------------------------------------------------------
def test_lines_parse_into_the_three_entry_kinds() -> None:
    assert parse_line("# comment") is None and parse_line("  ") is None and parse_line("plain text") is None
    assert parse_line('{"key":"Global//Tags/","value":{"a":1}}') == Put("global/tags", {"a": 1})
    assert parse_line('{"cmd":"listDelete","args":["global/tags",false]}') == Command("listDelete",
                                                                                      ["global/tags", False])
    assert parse_line('{"index":"jobs","id":"j1","record":{"x":1}}') == DbRecord("jobs", "j1", {"x": 1})
    for bad, why in (('{"key":', "Invalid JSON"), ("[1]", None), ('{"cmd":"eval","args":["x"]}', "not allowed"),
                     ('{"index":"jobs","id":"j1"}', "no record"), ('{"other":1}', "Unknown format")):
        if why is None:
            assert parse_line(bad) is None  # not an object line at all
            continue
        with pytest.raises(LineError, match=why):
            parse_line(bad)
    assert normalize_key("/Users//Bob Smith/") == "users/bobsmith"


def test_lists_are_written_in_the_xyops_shape() -> None:
    lines = [json.loads(line) for line in list_lines("global/tags", [{"id": str(n)} for n in range(5)], 2)]
    assert lines[0] == {"cmd": "listDelete", "args": ["global/tags", False]}
    assert lines[1]["value"] == {"type": "list", "length": 5, "page_size": 2, "first_page": 0, "last_page": 2}
    assert [line["key"] for line in lines[2:]] == ["global/tags/0", "global/tags/1", "global/tags/2"]
    assert lines[4]["value"] == {"type": "list_page", "items": [{"id": "4"}]}


def test_selection_expands_in_the_spec_order_and_refuses_bad_params() -> None:
    items = expand_selection(["secrets", "users", "buckets"], ["jobs"], ["job_logs", "user_avatars", "stat_data"])
    assert [i["type"] for i in items] == ["list", "list", "list", "index", "users", "jobFiles", "list",
                                          "bucketData", "secretData"]
    assert items[4] == {"type": "users", "avatars": True} and items[5]["files"] is False
    assert items[6] == {"type": "list", "key": "global/stats"}
    assert len(expand_selection("all")) == 14 + 3  # lists, then users, bucketData, secretData
    for args, message in ((("nonsense",), "lists must be an array"), (([], "x"), "indexes must be an array"),
                          (([], [], []), "No data selected"), ((None, None, None, "x"), "items must be an array")):
        with pytest.raises(SelectionError, match=message):
            expand_selection(*args)
    with pytest.raises(SelectionError, match="Invalid query"):
        expand_selection(items=[{"type": "index", "index": "jobs", "query": "(code = "}])


def test_binary_keys_stay_inside_the_data_folder(tmp_path: Path) -> None:
    paths = BlobPaths(files=tmp_path / "files", job_logs=tmp_path / "jobs", other=tmp_path / "blobs")
    assert paths.path_for("logs/jobs/jabc/log.txt.gz") == tmp_path / "jobs" / "jabc.log.gz"
    assert paths.path_for("files/jobs/j1/r/a.txt") == tmp_path / "files" / "jobs" / "j1" / "r" / "a.txt"
    assert paths.path_for("users/bob/avatar/64.png") == tmp_path / "blobs" / "users" / "bob" / "avatar" / "64.png"
    for key in ("files/../../etc/passwd.txt", "files/./x.txt", "../x.png"):
        with pytest.raises(UnsafeKey):
            paths.path_for(key)


def test_planner_builds_lists_from_pages_pushes_and_resets(tmp_path: Path) -> None:
    planner = Planner(BlobPaths(tmp_path, tmp_path, tmp_path), tmp_path)
    for line in ['{"cmd":"listDelete","args":["global/tags",false]}',
                 '{"key":"global/tags","value":{"type":"list","length":3,"page_size":2,"first_page":-1,"last_page":0}}',
                 '{"key":"global/tags/0","value":{"type":"list_page","items":[{"id":"c"}]}}',
                 '{"key":"global/tags/-1","value":{"type":"list_page","items":[{"id":"a"},{"id":"b"}]}}',
                 '{"cmd":"listPush","args":["global/tags",{"id":"d"}]}',
                 '{"cmd":"listUnshift","args":["global/tags",[{"id":"z"},{"id":"y"}]]}',
                 '{"cmd":"listDelete","args":["global/groups",false]}']:
        entry = parse_line(line)
        assert entry is not None
        assert planner.plan(entry) == []
    lists, problems = planner.final_lists()
    assert [t["id"] for t in lists["tags"]] == ["z", "y", "a", "b", "c", "d"] and lists["groups"] == []
    assert problems == []


@pytest.mark.parametrize("line, message", [
    ('{"key":"users/bob","value":{"username":"alice"}}', "record is for user alice"),
    ('{"key":"files/x/../../../etc/cron.d/evil.sh","value":"eA=="}', "Unsafe storage key"),
    ('{"key":"files/a/b.bin","value":"%%%"}', "not valid base64"),
    ('{"cmd":"hashPut","args":["h",1,2]}', "not supported by Sundial: hashPut"),
    ('{"cmd":"listPush","args":["global/stats",{}]}', "only supported on the configuration lists"),
    ('{"index":"jobs","id":"j/../1","record":{}}', "record id is malformed"),
])
def test_planner_refuses_lines_it_cannot_apply(tmp_path: Path, line: str, message: str) -> None:
    planner = Planner(BlobPaths(tmp_path, tmp_path, tmp_path), tmp_path)
    entry = parse_line(line)
    assert entry is not None
    with pytest.raises(LineError, match=message):
        planner.plan(entry)


# -- uploads ---------------------------------------------------------------------------------------
def _upload(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_bad_uploads_are_refused_before_anything_happens(tmp_path: Path) -> None:
    good = gzip.compress(xybk_text(KEY).encode())
    cases = {
        "truncated.txt.gz": (good[: len(good) // 2], "unexpected end of file"),
        "notgzip.txt.gz": (b"plain text, not gzip\n", "incorrect header check"),
        "junk.txt": (b"this is not a backup\n", "No valid rows found in file"),
        "cronicle.txt": (b'global/users - {"type":"list"}\n', "Cronicle data export"),
    }
    for name, (data, message) in cases.items():
        with pytest.raises(ImportRefused, match=message) as caught:
            open_upload(_upload(tmp_path, name, data), name, "", tmp_path / "work")
        assert str(caught.value).startswith("Failed to process file: ")
    path, count = open_upload(_upload(tmp_path, "b.bin", good), "b.bin", "application/octet-stream", tmp_path / "w")
    assert path.read_text().startswith(HEADER) and count == sum(1 for ln in xybk_text(KEY).splitlines()
                                                                 if ln.startswith("{"))


# -- the importer on a real database -----------------------------------------------------------------
@pytest.fixture
async def storage(tmp_path: Path) -> Any:
    store = Storage(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    await migrate(store)
    yield store
    await store.close()


def _paths(tmp_path: Path) -> BlobPaths:
    return BlobPaths(files=tmp_path / "files", job_logs=tmp_path / "jobs", other=tmp_path / "blobs")


async def _import(storage: Storage, tmp_path: Path, text: str) -> Importer:
    source = _upload(tmp_path, "backup.txt", text.encode())
    path, count = open_upload(source, "backup.txt", "", tmp_path / "work")
    importer = Importer(storage, _paths(tmp_path), tmp_path / "work",
                        decrypts=ring_decrypter(Keyring(SecretKey(KEY))))
    if importer.check(path, count):
        await importer.apply(path)
    return importer


async def _snapshot(storage: Storage) -> dict[str, int]:
    async with storage.read() as conn:
        tables = {"jobs": jobs, "activity": activity, "users": users, "records": records, **config_tables}
        return {name: int((await conn.execute(select(func.count()).select_from(t))).scalar() or 0)
                for name, t in tables.items()}


async def test_an_xyops_backup_imports_with_secrets_users_jobs_and_files(storage: Storage, tmp_path: Path) -> None:
    importer = await _import(storage, tmp_path, xybk_text(KEY))
    report = importer.report
    assert report.applied and report.error_count == 0, report.markdown()
    assert any("index alerts" in reason for reason in report.counts.skipped), report.counts.skipped
    async with storage.read() as conn:
        cats = [row.id for row in await conn.execute(select(config_tables["categories"].c.id)
                                                     .order_by(config_tables["categories"].c.seq))]
        secret = (await conn.execute(select(records.c.value).where(records.c.key == f"secrets/{SECRET_ID}"))).scalar()
        user = (await conn.execute(select(users.c.doc).where(users.c.norm == USER))).scalar()
        job = (await conn.execute(select(jobs.c.final, jobs.c.doc).where(jobs.c.id == JOB_ID))).first()
    assert cats == ["reports", "etl", "general"]  # pages -1 then 0, in order
    assert Keyring(SecretKey(KEY)).decrypt_fields(secret, SECRET_ID) == SECRET_FIELDS
    assert user is not None and verify_password(PASSWORD, user["salt"], user["password"])
    assert job is not None and job.final == 1 and job.doc["tags"] == ["prod"]
    assert gzip.decompress((tmp_path / "jobs" / f"{JOB_ID}.log.gz").read_bytes()).decode() == JOB_LOG
    assert (tmp_path / "files" / JOB_FILE_KEY.removeprefix("files/")).read_bytes() == JOB_FILE


async def test_a_secret_under_another_key_is_imported_with_a_warning(storage: Storage, tmp_path: Path) -> None:
    importer = await _import(storage, tmp_path, xybk_text("some-other-key"))
    assert importer.report.applied
    assert any(SECRET_ID in warning and "cannot be decrypted" in warning for warning in importer.report.warnings)


async def test_one_bad_line_changes_nothing(storage: Storage, tmp_path: Path) -> None:
    before = await _snapshot(storage)
    text = xybk_text(KEY).replace("# End of file", '{"cmd":"rename","args":["a","b"]}\n{"key": oops}\n# End')
    importer = await _import(storage, tmp_path, text)
    assert not importer.report.applied and importer.report.error_count == 2
    assert "not supported by Sundial: rename" in importer.report.markdown()
    assert "Nothing Was Changed" in importer.report.markdown()
    assert await _snapshot(storage) == before
    assert not (tmp_path / "files").exists() and not (tmp_path / "jobs").exists()


async def test_a_failure_while_writing_rolls_everything_back(storage: Storage, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    before = await _snapshot(storage)
    real = Importer._upsert_many

    async def fail_on_activity(self: Importer, tx: Any, table: Any, *args: Any) -> None:
        if table.name == "activity":  # after the jobs row was written in the same transaction
            raise RuntimeError("disk full")
        await real(self, tx, table, *args)

    monkeypatch.setattr(Importer, "_upsert_many", fail_on_activity)
    with pytest.raises(RuntimeError, match="disk full"):
        await _import(storage, tmp_path, xybk_text(KEY))
    assert await _snapshot(storage) == before
    assert not (tmp_path / "jobs" / f"{JOB_ID}.log.gz").exists()


async def test_export_then_import_round_trips_and_streams_gzip(storage: Storage, tmp_path: Path) -> None:
    await _import(storage, tmp_path, xybk_text(KEY))
    exporter = Exporter(storage, _paths(tmp_path), hostname="unit")
    items = expand_selection("all", "all", "all")
    body = b"".join([chunk async for chunk in gzip_stream(exporter.lines(items))])
    text = gzip.decompress(body).decode()
    assert text.splitlines()[0] == HEADER and text.rstrip().endswith("# End of file")
    puts = {e["key"]: e["value"] for e in map(json.loads, (ln for ln in text.splitlines() if ln.startswith("{")))
            if "key" in e}
    assert base64.b64decode(puts[JOB_FILE_KEY]) == JOB_FILE
    assert gzip.decompress(base64.b64decode(puts[f"logs/jobs/{JOB_ID}/log.txt.gz"])).decode() == JOB_LOG
    assert puts[f"users/{USER}"]["password"].startswith("$2")
    assert "global/users" in puts and f"secrets/{SECRET_ID}" in puts
    other = Storage(f"sqlite+aiosqlite:///{tmp_path / 'other.sqlite'}")
    await migrate(other)
    (tmp_path / "second").mkdir()
    try:
        again = await _import(other, tmp_path / "second", text)
        assert again.report.applied, again.report.markdown()
        assert await _snapshot(other) == await _snapshot(storage)
    finally:
        await other.close()


def test_fixture_round_trips_through_gzip() -> None:
    assert gzip.decompress(xybk_gz(KEY)).decode().startswith(HEADER)
