"""Config layering: defaults < config.json < CLI < environment (XYOPS_ then SUNDIAL_) < overrides."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from sundial.config import ConfigError, ensure_secret_key, load_config, parse_duration, write_sample_config


def write(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def test_precedence_of_every_layer(tmp_path: Path) -> None:
    write(tmp_path / "conf/config.json", {"debug_level": 2, "ttl": 10, "WebServer": {"port": 6000},
                                          "base_app_url": "http://file"})
    write(tmp_path / "conf/overrides.json", {"ttl": 99})
    env = {"XYOPS_WebServer__port": "7000", "SUNDIAL_base_app_url": "http://env", "XYOPS_base_app_url": "http://x"}
    config = load_config(tmp_path, {"debug_level": 3, "WebServer.port": 6500}, env)
    assert config.get("debug_level") == 3            # CLI beats file
    assert config.get("WebServer.port") == 7000       # env beats CLI
    assert config.get("base_app_url") == "http://env"  # SUNDIAL_ beats XYOPS_
    assert config.get("ttl") == 99                    # overrides beat everything
    assert config.get("WebServer.https_port") == 5523  # untouched default survives the merge
    assert config.source_of("WebServer.port") == "environment XYOPS_WebServer__port"


def test_env_values_are_typed_like_xyops(tmp_path: Path) -> None:
    env = {"SUNDIAL_User__use_csrf": "false", "SUNDIAL_ttl": "12", "SUNDIAL_client__name": "007x",
           "SUNDIAL_new__deep__key": "1.5"}
    config = load_config(tmp_path, None, env)
    assert config.get("User.use_csrf") is False and config.get("ttl") == 12
    assert config.get("client.name") == "007x" and config.get("new.deep.key") == 1.5


def test_invalid_value_names_key_and_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path, None, {"SUNDIAL_WebServer__port": "eighty"})
    assert "WebServer.port" in str(err.value) and "SUNDIAL_WebServer__port" in str(err.value)
    write(tmp_path / "conf/config.json", {"User": {"use_csrf": "yes"}})
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path, None, {})
    assert "User.use_csrf" in str(err.value) and "config.json" in str(err.value)


def test_broken_json_is_reported(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf/config.json").write_text("{ nope")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(tmp_path, None, {})


def test_sample_config_is_commented_and_loads(tmp_path: Path) -> None:
    path = write_sample_config(tmp_path)
    assert path is not None and "//" in path.read_text()
    assert load_config(tmp_path, None, {}).get("WebServer.port") == 5522
    assert write_sample_config(tmp_path) is None  # never overwrites


def test_secret_key_generated_once_into_private_overrides(tmp_path: Path) -> None:
    config = load_config(tmp_path, None, {})
    assert ensure_secret_key(config) is True
    key = config.get("secret_key")
    assert len(key) == 64 and int(key, 16) >= 0
    overrides = tmp_path / "conf/overrides.json"
    assert stat.S_IMODE(overrides.stat().st_mode) == 0o600
    assert overrides.read_text().startswith("{\n\t")
    again = load_config(tmp_path, None, {})
    assert ensure_secret_key(again) is False and again.get("secret_key") == key


def test_secret_key_file_variable(tmp_path: Path) -> None:
    keyfile = tmp_path / "key.txt"
    keyfile.write_text("from-a-file\n")
    config = load_config(tmp_path, None, {"SUNDIAL_SECRET_KEY_FILE": str(keyfile)})
    assert config.get("secret_key") == "from-a-file" and config.secret_key_from_env
    with pytest.raises(ConfigError, match="Cannot read secret key file"):
        load_config(tmp_path, None, {"SUNDIAL_SECRET_KEY_FILE": str(tmp_path / "missing")})


def test_durations() -> None:
    assert parse_duration("30 days") == 30 * 86400
    assert parse_duration("1h 30m") == 5400
    assert parse_duration(45) == 45


def test_configuration_reference_matches_the_defaults() -> None:
    from sundial.docs_reference import render

    doc = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    assert render() in doc, "regenerate with: python -m sundial.docs_reference --write docs/configuration.md"


def test_string_keys_keep_digits_and_upper_case_key_alias(tmp_path: Path) -> None:
    config = load_config(tmp_path, None, {"SUNDIAL_secret_key": "123456", "SUNDIAL_base_app_url": "true"})
    assert config.get("secret_key") == "123456" and config.get("base_app_url") == "true"
    assert config.secret_key_from_env
    upper = load_config(tmp_path, None, {"SUNDIAL_SECRET_KEY": "k-upper"})
    assert upper.get("secret_key") == "k-upper" and upper.secret_key_from_env
