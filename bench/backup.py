"""Export and import speed and memory on a synthetic job history (not part of the test run).

    .venv/bin/python bench/backup.py [--jobs 40000]

Prints, for a small and a large history, the export time, the gzip size and how much the
process's resident memory grew while streaming (it should stay flat: exports are paged), then
the time to check and import the large export into an empty database.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from pathlib import Path

import psutil
from sqlalchemy import insert

from sundial.backup.export import Exporter, expand_selection, gzip_stream
from sundial.backup.importer import Importer, open_upload
from sundial.backup.paths import BlobPaths
from sundial.jobs.store import row_values
from sundial.storage.engine import Storage
from sundial.storage.migrate import migrate


async def _database(path: Path, jobs_count: int) -> Storage:
    storage = Storage(f"sqlite+aiosqlite:///{path}")
    await migrate(storage)
    from sundial.storage.schema import jobs

    for start in range(0, jobs_count, 5000):
        rows = [{"id": f"j{n:015d}", **row_values({"id": f"j{n:015d}", "final": True, "event": "ebench",
                                                   "output": "line of output\n" * 100, "tags": ["bench"]})}
                for n in range(start, min(jobs_count, start + 5000))]
        async with storage.transaction() as tx:
            await tx.conn.execute(insert(jobs), rows)
    return storage


async def export_case(folder: Path, jobs_count: int) -> Path:
    storage = await _database(folder / f"source-{jobs_count}.db", jobs_count)
    process = psutil.Process()
    base = peak = process.memory_info().rss
    target = folder / f"export-{jobs_count}.txt.gz"
    started = time.perf_counter()
    exporter = Exporter(storage, BlobPaths(folder, folder, folder))
    with target.open("wb") as out:
        items = expand_selection("all", ["jobs"], ["job_logs"])
        async for number, chunk in _enumerate(gzip_stream(exporter.lines(items))):
            out.write(chunk)
            if number % 4 == 0:
                peak = max(peak, process.memory_info().rss)
    elapsed = time.perf_counter() - started
    await storage.close()
    print(f"export {jobs_count:>7} jobs: {elapsed:6.2f} s, {target.stat().st_size / 2**20:7.2f} MiB gzip, "
          f"RSS growth {(peak - base) / 2**20:5.1f} MiB")
    return target


async def _enumerate(chunks):  # type: ignore[no-untyped-def]
    number = 0
    async for chunk in chunks:
        yield number, chunk
        number += 1


async def import_case(folder: Path, backup: Path) -> None:
    storage = Storage(f"sqlite+aiosqlite:///{folder / 'target.db'}")
    await migrate(storage)
    started = time.perf_counter()
    path, entries = open_upload(backup, backup.name, "", folder / "work")
    importer = Importer(storage, BlobPaths(folder / "f", folder / "j", folder / "b"), folder / "work")
    checked = importer.check(path, entries)
    middle = time.perf_counter()
    await importer.apply(path)
    done = time.perf_counter()
    await storage.close()
    print(f"import {entries:>7} entries: check {middle - started:6.2f} s ({'ok' if checked else 'refused'}), "
          f"write {done - middle:6.2f} s in one transaction")


async def main(jobs_count: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="sundial-bench-backup-"))
    try:
        await export_case(folder, max(1, jobs_count // 10))
        backup = await export_case(folder, jobs_count)
        await import_case(folder, backup)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=40000)
    asyncio.run(main(parser.parse_args().jobs))
