"""Target resolution and server selection algorithms (xyOps `algo`)."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

Server = dict[str, Any]


def candidates(targets: Any, servers: list[Server]) -> list[Server]:
    """Servers named directly or through a group, in target order, each once, enabled only."""
    if isinstance(targets, str):
        targets = [t for t in re.split(r",\s*", targets) if t]
    by_id = {s["id"]: s for s in servers}
    chosen: dict[str, Server] = {}
    for target in targets or []:
        if target in by_id:
            chosen.setdefault(target, by_id[target])
            continue
        for server in servers:
            if target in (server.get("groups") or []):
                chosen.setdefault(server["id"], server)
    return [s for s in chosen.values() if s.get("enabled", True)]


def server_cap(server: Server, group_of: Callable[[str], dict[str, Any] | None]) -> float:
    """The server's job cap (events-and-jobs.md sec. 6 step 5): its `maxJobs`, else the smallest
    non-zero `max_jobs_per_server` of its groups; 0 means no cap."""
    own = _positive(server.get("maxJobs"))
    if own:
        return own
    caps = [_positive((group_of(str(gid)) or {}).get("max_jobs_per_server")) for gid in server.get("groups") or []]
    return min((cap for cap in caps if cap), default=0.0)


def with_room(servers: list[Server], weight: float, load: Callable[[str], float],
              group_of: Callable[[str], dict[str, Any] | None]) -> list[Server]:
    """Servers whose cap (if any) still fits this job's weight on top of their current load."""
    kept = []
    for server in servers:
        cap = server_cap(server, group_of)
        if not cap or load(server["id"]) + weight <= cap + 1e-9:
            kept.append(server)
    return kept


def _positive(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else 0.0


def pick(algo: str, servers: list[Server], *, robin: Callable[[int], int],
         active_count: Callable[[str], int]) -> Server | None:
    """Choose one server; `robin(n)` returns and advances the event's round-robin index."""
    if not servers:
        return None
    if algo == "random":
        return random.choice(servers)
    if algo == "round_robin":
        return servers[robin(len(servers)) % len(servers)]
    if algo == "prefer_first_natural":
        return servers[0]
    if algo == "prefer_last_natural":
        return servers[-1]
    if algo in ("prefer_first", "prefer_last"):
        ordered = sorted(servers, key=lambda s: str(s.get("title") or s.get("hostname") or "").lower())
        return ordered[0] if algo == "prefer_first" else ordered[-1]
    if algo == "least_cpu":
        return min(servers, key=lambda s: _num(s, "info", "cpu", "avgLoad"))
    if algo == "least_mem":
        return min(servers, key=lambda s: _num(s, "info", "memory", "active"))
    if algo == "fewest_jobs":
        return min(servers, key=lambda s: active_count(s["id"]))
    if algo.startswith("monitor:"):
        monitor = algo.split(":", 1)[1]
        return min(servers, key=lambda s: _num(s, "info", "monitors", monitor))
    return None


def _num(record: Server, *path: str) -> float:
    node: Any = record
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return float(node) if isinstance(node, int | float) and not isinstance(node, bool) else 0.0
