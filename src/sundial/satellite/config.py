"""The agent's own config file (satellite-protocol.md §5): load, override, save atomically, apply pushes.

The file is the xySat ``config.json`` format, so an agent can be moved between xySat and Sundial
with its identity intact; unknown keys are kept and written back untouched. Saves merge only the
keys that changed into what is on disk (the in-memory config also carries env overrides and
defaults, which must not be frozen into the file) and replace the file atomically with mode 0600,
because it holds the server's credential.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["DEFAULTS", "ConfigError", "ConfigStore", "SatelliteConfig", "env_overrides"]

#: Defaults of every key the agent reads (xySat's names and values).
DEFAULTS: dict[str, Any] = {
    "hosts": ["localhost"],
    "host": "",
    "port": 5522,
    "secure": False,
    "socket_opts": {"rejectUnauthorized": False},
    "server_id": "",
    "auth_token": "",
    "secret_key": "",
    "managed_keys": None,
    "child_kill_timeout": 10,
    "monitoring_enabled": True,
    "quickmon_enabled": True,
    "graphics_enabled": False,
    "docker_enabled": True,
    "connect_timeout_sec": 5,
    "ping_timeout_sec": 60,
    "socket_reconnect_delay_sec": 1,
    "socket_reconnect_delay_max": 30,
    "job_env": {},
    "airgap": {},
    "pid_file": "pid.txt",
    "log_dir": "logs",
    "log_filename": "[component].log",
    "log_crashes": True,
    "log_archive_path": "logs/archives/[filename]-[yyyy]-[mm]-[dd].log.gz",
    "log_archive_keep": "7 days",
    "temp_dir": "temp",
    "debug_level": 5,
}

#: Keys that name paths; relative values are taken from the config file's directory.
PATH_KEYS = ("pid_file", "log_dir", "log_archive_path", "temp_dir")

_ENV_PREFIXES = ("SATELLITE_", "XYSAT_")


class ConfigError(ValueError):
    """The config file cannot be used (unreadable, not a JSON object, no credential)."""


class SatelliteConfig:
    """A read-only view of the effective config: file values over defaults, env over both."""

    def __init__(self, values: Mapping[str, Any], base_dir: Path) -> None:
        self._values = dict(values)
        self.base_dir = base_dir

    def get(self, key: str, default: Any = None) -> Any:
        if key in self._values:
            return self._values[key]
        return DEFAULTS.get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self.get(key)

    def as_dict(self) -> dict[str, Any]:
        return {**DEFAULTS, **self._values}

    def path(self, key: str) -> Path:
        """A path-valued key resolved against the config file's directory."""
        value = Path(str(self.get(key)))
        return value if value.is_absolute() else self.base_dir / value

    @property
    def hosts(self) -> list[str]:
        hosts = self.get("hosts") or []
        return [str(h) for h in hosts if isinstance(h, str) and h] or ["localhost"]

    @property
    def server_id(self) -> str:
        return str(self.get("server_id") or "")

    @property
    def auth_token(self) -> str:
        return str(self.get("auth_token") or "")

    @property
    def secret_key(self) -> str:
        return str(self.get("secret_key") or "")

    @property
    def port(self) -> int:
        return int(self.get("port"))

    @property
    def secure(self) -> bool:
        return bool(self.get("secure"))

    def number(self, key: str) -> float:
        """A numeric setting, falling back to its default when the file holds nonsense."""
        value = self.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return float(value)
        return float(DEFAULTS[key])


