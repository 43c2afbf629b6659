"""Layered configuration: defaults < conf/config.json < CLI flags < environment < overrides.json.

The order is xyOps's, so an xyOps `conf/` directory and its `XYOPS_*` variables keep
working. Every leaf remembers where its value came from, so a bad value can be reported
with its source instead of a stack trace at some later use.
"""

from __future__ import annotations

import copy
import os
import re
import secrets
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from sundial import defaults

ENV_PREFIXES = ("XYOPS_", "SUNDIAL_")  # applied in this order: SUNDIAL_ wins
RESERVED_OVERRIDE_KEYS = ("secret_key", "SSO", "Debug", "config_overrides_file")
_INT_RE = re.compile(r"^-?\d+$")
_FLOAT_RE = re.compile(r"^-?\d+\.\d+$")


class ConfigError(Exception):
    """A configuration value that stops start-up; the message names key and source."""


def split_path(path: str) -> list[str]:
    """`A.b`, `A/b` and `A__b` all name the same nested key."""
    return [part for part in re.split(r"\.|/|__", path) if part]


def get_path(data: Mapping[str, Any], path: str | list[str], default: Any = None) -> Any:
    node: Any = data
    for part in split_path(path) if isinstance(path, str) else path:
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def set_path(data: dict[str, Any], parts: list[str], value: Any) -> None:
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def parse_env_value(raw: str) -> Any:
    """Environment values are strings; xyOps converts exact booleans and numbers only."""
    if raw == "true":
        return True
    if raw == "false":
        return False
    if _INT_RE.match(raw):
        return int(raw)
    if _FLOAT_RE.match(raw):
        return float(raw)
    return raw


# Conventional upper-case spellings that name a lower-case key.
ENV_ALIASES = {"SECRET_KEY": ["secret_key"]}


def env_overrides(environ: Mapping[str, str]) -> list[tuple[list[str], Any, str]]:
    """(path, value, variable name) for every SUNDIAL_/XYOPS_ variable, XYOPS_ first.

    A key whose default is a string keeps the raw text (an all-digit secret key stays a
    string); others get xyOps's conversion of exact booleans and numbers.
    """
    found: list[tuple[list[str], Any, str]] = []
    for prefix in ENV_PREFIXES:
        for name in sorted(environ):
            if not name.startswith(prefix) or name in ("SUNDIAL_HOME", "SUNDIAL_SECRET_KEY_FILE"):
                continue
            rest = name[len(prefix):].strip("_")
            parts = ENV_ALIASES.get(rest) or [p for p in rest.split("__") if p]
            if parts:
                raw = environ[name]
                typed = raw if isinstance(get_path(defaults.DEFAULTS, parts), str) else parse_env_value(raw)
                found.append((parts, typed, name))
    return found


def read_json_file(path: Path) -> dict[str, Any]:
    """JSON with whole-line `//` comments allowed, so the sample config can explain itself."""
    text = path.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("//")]
    try:
        data = orjson.loads("\n".join(lines) or "{}")
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    return data


def write_json_atomic(path: Path, data: Any, mode: int = 0o600) -> None:
    """Write via a temp file and rename, so a crash never leaves half a file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = _tab_json(data) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _tab_json(data: Any) -> str:
    import json

    return json.dumps(data, indent="\t", ensure_ascii=False)


def _leaves(data: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping) and value:
            yield from _leaves(value, path)
        else:
            yield path, value


@dataclass
class Config:
    """The merged configuration of one conductor plus where each value came from."""

    home: Path
    data: dict[str, Any]
    sources: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    secret_key_from_env: bool = False
    cli: dict[str, Any] = field(default_factory=dict)  # kept so a reload rebuilds the same layers
    environ: dict[str, str] | None = None  # None: the process environment at reload time

    def get(self, path: str, default: Any = None) -> Any:
        return get_path(self.data, path, default)

    def path(self, key: str) -> Path:
        """A configured path, relative to the home folder unless absolute."""
        value = Path(str(self.get(key)))
        return value if value.is_absolute() else self.home / value

    @property
    def overrides_file(self) -> Path:
        return self.path("config_overrides_file")

    def set_overrides(self, changes: Mapping[str, Any]) -> None:
        """Persist override keys (atomically, mode 0600) and apply them to the live config."""
        merged = dict(self.overrides)
        merged.update(changes)
        write_json_atomic(self.overrides_file, merged)
        self.overrides = merged
        for key, value in changes.items():
            set_path(self.data, split_path(strip_env_prefix(key)), copy.deepcopy(value))
            self.sources[".".join(split_path(strip_env_prefix(key)))] = f"overrides file {self.overrides_file}"

    def source_of(self, path: str) -> str:
        return self.sources.get(path, "built-in defaults")


def strip_env_prefix(key: str) -> str:
    for prefix in ENV_PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def _merge(target: dict[str, Any], incoming: Mapping[str, Any], source: str,
           sources: dict[str, str], prefix: str = "") -> None:
    for key, value in incoming.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], value, source, sources, path)
        else:
            target[key] = copy.deepcopy(value)
            for leaf, _ in _leaves({key: value}, prefix):
                sources[leaf] = source
            sources[path] = source


def resolve_home(home: str | os.PathLike[str] | None = None) -> Path:
    chosen = home or os.environ.get("SUNDIAL_HOME") or Path.home() / ".sundial"
    return Path(chosen).expanduser().resolve()


def load_config(home: Path, cli: Mapping[str, Any] | None = None,
                environ: Mapping[str, str] | None = None) -> Config:
    """Build the merged config in xyOps's order and validate it."""
    environ = os.environ if environ is None else environ
    sources: dict[str, str] = {}
    data = copy.deepcopy(defaults.DEFAULTS)
    config_file = home / "conf" / "config.json"
    if config_file.exists():
        _merge(data, read_json_file(config_file), f"config file {config_file}", sources)
    if cli:
        for key, value in cli.items():
            set_path(data, split_path(key), value)
            sources[".".join(split_path(key))] = "command line"
    key_from_env = False
    for parts, value, name in env_overrides(environ):
        set_path(data, parts, value)
        sources[".".join(parts)] = f"environment {name}"
        key_from_env = key_from_env or parts == ["secret_key"]
    key_file = environ.get("SUNDIAL_SECRET_KEY_FILE")
    if key_file:
        data["secret_key"] = _read_key_file(Path(key_file))
        sources["secret_key"] = f"environment SUNDIAL_SECRET_KEY_FILE ({key_file})"
        key_from_env = True
    config = Config(home=home, data=data, sources=sources, secret_key_from_env=key_from_env,
                    cli=dict(cli or {}), environ=None if environ is os.environ else dict(environ))
    overrides_file = config.overrides_file
    if overrides_file.exists():
        config.overrides = read_json_file(overrides_file)
        for key, value in config.overrides.items():
            parts = split_path(strip_env_prefix(key))
            if parts:
                set_path(data, parts, copy.deepcopy(value))
                sources[".".join(parts)] = f"overrides file {overrides_file}"
    validate(config)
    return config


