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
