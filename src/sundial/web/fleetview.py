"""What the server pages show of a server: summaries, host facts, filters, the offline page query.

Online servers come from the fleet's memory (fresh every second); offline ones only from the
`servers` table, one paged query with its count, so the list stays fast whatever the size
of the fleet's history. Pure helpers are kept apart from the query so they can be tested alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, true

from sundial.fleet.metrics import STOCK_QUICK_MONITORS
from sundial.services import Services
from sundial.storage.schema import servers as servers_table
from sundial.storage.search import normalize_words
from sundial.web.jobview import format_bytes
from sundial.web.viewer import Viewer

SPARK_WIDTH = 120
SPARK_HEIGHT = 28
STATUSES = ("", "online", "offline")


@dataclass(frozen=True)
class ServerFilters:
    """The list's filters: text (id, hostname, IP, title), group, status."""

    text: str = ""
    group: str = ""
    status: str = ""   # "", "online", "offline"

    def matches(self, server: Mapping[str, Any]) -> bool:
        if self.group and self.group not in (server.get("groups") or []):
            return False
        if not self.text:
            return True
        needle = self.text.lower()
        return any(needle in str(server.get(k) or "").lower() for k in ("id", "hostname", "ip", "title"))

    def as_query(self) -> dict[str, str]:
        pairs = {"q": self.text, "group": self.group, "status": self.status}
        return {k: v for k, v in pairs.items() if v}


def label(server: Mapping[str, Any]) -> str:
    return str(server.get("title") or server.get("hostname") or server.get("id") or "")


def quick_monitors(services: Services) -> list[dict[str, Any]]:
    """The per-second metrics definitions in force (the fleet uses the same rule)."""
    configured = services.config.get("quick_monitors")
    return configured if isinstance(configured, list) and configured else STOCK_QUICK_MONITORS


def os_text(info: Mapping[str, Any]) -> str:
    os_info = section(info, "os")
    parts = [str(os_info.get(k) or "") for k in ("distro", "release")]
    arch = str(os_info.get("arch") or info.get("arch") or "")
    text = " ".join(p for p in parts if p)
    return f"{text} ({arch})" if text and arch else text or arch


def section(node: Any, key: str) -> dict[str, Any]:
    """A sub-object of a satellite-reported record, or {} when it is missing or not an object."""
    value = node.get(key) if isinstance(node, Mapping) else None
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def spark_points(values: list[float], width: int = SPARK_WIDTH, height: int = SPARK_HEIGHT,
                 peak: float | None = None) -> str:
    """An SVG polyline's points for a row's tiny CPU chart (0..peak upwards, left to right)."""
    if len(values) < 2:
        return ""
    top = peak if peak else (max(values) or 1.0)
    step = width / (len(values) - 1)
    return " ".join(f"{i * step:.1f},{height - min(v / top, 1.0) * (height - 2) - 1:.1f}"
                    for i, v in enumerate(values))


def summary(server: Mapping[str, Any], quick: list[dict[str, Any]], jobs: int, online: bool) -> dict[str, Any]:
    """One list row: identity, groups, OS, and for online servers CPU and memory at a glance."""
    info = section(server, "info")
    memory = section(info, "memory")
    last = quick[-1] if quick else {}
    cpu = _number(last.get("_qm_cpu_usage"))
    total = _number(memory.get("total")) or 0.0
    used = _number(last.get("_qm_mem_used"))
    cpu_series = [v for v in (_number(r.get("_qm_cpu_usage")) for r in quick) if v is not None]
    return {
        "id": str(server.get("id") or ""), "label": label(server), "hostname": str(server.get("hostname") or ""),
        "ip": str(server.get("ip") or ""), "groups": list(server.get("groups") or []), "os": os_text(info),
        "enabled": server.get("enabled", True) is not False, "online": online, "jobs": jobs,
        "cpu": cpu, "cpu_points": spark_points(cpu_series, peak=100.0),
        "mem_used": used, "mem_total": total,
        "mem_text": f"{format_bytes(used)} of {format_bytes(total)}" if used is not None and total else "",
        "modified": _number(server.get("modified")) or 0.0,
    }


