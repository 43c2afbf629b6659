"""Maintenance pieces, outbound proxy errors, systemd units and the backup CLI, in process."""

from __future__ import annotations

import asyncio
import gzip
import re
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from harness import free_port
from sundial.backup import tokens
from sundial.cli import app
from sundial.maintenance import parse_hhmm, seconds_until, sqlite_backup
from sundial.netpolicy import AirgapRules, ProxyConfigError, ProxySettings
from sundial.outbound import Outbound
from sundial.storage.engine import Storage
from sundial.storage.migrate import migrate

runner = CliRunner()


def test_maintenance_time_parsing_and_next_run() -> None:
    assert parse_hhmm("04:00") == (4, 0) and parse_hhmm(" 23:59 ") == (23, 59)
    assert parse_hhmm("24:00") is None and parse_hhmm("4pm") is None and parse_hhmm(None) is None
    base = time.mktime((2026, 3, 10, 3, 59, 30, 0, 0, -1))
    assert seconds_until(4, 0, base) == 30
    assert seconds_until(3, 0, base) == pytest.approx(23 * 3600 + 30, abs=3600)  # tomorrow (DST-safe bound)


def test_online_sqlite_backup_while_a_writer_keeps_writing(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (n INTEGER)")
    stop = threading.Event()

    def writer() -> None:
        conn = sqlite3.connect(db, timeout=30)
        while not stop.is_set():
            with conn:
                conn.execute("INSERT INTO t VALUES (1)")
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        made = [sqlite_backup(db, tmp_path / "backups", keep=2, now=1767225600 + n) for n in range(3)]
    finally:
        stop.set()
        thread.join()
    kept = sorted((tmp_path / "backups").iterdir())
    assert kept == made[1:]  # the oldest was pruned, no temp files left behind
    copy = tmp_path / "copy.db"
    copy.write_bytes(gzip.decompress(made[-1].read_bytes()))
    with sqlite3.connect(copy) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] > 0


async def test_transfer_tokens_expire_and_are_purged(tmp_path: Path) -> None:
    storage = Storage(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    await migrate(storage)
    try:
        short = [await tokens.mint(storage, kind="user", name="admin", session_id="", params={}, lifetime=0.05)
                 for _ in range(2)]
        live = await tokens.mint(storage, kind="user", name="admin", session_id="", params={"lists": ["tags"]})
        await asyncio.sleep(0.1)
        assert await tokens.redeem(storage, short[0]) is None  # expired (and gone)
        assert await tokens.purge_expired(storage) == 1  # the other expired one
        found = await tokens.redeem(storage, live)
        assert found is not None and found.params == {"lists": ["tags"]}
        assert await tokens.redeem(storage, live) is None  # single use
        assert await tokens.redeem(storage, "x" * 64) is None
    finally:
        await storage.close()


async def test_an_unreachable_proxy_is_named_in_the_error() -> None:
    dead = f"http://user:pw@127.0.0.1:{free_port()}"
    client = Outbound(AirgapRules(), ProxySettings.from_env({"HTTPS_PROXY": dead}))
    try:
        with pytest.raises(httpx.ProxyError, match=r"Cannot reach the proxy http://127\.0\.0\.1:\d+") as caught:
            await client.request("GET", "https://hooks.example.com/x", timeout=5)
        assert "pw" not in str(caught.value)
    finally:
        await client.aclose()
    for scheme in ("ftp", "pac+ftp"):
        with pytest.raises(ProxyConfigError, match=re.escape(f"Unsupported proxy scheme: {scheme} ")):
            ProxySettings.from_env({"ALL_PROXY": f"{scheme}://127.0.0.1:1080"}).proxy_for(httpx.URL("http://x/"))


def test_service_install_and_uninstall_write_only_under_the_prefix(tmp_path: Path) -> None:
    home, agent = tmp_path / "home", tmp_path / "agent" / "config.json"
    units = tmp_path / "root" / "etc" / "systemd" / "system"
    install = ["service", "install", "--prefix", str(tmp_path / "root"), "--home", str(home), "--user", "sundial",
               "--satellite"]
    # the local satellite's config is run by the conductor itself: a unit on it would fail forever
    for extra in ([], ["--satellite-config", str(home / "satellite" / "config.json")]):
        refused = runner.invoke(app, [*install, *extra])
        assert refused.exit_code == 1 and "No unit files written" in refused.output and not units.exists()
    result = runner.invoke(app, [*install, "--satellite-config", str(agent)])
    assert result.exit_code == 0, result.output
    conductor = (units / "sundial.service").read_text()
    assert f"--home {home}" in conductor and "User=sundial" in conductor and "KillMode=mixed" in conductor
    assert "ExecStart=" in conductor and "start --foreground" in conductor
    satellite = (units / "sundial-satellite.service").read_text()
    assert f"--config {agent}" in satellite
    assert "systemctl daemon-reload && systemctl enable --now sundial.service" in result.output
    result = runner.invoke(app, ["service", "uninstall", "--prefix", str(tmp_path / "root")])
    assert result.exit_code == 0 and not list(units.iterdir()), result.output


def test_export_and_import_commands_round_trip_offline(tmp_path: Path) -> None:
    source, target, backup = tmp_path / "a", tmp_path / "b", tmp_path / "backup.txt.gz"
    env = {"SUNDIAL_secret_key": "cli-test-key"}
    made = runner.invoke(app, ["export", str(backup), "--home", str(source), "--indexes", "none",
                               "--extras", "none"], env=env)
    assert made.exit_code == 0 and backup.exists(), made.output
    assert gzip.decompress(backup.read_bytes()).startswith(b"# xyOps Data Export v1.0\n")
    done = runner.invoke(app, ["import", str(backup), "--home", str(target), "--yes"], env=env)
    assert done.exit_code == 0 and "Data Import Completed" in done.output, done.output
    bad = tmp_path / "bad.txt.gz"
    bad.write_bytes(backup.read_bytes()[:40])
    refused = runner.invoke(app, ["import", str(bad), "--home", str(target), "--yes"], env=env)
    assert refused.exit_code == 1 and "unexpected end of file" in refused.output, refused.output
