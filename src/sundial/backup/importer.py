"""`admin_import_data` and `sundial import`: all or nothing.

xyOps applies an import line by line and keeps going past bad lines, so a bad file leaves a
half-imported system. Sundial checks first and writes once:

1. `open_upload`: decompress the whole upload to a work file (a corrupt or truncated gzip
   fails here, before anything else happens) and refuse files with no entries or that are
   another product's format.
2. `Importer.check` (in a thread): parse and plan every line, decode binary values to staged
   files, build the final configuration lists. Any bad line refuses the whole import.
3. `Importer.apply`: one database transaction re-reads the file and writes every record; the
   lists are replaced whole. Staged files are moved into place only after the commit.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import re
import shutil
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Table, delete, insert, or_

from sundial.auth.users import normalize
from sundial.backup.format import LineError, is_json_line, parse_line
from sundial.backup.paths import BlobPaths
from sundial.backup.plan import Action, Counts, Planner, check_secrets
from sundial.fleet.records import search_columns, stored_copy
from sundial.jobs.store import row_values
from sundial.storage.engine import Storage, Tx, upsert_insert
from sundial.storage.schema import activity, config_tables, jobs, records, servers, users
from sundial.storage.search import normalize_words

MAX_REPORTED = 100
BATCH = 500
_CRONICLE_LINE = re.compile(rb"^[\w./-]+ - [\[{]")
Progress = Callable[[float, str], None]


class ImportRefused(Exception):
    """The upload cannot be imported at all; nothing was changed."""


@dataclass
class ImportReport:
    """What the import did or why it refused; rendered as the internal job's Markdown."""

    file_name: str = ""
    file_size: int = 0
    lines: int = 0
    counts: Counts = field(default_factory=Counts)
    lists: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    error_count: int = 0
    warnings: list[str] = field(default_factory=list)
    applied: bool = False

    def error(self, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED:
            self.errors.append(message)

    def summary(self) -> str:
        if self.applied:
            return (f"Imported {self.counts.entries} entries ({self.counts.db_records} database records, "
                    f"{self.counts.keys} keys, {self.counts.commands} commands, {self.counts.files} files)")
        return f"Import refused: {self.error_count} problem(s) found; nothing was changed"

    def markdown(self) -> str:
        lines = [f"## Data Import {'Completed' if self.applied else 'Refused: Nothing Was Changed'}", "",
                 f"- **File:** {self.file_name} ({self.file_size:,} bytes, {self.lines:,} lines)",
                 f"- **Entries:** {self.counts.entries:,} (database records {self.counts.db_records:,}, "
                 f"keys {self.counts.keys:,}, commands {self.counts.commands:,}, files {self.counts.files:,})"]
        lines += [f"- **List global/{name}:** {count} item(s)" for name, count in sorted(self.lists.items())]
        lines.append("")
        if self.errors:
            more = f", first {len(self.errors)} shown" if self.error_count > len(self.errors) else ""
            lines += [f"**Errors ({self.error_count}{more}):**", "", *[f"- {e}" for e in self.errors], ""]
        notes = self.warnings + [f"Skipped {n} {reason}" for reason, n in sorted(self.counts.skipped.items())]
        if notes:
            lines += [f"**Warnings ({len(notes)}):**", "", *[f"- {w}" for w in notes], ""]
        return "\n".join(lines)


# -- step 1: the upload ------------------------------------------------------------------------
def open_upload(upload: Path, name: str, mime: str, work_dir: Path) -> tuple[Path, int]:
    """The NDJSON work file and its count of entries; ImportRefused (xyOps's wording) otherwise."""
    work_dir.mkdir(parents=True, exist_ok=True)
    target = work_dir / "import.ndjson"
    with open(upload, "rb") as probe:
        magic = probe.read(2)
    gzipped = name.lower().endswith(".gz") or "gzip" in mime.lower() or magic == b"\x1f\x8b"
    try:
        if gzipped:
            with gzip.open(upload, "rb") as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        else:
            shutil.copyfile(upload, target)
    except (OSError, EOFError, zlib.error) as exc:
        raise ImportRefused(f"Failed to process file: {_gzip_reason(exc)}") from None
    entries, cronicle = _scan(target)
    if cronicle and not entries:
        raise ImportRefused("Failed to process file: This looks like a Cronicle data export. Sundial imports "
                            "xyOps backups (XYBK); import Cronicle data into xyOps first, then export it from there.")
    if not entries:
        raise ImportRefused("Failed to process file: No valid rows found in file.")
    return target, entries


def _gzip_reason(exc: BaseException) -> str:
    if isinstance(exc, EOFError):
        return "unexpected end of file (the gzip archive is truncated)"
    if isinstance(exc, gzip.BadGzipFile) or "Not a gzipped file" in str(exc):
        return "incorrect header check (the upload is not a gzip archive)"
    if isinstance(exc, zlib.error):
        return f"the gzip archive is corrupt ({exc})"
    return str(exc)


def _scan(path: Path) -> tuple[int, bool]:
    entries, cronicle = 0, False
    with open(path, "rb") as handle:
        for line in handle:
            if is_json_line(line):
                entries += 1
            elif not cronicle and _CRONICLE_LINE.match(line):
                cronicle = True
    return entries, cronicle


# -- steps 2 and 3 -----------------------------------------------------------------------------
def _numbered_lines(handle: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    yield from enumerate(handle, start=1)


class Importer:
    """One import of one work file into one database."""

    def __init__(self, storage: Storage, paths: BlobPaths, work_dir: Path, *,
                 decrypts: Callable[[str, Any], bool] | None = None) -> None:
        self.storage = storage
        self.paths = paths
        self.work_dir = work_dir
        self.decrypts = decrypts
        self.report = ImportReport()
        self._planner: Planner | None = None
        self._lists: dict[str, list[dict[str, Any]]] = {}

    # -- checking ----------------------------------------------------------------------------
    def check(self, path: Path, total: int, progress: Progress | None = None) -> bool:
        """Pass 1 (blocking; run it in a thread): True when the import can be applied."""
        stage = self.work_dir / "staged"
        stage.mkdir(parents=True, exist_ok=True)
        planner = Planner(self.paths, stage)
        with open(path, "rb") as handle:
            for number, line in _numbered_lines(handle):
                self.report.lines = number
                self._check_line(planner, number, line)
                if progress and planner.counts.entries % 2000 == 0:
                    progress(0.45 * planner.counts.entries / max(total, 1), "Checking")
        self._lists, problems = planner.final_lists()
        for problem in problems:
            self.report.error(problem)
        self.report.warnings += check_secrets(planner, self.decrypts)
        self.report.counts = planner.counts
        self.report.lists = {name: len(items) for name, items in self._lists.items()}
        self._planner = planner
        return self.report.error_count == 0

    def _check_line(self, planner: Planner, number: int, line: bytes) -> None:
        try:
            entry = parse_line(line)
            if entry is not None:
                planner.plan(entry)
        except LineError as exc:
            self.report.error(f"Line {number}: {exc}")
        except OSError as exc:
            raise ImportRefused(f"Cannot stage the import in {self.work_dir}: {exc.strerror}") from None

    # -- applying ----------------------------------------------------------------------------
    async def apply(self, path: Path, progress: Progress | None = None,
                    online: Callable[[str], bool] = lambda _sid: False) -> None:
        """Pass 2: every write in one transaction, then the staged files. Raises on failure (rolled back)."""
        if self._planner is None or self.report.error_count:
            raise ImportRefused("The import was not checked, or the check found errors")
        planner = Planner(self.paths)  # no staging: binary values were handled by the check
        handle: IO[bytes] = await asyncio.to_thread(open, path, "rb")
        try:
            lines = _numbered_lines(handle)
            async with self.storage.transaction() as tx:
                while batch := await asyncio.to_thread(_next_actions, planner, lines, BATCH):
                    await self._write(tx, batch, online)
                    if progress:
                        progress(0.5 + 0.4 * planner.counts.entries / max(self.report.counts.entries, 1), "Writing")
                for name, items in self._lists.items():
                    await self._replace_list(tx, name, items)
        finally:
            handle.close()
        await asyncio.to_thread(self._place_files)
        self.report.applied = True

    async def _write(self, tx: Tx, actions: list[Action], online: Callable[[str], bool]) -> None:
        """Runs of the same kind of write become one executemany (file order is kept between runs)."""
        for (kind, index), run in itertools.groupby(actions, key=lambda a: (a[0], a[1] if a[0] == "db" else "")):
            items = list(run)
            if kind == "db":
                table = {"jobs": jobs, "activity": activity}.get(index, servers)
                await self._upsert_many(tx, table, "id", [_db_row(index, a[2], a[3], online) for a in items])
            elif kind == "user":
                await self._upsert_many(tx, users, "norm", [_user_row(a[1]) for a in items])
            elif kind == "record":
                await self._upsert_many(tx, records, "key", [{"key": a[1], "value": a[2], "expires": None}
                                                             for a in items])
            else:
                for action in items:
                    await tx.conn.execute(_delete_for(action))

    async def _upsert_many(self, tx: Tx, table: Table, key: str, rows: list[dict[str, Any]]) -> None:
        maker = upsert_insert(self.storage.is_sqlite)
        stmt = maker(table)
        stmt = stmt.on_conflict_do_update(index_elements=[table.c[key]],
                                          set_={name: stmt.excluded[name] for name in rows[0] if name != key})
        await tx.conn.execute(stmt, rows)

    async def _replace_list(self, tx: Tx, name: str, items: list[dict[str, Any]]) -> None:
        table = config_tables[name]
        await tx.conn.execute(delete(table))
        rows = [{"id": item["id"], "seq": seq, "title": str(item.get("title", ""))[:512],
                 "modified": _float(item.get("modified")), "doc": item} for seq, item in enumerate(items, start=1)]
        if rows:
            await tx.conn.execute(insert(table), rows)

    def _place_files(self) -> None:
        """After the commit: move staged binaries into place (or delete what the file deleted)."""
        assert self._planner is not None
        for key, staged in self._planner.blobs.items():
            target = self.paths.path_for(key)
            if staged is None:
                target.unlink(missing_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(staged), str(target))


def _next_actions(planner: Planner, lines: Iterator[tuple[int, bytes]], size: int) -> list[Action]:
    """The next `size` actions of the file (runs in a thread: parsing is CPU work)."""
    out: list[Action] = []
    for _number, line in lines:
        entry = parse_line(line)
        if entry is not None:
            out.extend(planner.plan(entry))
            if len(out) >= size:
                break
    return out


def ring_decrypter(ring: Any) -> Callable[[str, Any], bool]:
    """`decrypts(secret_id, record)` for the import's key check, over a vault keyring."""

    def decrypts(secret_id: str, record: Any) -> bool:
        try:
            ring.decrypt_fields(record, secret_id)
        except Exception:  # any failure means "not under this key"
            return False
        return True

    return decrypts


def _db_row(index: str, rid: str, record: dict[str, Any], online: Callable[[str], bool]) -> dict[str, Any]:
    """The table row of one imported DB record (jobs are finished history by definition)."""
    doc = {**record, "id": rid}
    if index == "jobs":
        doc.update(final=True, complete=doc.get("complete", True), state=doc.get("state") or "complete")
        return {"id": rid, **row_values(doc)}
    if index == "activity":
        return _activity_row(doc)
    doc = stored_copy(doc)
    return {"id": rid, **search_columns(doc), "online": 1 if online(rid) else 0, "doc": doc}


def _delete_for(action: Action) -> Any:
    kind, key = action[0], action[1]
    if kind == "user_delete":
        return delete(users).where(users.c.norm == key)
    if kind == "record_delete":
        return delete(records).where(records.c.key == key)
    return delete(records).where(or_(records.c.key == key, records.c.key.startswith(key + "/", autoescape=True)))


def _float(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _user_row(doc: dict[str, Any]) -> dict[str, Any]:
    return {"norm": normalize(doc["username"]), "username": doc["username"],
            "created": _float(doc.get("created")), "doc": doc}


def _activity_row(doc: dict[str, Any]) -> dict[str, Any]:
    action = str(doc.get("action") or "notice")[:128]
    found = doc.get("keywords")
    words: list[Any] = found if isinstance(found, list) else []
    return {"id": doc["id"], "epoch": _float(doc.get("epoch")), "action": action,
            "username": str(doc["username"])[:128] if doc.get("username") else None,
            "keywords": normalize_words([str(w) for w in words] + [action]), "doc": doc}