def _parse_env_value(raw: str) -> Any:
    """Env values are text; JSON-looking ones (true, 5, [..], {..}) are decoded as JSON."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """``SATELLITE_<key>`` (and the ``XYSAT_<key>`` alias) override config keys; SATELLITE_ wins."""
    out: dict[str, Any] = {}
    for prefix in reversed(_ENV_PREFIXES):
        for name, raw in environ.items():
            if name.startswith(prefix) and len(name) > len(prefix):
                key = name[len(prefix):]
                if key not in ("config_file", "foreground", "echo", "setup"):
                    out[key] = _parse_env_value(raw)
    return out


def _normalize(values: dict[str, Any]) -> dict[str, Any]:
    """Fold the ``masters`` alias (CSV string or list) into ``hosts``."""
    masters = values.pop("masters", None)
    if isinstance(masters, str):
        masters = [m.strip() for m in masters.split(",") if m.strip()]
    if isinstance(masters, list) and masters:
        values["hosts"] = masters
    return values


def read_json_object(path: Path) -> dict[str, Any]:
    """The file's JSON object; an empty or missing file is an empty config."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if not text.strip():
        return {}
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    return doc


def write_json_atomic(path: Path, doc: Mapping[str, Any], mode: int = 0o600) -> None:
    """Write via a temp file in the same directory + rename, so a crash leaves old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=4, sort_keys=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


Listener = Callable[[SatelliteConfig, set[str]], None]


class ConfigStore:
    """Owns the config file: the current effective config, saves, pushed updates, reloads."""

    def __init__(self, path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> None:
        self.path = Path(path).resolve()
        self._environ = dict(os.environ if environ is None else environ)
        self._listeners: list[Listener] = []
        self._stamp: tuple[int, int] | None = None
        self.config = self._build(self._read())

    # -- reading ---------------------------------------------------------------------------

    def _read(self) -> dict[str, Any]:
        doc = read_json_object(self.path)
        self._stamp = self._file_stamp()
        return doc

    def _build(self, file_values: dict[str, Any]) -> SatelliteConfig:
        values = _normalize({**file_values, **_normalize(env_overrides(self._environ))})
        return SatelliteConfig(values, self.path.parent)

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def validate(self) -> None:
        """Refuse to start without a credential, as xySat does."""
        if not self.config.auth_token and not self.config.secret_key:
            raise ConfigError(f"{self.path}: neither auth_token nor secret_key is set")

    def on_change(self, listener: Listener) -> None:
        """Call ``listener(config, changed_keys)`` after every save or reload that changed keys."""
        self._listeners.append(listener)

    def reload_if_changed(self) -> bool:
        """Re-read the file when someone else edited it (our own saves do not count)."""
        if self._file_stamp() == self._stamp:
            return False
        old = self.config.as_dict()
        self.config = self._build(self._read())
        self._notify(old)
        return True

    # -- writing ---------------------------------------------------------------------------

    def save(self, updates: Mapping[str, Any]) -> set[str]:
        """Merge ``updates`` into the file (dropping one-shot ``initial``) and into memory."""
        doc = read_json_object(self.path)
        doc.pop("initial", None)
        doc.update(updates)
        write_json_atomic(self.path, doc)
        old = self.config.as_dict()
        self.config = self._build(self._read())
        return self._notify(old)

    def apply_pushed(self, pushed: Mapping[str, Any]) -> set[str]:
        """Persist conductor-pushed keys, limited to ``managed_keys`` when that is a list."""
        allowed = self.filter_managed(pushed)
        return self.save(allowed) if allowed else set()

    def filter_managed(self, pushed: Mapping[str, Any]) -> dict[str, Any]:
        managed = self.config.get("managed_keys")
        if not isinstance(managed, list):
            return dict(pushed)
        keep = {str(k) for k in managed}
        return {k: v for k, v in pushed.items() if k in keep}

    def _notify(self, old: Mapping[str, Any]) -> set[str]:
        new = self.config.as_dict()
        changed = _changed_keys(old, new, set(old) | set(new))
        if changed:
            for listener in list(self._listeners):
                listener(self.config, changed)
        return changed


def _changed_keys(old: Mapping[str, Any], new: Mapping[str, Any], keys: Iterable[str]) -> set[str]:
    return {k for k in keys if old.get(k) != new.get(k)}
