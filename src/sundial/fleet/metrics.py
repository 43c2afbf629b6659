"""Per-server metrics in memory: QuickMon rows (per second) and minute samples with their timeline.

Hot path: at 500 satellites a conductor ingests 500 ``quickmon`` frames a second, so a frame
costs a few dictionary lookups and one bounded-deque append, and nothing here touches the
database per frame. The latest minute sample is the only thing persisted (``hosts/<id>/data``),
written behind in batches by :class:`sundial.fleet.service.FleetService`.

Shapes follow servers-groups-monitoring.md §3.2-§3.4 (minute samples, ``timeline`` items
``{date, epoch_div, totals, count}``) and §4 (QuickMon rows ``{date, <qm_id>: value}``).
"""

from __future__ import annotations

import functools
import math
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sundial.expressions import ExpressionError, evaluate

QUICK_MAX = 60
MINUTE_MAX = 1440
#: Timeline systems and their bucket width in seconds (§3.4).
SYSTEMS = {"hourly": 60, "daily": 120, "monthly": 3600, "yearly": 43200}
INTEGER_TYPES = ("integer", "bytes", "seconds", "milliseconds")

STOCK_QUICK_MONITORS: list[dict[str, Any]] = [
    {"id": "_qm_cpu_load", "title": "CPU Load Average", "source": "cpu.avgLoad", "type": "float", "suffix": ""},
    {"id": "_qm_cpu_usage", "title": "CPU Usage", "source": "cpu.currentLoad", "type": "float", "suffix": "%"},
    {"id": "_qm_mem_used", "title": "Memory In Use", "source": "mem.used", "type": "bytes", "suffix": ""},
    {"id": "_qm_mem_avail", "title": "Memory Available", "source": "mem.available", "type": "bytes",
     "suffix": ""},
    *[{"id": qid, "title": title, "source": source, "type": "bytes", "suffix": "/sec", "delta": True,
       "divide_by_delta": True, "delta_min_value": 0}
      for qid, title, source in (("_qm_disk_read_sec", "Disk Read", "fs.rx"),
                                 ("_qm_disk_write_sec", "Disk Write", "fs.wx"),
                                 ("_qm_net_in_sec", "Network In", "net.rx"),
                                 ("_qm_net_out_sec", "Network Out", "net.tx"))],
]