def host_facts(server: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Labelled facts from the satellite's hello: what machine this is."""
    info = section(server, "info")
    cpu, memory, virt = section(info, "cpu"), section(info, "memory"), info.get("virt")
    cores = cpu.get("cores")
    facts = [
        ("Hostname", str(server.get("hostname") or "")), ("IP address", str(server.get("ip") or "")),
        ("Operating system", os_text(info)), ("Kernel", str(info.get("release") or "")),
        ("CPU", " ".join(p for p in (str(cpu.get("combo") or ""), f"· {cores} cores" if cores else "") if p)),
        ("Memory", format_bytes(_number(memory.get("total"))) if _number(memory.get("total")) else ""),
        ("Virtualisation", _virt_text(virt)),
        ("Satellite", str(info.get("satellite") or "")), ("Runtime", str(info.get("node") or "")),
    ]
    return [(name, value) for name, value in facts if value]


def _virt_text(virt: Any) -> str:
    if virt is False:
        return "None (bare metal)"
    if not isinstance(virt, dict) or not virt:
        return ""
    return " ".join(str(virt.get(k)) for k in ("vendor", "type", "location") if virt.get(k))


def sample_facts(sample: Mapping[str, Any] | None) -> dict[str, Any]:
    """The latest minute sample's uptime, load and disks, for the page's "Latest minute" card."""
    data = section(sample, "data")
    load = [round(float(v), 2) for v in data.get("load") or [] if _number(v) is not None][:3]
    mounts: list[dict[str, Any]] = []
    for mount in section(data, "mounts").values():
        if isinstance(mount, dict) and _number(mount.get("size")):
            mounts.append({"mount": str(mount.get("mount") or ""), "type": str(mount.get("type") or ""),
                           "size": float(mount["size"]), "used": _number(mount.get("used")) or 0.0,
                           "use": _number(mount.get("use")) or 0.0})
    return {"date": _number(sample.get("date")) if sample else None, "uptime": _number(data.get("uptime_sec")),
            "load": load, "mounts": sorted(mounts, key=lambda m: m["mount"])[:20]}


def limit_clause(viewer: Viewer) -> ColumnElement[bool]:
    """Group-limited users see only servers in one of their groups (as `search_servers` does)."""
    principal = viewer.principal
    if principal.is_admin or not principal.groups:
        return true()
    return or_(*[servers_table.c.groups.contains(f" {g} ", autoescape=True) for g in principal.groups])


def offline_clause(filters: ServerFilters, viewer: Viewer) -> ColumnElement[bool]:
    """The stored, offline servers matching the filters, in SQL (mirrors `ServerFilters.matches`)."""
    table = servers_table
    clause: ColumnElement[bool] = and_(table.c.online == 0, limit_clause(viewer))
    if filters.group:
        clause = and_(clause, table.c.groups.contains(f" {filters.group} ", autoescape=True))
    if filters.text:
        needle = filters.text.lower()
        words = normalize_words(filters.text).strip()
        options = [func.lower(table.c.hostname).contains(needle, autoescape=True),
                   table.c.ip.contains(needle, autoescape=True), table.c.id == filters.text]
        if words:
            options.append(table.c.keywords.contains(words, autoescape=True))
        clause = and_(clause, or_(*options))
    return clause


async def offline_page(services: Services, filters: ServerFilters, viewer: Viewer, *, offset: int,
                       limit: int) -> tuple[list[dict[str, Any]], int]:
    """One page of offline servers, most recently seen first, and how many match."""
    where = offline_clause(filters, viewer)
    async with services.storage.read() as conn:
        total = (await conn.execute(select(func.count()).select_from(servers_table).where(where))).scalar()
        rows = await conn.execute(select(servers_table.c.doc).where(where)
                                  .order_by(servers_table.c.modified.desc()).offset(offset).limit(limit))
        docs = [dict(row.doc) for row in rows]
    return docs, int(total or 0)


def jobs_per_server(active: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for job in active:
        server = job.get("server")
        if isinstance(server, str) and server:
            counts[server] = counts.get(server, 0) + 1
    return counts


def install_command(base_url: str, token: str) -> str:
    """The one-line installer of docs/satellites.md, for the "Add a server" panel's tests."""
    return f'curl -s "{base_url}/api/app/satellite/install?t={token}" | sh'
