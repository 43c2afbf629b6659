"""`sundial export` / `sundial import`: the same exporter and importer, straight on the database.

Export reads only, so it works while the conductor runs (SQLite readers never block its
writers). Import writes, so the CLI refuses it while the conductor runs; with the conductor
stopped nothing else holds the data in memory and there is no job work to quiesce.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sundial.backup.export import Exporter, expand_selection, gzip_stream
from sundial.backup.importer import Importer, ImportRefused, ImportReport, open_upload, ring_decrypter
from sundial.backup.paths import BlobPaths
from sundial.services import Services

Progress = Callable[[float, str], None]


async def export_to_file(services: Services, output: Path, selection: dict[str, Any],
                         progress: Progress) -> tuple[int, int]:
    """Write a gzip XYBK file (via a temp name, renamed when complete); returns (lines, bytes)."""
    items = expand_selection(selection.get("lists"), selection.get("indexes"), selection.get("extras"))
    exporter = Exporter(services.storage, BlobPaths.from_config(services.config), hostname=services.hostname)
    partial = output.with_name(f".{output.name}.part")
    size = 0
    try:
        with partial.open("wb") as handle:  # noqa: ASYNC230 (the CLI has nothing else to run meanwhile)
            lines = exporter.lines(items, lambda n, total: progress(n / max(total, 1), "Exporting"))
            async for chunk in gzip_stream(lines):
                handle.write(chunk)
                size += len(chunk)
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)
    return exporter.stats.lines, size


async def import_file(services: Services, source: Path, progress: Progress) -> ImportReport:
    """Check the whole file, then apply it in one transaction; the report says which happened."""
    work = services.config.path("temp_dir") / "import-cli"
    shutil.rmtree(work, ignore_errors=True)
    report = ImportReport(file_name=source.name, file_size=await asyncio.to_thread(os.path.getsize, source))
    try:
        path, entries = await asyncio.to_thread(open_upload, source, source.name, "", work)
        importer = Importer(services.storage, BlobPaths.from_config(services.config), work,
                            decrypts=await _decrypts(services))
        importer.report = report
        if await asyncio.to_thread(importer.check, path, entries, progress):
            await importer.apply(path, progress)
    except ImportRefused as exc:
        report.error(str(exc))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report


async def _decrypts(services: Services) -> Any:
    """The secret check needs the vault open; a vault that will not open just skips the check."""
    try:
        await services.vault.open()
        return ring_decrypter(services.vault.keyring)
    except Exception:  # the import itself does not need the key
        return None