_PATH = re.compile(r"^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*|\[\d+\])*$")
_STEP = re.compile(r"\.?([A-Za-z_$][\w$]*)|\[(\d+)\]")
_NUMBER = re.compile(r"^\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


# -- evaluating a source --------------------------------------------------------------------------

@functools.lru_cache(maxsize=1024)
def _steps(source: str) -> tuple[str | int, ...] | None:
    """A plain path (``cpu.cpus[0].user``) as its keys and indexes; None for real expressions."""
    if not _PATH.match(source):
        return None
    return tuple(name if name else int(index) for name, index in _STEP.findall(source))


def _walk(steps: tuple[str | int, ...], context: Mapping[str, Any]) -> Any:
    node: Any = context
    for step in steps:
        if isinstance(step, str):
            node = node.get(step) if isinstance(node, dict) else None
        else:
            node = node[step] if isinstance(node, list) and step < len(node) else None
        if node is None:
            return None
    return node


def source_value(source: Any, context: Mapping[str, Any]) -> Any:
    """A monitor source against a sample: plain paths are walked directly (the common case,
    100x cheaper than the expression engine), anything else goes through JEXL; errors give None."""
    if not isinstance(source, str) or not source:
        return None
    steps = _steps(source)
    if steps is not None:
        return _walk(steps, context)
    try:
        return evaluate(source, dict(context))
    except ExpressionError:
        return None


def parse_number(value: Any) -> float | None:
    """JavaScript ``parseFloat``: numbers pass, strings give their leading number, else None."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        match = _NUMBER.match(value)
        return float(match.group(0)) if match else None
    return None


def apply_match(value: Any, pattern: Any) -> Any:
    """``data_match``: the first capture group, else the whole match; no match gives 0."""
    if not isinstance(pattern, str) or not pattern:
        return value
    try:
        found = re.search(pattern, "" if value is None else str(value))
    except re.error:
        return 0
    if not found:
        return 0
    return found.group(1) if found.groups() else found.group(0)


def cast(value: Any, data_type: Any, places: int) -> float | int:
    """Integer types are floored; float types are cut (not rounded) to ``places`` decimals."""
    number = parse_number(value)
    if number is None:
        return 0
    if data_type in INTEGER_TYPES:
        return math.floor(number)
    scale = 10 ** places
    cut = math.floor(number * scale) / scale
    return int(cut) if cut.is_integer() and abs(cut) < 2**53 else cut


def quick_row(monitors: Iterable[Mapping[str, Any]], sample: Mapping[str, Any], now: int) -> dict[str, Any]:
    """One QuickMon row: raw values (rates are computed by the reader from consecutive rows)."""
    row: dict[str, Any] = {"date": now}
    for monitor in monitors:
        qid = monitor.get("id")
        if isinstance(qid, str):
            raw = apply_match(source_value(monitor.get("source"), sample), monitor.get("data_match"))
            row[qid] = cast(raw, monitor.get("type"), 2)
    return row


# -- minute monitors (§3.2 steps 4-5) -----------------------------------------------------------

def _in_scope(monitor: Mapping[str, Any], groups: list[str]) -> bool:
    scope = monitor.get("groups") or []
    return not scope or any(g in groups for g in scope)


def monitor_value(monitor: Mapping[str, Any], data: Mapping[str, Any]) -> float | int:
    value = cast(apply_match(source_value(monitor.get("source"), data), monitor.get("data_match")),
                 monitor.get("data_type"), 5)
    for key, op in (("multiply", float.__mul__), ("divide", float.__truediv__)):
        factor = monitor.get(key)
        if isinstance(factor, int | float) and not isinstance(factor, bool) and factor:
            value = op(float(value), float(factor))
    return value


def evaluate_monitors(monitors: Iterable[Mapping[str, Any]], data: dict[str, Any], groups: list[str],
                      previous: Mapping[str, Any] | None, elapsed: float) -> None:
    """Fill ``data.monitors`` (absolute values) and ``data.deltas`` for delta monitors."""
    values: dict[str, Any] = {}
    deltas: dict[str, Any] = {}
    before = (previous or {}).get("monitors") or {}
    for monitor in monitors:
        mid = monitor.get("id")
        if not isinstance(mid, str) or not _in_scope(monitor, groups):
            continue
        values[mid] = monitor_value(monitor, data)
        if monitor.get("delta"):
            deltas[mid] = _delta(monitor, values[mid], before.get(mid), elapsed)
    data["monitors"], data["deltas"] = values, deltas


def _delta(monitor: Mapping[str, Any], value: float, prior: Any, elapsed: float) -> float | int:
    if not isinstance(prior, int | float) or not prior:
        return 0
    delta = float(value) - float(prior)
    floor_at = monitor.get("delta_min_value")
    if isinstance(floor_at, int | float) and not isinstance(floor_at, bool):
        delta = max(delta, float(floor_at))
    if monitor.get("divide_by_delta"):
        delta /= max(elapsed, 1.0)
    return math.floor(delta) if monitor.get("data_type") in INTEGER_TYPES else delta


# -- per-server state -------------------------------------------------------------------------

@dataclass
class ServerMetrics:
    """Everything metric-shaped we hold for one online server."""

    quick: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=QUICK_MAX))
    minutes: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=MINUTE_MAX))
    latest: dict[str, Any] | None = None
    last_agent_minute: int | None = None
    received: float = 0.0


MonitorList = Callable[[], Iterable[Mapping[str, Any]]]


class MetricsKeeper:
    """Ingests ``quickmon`` and ``monitor`` frames; answers the metrics verbs."""

    def __init__(self, quick_monitors: MonitorList, monitors: MonitorList, *, quick_max: int = QUICK_MAX,
                 clock: Callable[[], float] = time.time) -> None:
        self.quick_monitors = quick_monitors
        self.monitors = monitors
        self.quick_max = quick_max
        self.clock = clock
        self.servers: dict[str, ServerMetrics] = {}

    def of(self, server_id: str) -> ServerMetrics:
        state = self.servers.get(server_id)
        if state is None:
            state = self.servers[server_id] = ServerMetrics(quick=deque(maxlen=self.quick_max))
        return state

    def forget_quick(self, server_id: str) -> None:
        """QuickMon buffers die with the connection; minute history stays for ``get_server``."""
        state = self.servers.get(server_id)
        if state is not None:
            state.quick.clear()
            state.last_agent_minute = None

    def drop(self, server_id: str) -> None:
        self.servers.pop(server_id, None)

    def add_quick(self, server_id: str, sample: Mapping[str, Any]) -> dict[str, Any] | None:
        """Append one row; a sample older than the last row is a clock conflict and is dropped."""
        state = self.of(server_id)
        now = int(self.clock())
        row = quick_row(self.quick_monitors(), sample, now)
        if state.quick:
            last = int(state.quick[-1]["date"])
            if last > now:
                return None
            if last == now:
                row["date"] = now + 1
        state.quick.append(row)
        state.received = self.clock()
        return row

    def add_minute(self, server_id: str, envelope: dict[str, Any], *, ip: str, hostname: str,
                   groups: list[str]) -> dict[str, Any] | None:
        """Accept a ``monitor`` frame; returns the stored sample, or None when it was a repeat."""
        state = self.of(server_id)
        sent = envelope.get("date")
        minute = int(sent // 60) if isinstance(sent, int | float) and math.isfinite(sent) else None
        if minute is not None and minute == state.last_agent_minute:
            return None
        state.last_agent_minute = minute
        now = self.clock()
        raw = envelope.get("data")
        data: dict[str, Any] = raw if isinstance(raw, dict) else {}
        sample = {**envelope, "date": now, "ip": ip, "hostname": hostname, "groups": list(groups), "data": data}
        if not data.get("dummy"):
            previous = state.latest.get("data") if state.latest else None
            elapsed = now - float(state.latest["date"]) if state.latest else 60.0
            evaluate_monitors(self.monitors(), data, groups, previous, elapsed)
        bucket = int(now // 60)
        if state.minutes and state.minutes[-1]["epoch_div"] == bucket:
            return None  # a double submission within one conductor minute keeps the earlier sample
        state.minutes.append({"date": bucket * 60, "epoch_div": bucket,
                              "totals": dict(data.get("monitors") or {}), "count": 1})
        state.latest = sample
        return sample

    def quick_rows(self, server_id: str) -> list[dict[str, Any]]:
        state = self.servers.get(server_id)
        return list(state.quick) if state else []

    def latest(self, server_id: str) -> dict[str, Any] | None:
        state = self.servers.get(server_id)
        return state.latest if state else None

    def remember_latest(self, server_id: str, sample: dict[str, Any]) -> None:
        """Seed the in-memory latest sample from the database (after a conductor restart)."""
        state = self.of(server_id)
        if state.latest is None:
            state.latest = sample

    def timeline(self, server_id: str, system: str, limit: int) -> list[dict[str, Any]]:
        """The last ``limit`` items of a timeline system, rolled up from the minute history."""
        state = self.servers.get(server_id)
        if state is None or limit <= 0:
            return []
        width = SYSTEMS[system]
        if width == 60:
            return [dict(item, totals=dict(item["totals"])) for item in list(state.minutes)[-limit:]]
        return rollup(state.minutes, width)[-limit:]


def rollup(items: Iterable[Mapping[str, Any]], width: int) -> list[dict[str, Any]]:
    """Sum minute items into wider buckets; readers divide ``totals`` by ``count``."""
    out: list[dict[str, Any]] = []
    for item in items:
        bucket = int(item["date"] // width)
        if not out or out[-1]["epoch_div"] != bucket:
            out.append({"date": bucket * width, "epoch_div": bucket, "totals": {}, "count": 0})
        target = out[-1]
        for key, value in (item.get("totals") or {}).items():
            if isinstance(value, int | float):
                target["totals"][key] = target["totals"].get(key, 0) + value
        target["count"] += int(item.get("count") or 1)
    return out
