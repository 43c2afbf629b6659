"""The agent's config file: defaults, aliases, env overrides, atomic saves, pushed keys, reloads."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from sundial.satellite.config import ConfigError, ConfigStore, env_overrides


def write(path: Path, doc: dict[str, object]) -> Path:
    path.write_text(json.dumps(doc))
    return path


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    store = ConfigStore(write(tmp_path / "config.json", {"auth_token": "t"}), environ={})
    cfg = store.config
    assert cfg.hosts == ["localhost"] and cfg.port == 5522 and cfg.secure is False
    assert cfg.get("child_kill_timeout") == 10 and cfg.get("monitoring_enabled") is True
    assert cfg.get("socket_opts") == {"rejectUnauthorized": False}
    assert cfg.path("temp_dir") == tmp_path / "temp"
    assert cfg.path("pid_file") == tmp_path / "pid.txt"


def test_masters_alias_and_env_overrides(tmp_path: Path) -> None:
    path = write(tmp_path / "config.json", {"masters": "c1, c2", "auth_token": "t", "port": 1})
    env = {"SATELLITE_port": "6000", "XYSAT_port": "7000", "XYSAT_secure": "true", "SATELLITE_host": "lb"}
    cfg = ConfigStore(path, environ=env).config
    assert cfg.hosts == ["c1", "c2"]
    assert cfg.port == 6000, "SATELLITE_ wins over the XYSAT_ alias"
    assert cfg.secure is True and cfg.get("host") == "lb"
    assert env_overrides({"SATELLITE_masters": '["a"]'}) == {"masters": ["a"]}


def test_save_is_atomic_private_and_keeps_unknown_keys(tmp_path: Path) -> None:
    path = write(tmp_path / "config.json", {"auth_token": "t", "custom": {"x": 1}, "initial": {"title": "T"}})
    store = ConfigStore(path, environ={"SATELLITE_port": "6000"})
    changed = store.save({"server_id": "s123"})
    assert "server_id" in changed
    on_disk = json.loads(path.read_text())
    assert on_disk == {"auth_token": "t", "custom": {"x": 1}, "server_id": "s123"}, \
        "initial is dropped at the first save; env overrides are not frozen into the file"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"], "no temp files left behind"
    assert store.config.server_id == "s123"


def test_pushed_config_respects_managed_keys(tmp_path: Path) -> None:
    path = write(tmp_path / "config.json", {"auth_token": "old", "managed_keys": ["auth_token", "airgap"]})
    store = ConfigStore(path, environ={})
    seen: list[set[str]] = []
    store.on_change(lambda cfg, keys: seen.append(keys))
    changed = store.apply_pushed({"auth_token": "new", "port": 9999, "hosts": ["x"]})
    assert changed == {"auth_token"} and seen == [{"auth_token"}]
    assert store.config.auth_token == "new" and store.config.port == 5522


def test_pushed_config_applies_everything_without_managed_keys(tmp_path: Path) -> None:
    store = ConfigStore(write(tmp_path / "config.json", {"auth_token": "t"}), environ={})
    store.apply_pushed({"child_kill_timeout": 3, "quickmon_enabled": False, "hosts": ["c9"]})
    assert store.config.get("child_kill_timeout") == 3 and store.config.hosts == ["c9"]
    assert json.loads((tmp_path / "config.json").read_text())["quickmon_enabled"] is False


def test_reload_sees_outside_edits_but_not_own_saves(tmp_path: Path) -> None:
    path = write(tmp_path / "config.json", {"auth_token": "t"})
    store = ConfigStore(path, environ={})
    store.save({"port": 1234})
    assert store.reload_if_changed() is False
    write(path, {"auth_token": "t", "port": 4321, "padding": "x" * 10})
    os.utime(path, ns=(1, 1))
    assert store.reload_if_changed() is True and store.config.port == 4321


def test_missing_credential_and_bad_files_are_refused(tmp_path: Path) -> None:
    store = ConfigStore(write(tmp_path / "config.json", {"hosts": ["c"]}), environ={})
    with pytest.raises(ConfigError, match="auth_token"):
        store.validate()
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ConfigError):
        ConfigStore(tmp_path / "bad.json", environ={})
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ConfigError):
        ConfigStore(tmp_path / "broken.json", environ={})


def test_nonsense_numbers_fall_back_to_defaults(tmp_path: Path) -> None:
    cfg = ConfigStore(write(tmp_path / "c.json", {"auth_token": "t", "ping_timeout_sec": "soon",
                                                  "connect_timeout_sec": -1}), environ={}).config
    assert cfg.number("ping_timeout_sec") == 60 and cfg.number("connect_timeout_sec") == 5