# Read once at start: a running conductor cannot move its port, database, logs or identity, and
# the secret key belongs to the vault (rotation changes it in memory and in overrides.json).
RESTART_ONLY = ("WebServer", "Storage", "secret_key", "hostname", "log_dir", "log_filename", "pid_file",
                "temp_dir", "config_overrides_file", "masters")


def reload_config(config: Config) -> tuple[list[str], list[str]]:
    """Re-read every layer into `config` in place: (changed keys applied, changed keys that need a restart).

    An invalid file raises ConfigError and leaves `config` untouched. Restart-only keys keep
    their running values, so what admin_get_config shows is what the conductor does.
    """
    fresh = load_config(config.home, config.cli, os.environ if config.environ is None else config.environ)
    old_leaves, new_leaves = dict(_leaves(config.data)), dict(_leaves(fresh.data))
    changed = sorted(k for k in old_leaves.keys() | new_leaves.keys() if old_leaves.get(k) != new_leaves.get(k))
    pending = [k for k in changed if split_path(k)[0] in RESTART_ONLY]
    for top in RESTART_ONLY:
        if top in config.data:
            fresh.data[top] = config.data[top]
        else:
            fresh.data.pop(top, None)
    config.data.clear()
    config.data.update(fresh.data)
    config.sources, config.overrides = fresh.sources, fresh.overrides
    return [k for k in changed if k not in pending], pending


def _read_key_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n")  # only the line ending: spaces are key material
    except OSError as exc:
        raise ConfigError(f"Cannot read secret key file {path} (SUNDIAL_SECRET_KEY_FILE): "
                          f"{exc.strerror}") from None


def ensure_secret_key(config: Config) -> bool:
    """Generate a key (64 hex chars) and store it in overrides.json when none is configured.

    Only for a store with nothing encrypted yet: the vault checks that before calling this at
    start-up (a store with a canary but no key is refused instead, see vault.startup).
    """
    if config.get("secret_key"):
        return False
    config.set_overrides({"secret_key": secrets.token_hex(32)})
    return True


_REQUIRED = ("base_app_url", "log_dir", "log_filename", "temp_dir", "log_columns", "debug_level")


def validate(config: Config) -> None:
    """Refuse values whose type differs from the default's, naming key and source."""
    for key in _REQUIRED:
        if config.get(key) in (None, "", []):
            raise ConfigError(f"Missing required configuration key: {key} "
                              f"(from {config.source_of(key)})")
    for path, default in _leaves(defaults.DEFAULTS):
        value = config.get(path)
        if value is None or default is None:
            continue
        problem = _type_problem(default, value)
        if problem:
            raise ConfigError(f"Invalid configuration value for {path}: {problem} "
                              f"(from {config.source_of(path)})")
    for path in ("WebServer.port", "WebServer.https_port"):
        port = config.get(path)
        if not 0 <= int(port) <= 65535:
            raise ConfigError(f"Invalid configuration value for {path}: {port} is not a TCP port "
                              f"(from {config.source_of(path)})")
    level = config.get("debug_level")
    if not 1 <= int(level) <= 10:
        raise ConfigError(f"Invalid configuration value for debug_level: must be 1 to 10 "
                          f"(from {config.source_of('debug_level')})")


def _type_problem(default: Any, value: Any) -> str | None:
    if isinstance(default, bool):
        return None if isinstance(value, bool | int) else f"expected true or false, got {value!r}"
    if isinstance(default, int | float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else f"expected a number, got {value!r}"
    if isinstance(default, str):
        return None if isinstance(value, str) else f"expected a string, got {value!r}"
    if isinstance(default, list):
        return None if isinstance(value, list) else f"expected a list, got {value!r}"
    if isinstance(default, dict):
        return None if isinstance(value, dict) else f"expected an object, got {value!r}"
    return None


def parse_duration(text: str | int | float) -> float:
    """`30 days`, `5 years`, `1h 30m` or bare seconds -> seconds."""
    if isinstance(text, int | float):
        return float(text)
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-zA-Z]*)", text):
        total += float(number) * units.get(unit[:1].lower(), 1)
    return total


def write_sample_config(home: Path) -> Path | None:
    """First start: leave an explained config.json for the operator to edit."""
    path = home / "conf" / "config.json"
    if path.exists():
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(defaults.SAMPLE_CONFIG, encoding="utf-8")
    return path
