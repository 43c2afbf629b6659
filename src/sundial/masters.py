"""The masters list (`conf/masters.json`): the host IDs of the conductors that form the cluster.

Only the start-up part of multi-conductor setup lives here: decide the list, write the file
when it changed, and remember our host ID in `<log_dir>/_hostname.txt` so a renamed host
replaces its old entry instead of leaving a ghost conductor behind. Order of sources
(multi-master.md §2): the `masters` setting (a comma-separated string, written back to the
file), else the file, else (first start) this host alone.
"""

from __future__ import annotations

from pathlib import Path

from sundial.config import Config, ConfigError, read_json_file, write_json_atomic
from sundial.logs import Logger

HOSTNAME_FILE = "_hostname.txt"


def _from_setting(config: Config) -> list[str] | None:
    value = config.get("masters")
    if not isinstance(value, str) or not value.strip():
        return None
    return [part.strip().lower() for part in value.split(",") if part.strip()]


def _from_file(path: Path) -> list[str] | None:
    if not path.exists():
        return None
    masters = read_json_file(path).get("masters")
    if not isinstance(masters, list) or not all(isinstance(m, str) and m for m in masters):
        raise ConfigError(f"{path} must hold {{\"masters\": [host IDs]}}; fix or delete it (it is rewritten "
                          f"with this host on the next start)")
    return [m.lower() for m in masters]


def _previous_host(log_dir: Path) -> str:
    try:
        return (log_dir / HOSTNAME_FILE).read_text(encoding="utf-8").strip().lower()
    except OSError:
        return ""


def _dedupe(hosts: list[str]) -> list[str]:
    return list(dict.fromkeys(hosts))


def setup_masters(config: Config, host: str, log: Logger) -> list[str]:
    """The masters list for this start, saved to `multi.master_list_file` when it changed."""
    path = config.path("multi.master_list_file")
    stored = _from_file(path)
    masters = _from_setting(config) or stored or [host]
    log_dir = config.path("log_dir")
    previous = _previous_host(log_dir)
    if previous and previous != host:
        log.error("hostname", f"The host ID changed from {previous} to {host}; replacing it in the masters list")
        masters = [host if m == previous else m for m in masters]
    if host not in masters:
        masters.append(host)
    masters = _dedupe(masters)
    if masters != stored:
        write_json_atomic(path, {"masters": masters}, mode=0o644)
        log.debug(2, f"Masters list saved to {path}: {', '.join(masters)}")
    if previous != host:
        log_dir.mkdir(parents=True, exist_ok=True)
        (log_dir / HOSTNAME_FILE).write_text(host + "\n", encoding="utf-8")
    return masters
