"""Log rows in the xyOps bracket format, per-component files, archives."""

from __future__ import annotations

import gzip
import os
import time
from pathlib import Path

from sundial.logs import LogManager, parse_row, prune_archives

COLUMNS = ["hires_epoch", "date", "hostname", "pid", "component", "category", "code", "msg", "data"]


def test_rows_are_bracketed_and_parse_back(tmp_path: Path) -> None:
    logs = LogManager(tmp_path, columns=COLUMNS, hostname="conductor1", debug_level=5)
    logs.logger("Transaction").transaction("server_add", "Server connected:\nworker7", {"ip": "10.0.0.17"})
    line = (tmp_path / "Transaction.log").read_text()
    assert line.endswith("\n") and line.count("\n") == 1
    row = parse_row(line, COLUMNS)
    assert row["hostname"] == "conductor1" and row["pid"] == str(os.getpid())
    assert row["category"] == "transaction" and row["code"] == "server_add"
    assert row["msg"] == "Server connected: worker7" and row["data"] == '{"ip":"10.0.0.17"}'


def test_debug_level_filters_and_errors_are_copied(tmp_path: Path) -> None:
    logs = LogManager(tmp_path, columns=COLUMNS, debug_level=3)
    log = logs.logger("Storage")
    log.debug(3, "kept")
    log.debug(9, "dropped")
    log.error("db", "broken ][ value")
    text = (tmp_path / "Storage.log").read_text()
    assert "kept" in text and "dropped" not in text
    assert "[broken  value]" in (tmp_path / "Error.log").read_text()


def test_archive_gzips_and_truncates_then_prunes(tmp_path: Path) -> None:
    logs = LogManager(tmp_path / "logs", columns=COLUMNS)
    logs.logger("API").debug(1, "hello")
    template = "logs/archives/[yyyy]/[mm]/[dd]/[filename]-[yyyy]-[mm]-[dd].log.gz"
    written = logs.archive(template, when=time.mktime((2026, 3, 5, 0, 10, 0, 0, 0, -1)))
    assert [p.name for p in written] == ["API-2026-03-04.log.gz"]
    assert b"hello" in gzip.decompress(written[0].read_bytes())
    assert (tmp_path / "logs/API.log").read_text() == ""
    old = time.time() - 40 * 86400
    os.utime(written[0], (old, old))
    assert prune_archives(template, tmp_path, 30 * 86400) == written
